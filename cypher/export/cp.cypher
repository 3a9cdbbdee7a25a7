// CP (composition) edges for the graph export, each pair once (a < b by name),
// with the shared words as evidence.
// mode: read
MATCH (a:Hashtag)-[r:CP]-(b:Hashtag)
WHERE a.name < b.name
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.words AS words,
       r.overrides AS overrides
ORDER BY a, b
