// SS (super-subordinate) edges for the graph export, each stored
// relationship once, as stored, with the WordNet evidence; synset_a belongs to a.
// The loaders store a -> b with a < b by name; kg/export.py orders the pair and
// sorts in Python: an undirected match with ORDER BY holds every row in the
// server's query heap (over ArcadeDB's 1 GB at INSVIDEO scale).
// mode: read
MATCH (a:Hashtag)-[r:SS]->(b:Hashtag)
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.synset_a AS synset_a,
       r.synset_b AS synset_b,
       r.direction AS direction,
       r.depth AS depth,
       coalesce(r.overrides, []) AS overrides
