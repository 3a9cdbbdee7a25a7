// CP (composition) edges for the graph export, each stored relationship once, as stored,
// with the shared words as evidence.
// The loaders store a -> b with a < b by name; kg/export.py orders the pair and
// sorts in Python: an undirected match with ORDER BY holds every row in the
// server's query heap (over ArcadeDB's 1 GB at INSVIDEO scale).
// mode: read
MATCH (a:Hashtag)-[r:CP]->(b:Hashtag)
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.words AS words,
       coalesce(r.overrides, []) AS overrides
