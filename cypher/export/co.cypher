// CO (co-occurrence) edges for the graph export, each pair once (a < b by
// name), with the training-split co-occurrence evidence.
// mode: read
MATCH (a:Hashtag)-[r:CO]-(b:Hashtag)
WHERE a.name < b.name
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.count AS count,
       r.strength AS strength,
       r.pmi AS pmi,
       r.overrides AS overrides
ORDER BY a, b
