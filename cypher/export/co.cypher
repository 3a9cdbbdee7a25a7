// CO (co-occurrence) edges for the graph export, each pair once (a < b by
// name), with the training-split co-occurrence evidence.
// The loaders store a -> b with a < b by name; kg/export.py orders the pair and
// sorts in Python: an undirected match with ORDER BY holds every row in the
// server's query heap (over ArcadeDB's 1 GB at INSVIDEO scale).
// mode: read
MATCH (a:Hashtag)-[r:CO]->(b:Hashtag)
RETURN a.name AS a,
       b.name AS b,
       r.weight AS weight,
       r.count AS count,
       r.strength AS strength,
       r.pmi AS pmi,
       coalesce(r.overrides, []) AS overrides
