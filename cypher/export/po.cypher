// PO (positive relation, WordNet WUP similarity) edges for the graph export,
// each pair once (a < b by name); synset_a belongs to a.
// mode: read
MATCH (a:Hashtag)-[r:PO]-(b:Hashtag)
WHERE a.name < b.name
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.wup AS wup,
       r.synset_a AS synset_a,
       r.synset_b AS synset_b,
       r.overrides AS overrides
ORDER BY a, b
