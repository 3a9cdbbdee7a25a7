// SS (super-subordinate) edges for the graph export, each pair once
// (a < b by name), with the WordNet evidence; synset_a belongs to a.
// mode: read
MATCH (a:Hashtag)-[r:SS]-(b:Hashtag)
WHERE a.name < b.name
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.synset_a AS synset_a,
       r.synset_b AS synset_b,
       r.direction AS direction,
       r.depth AS depth,
       r.overrides AS overrides
ORDER BY a, b
