// Long-tail hashtags (most used first) with their degree and their most
// frequent neighbours (by the neighbour's use count, per_tag of them).
// mode: read
// param limit: 50
// param per_tag: 5
MATCH (h:Hashtag)
WHERE h.longtail = true
// Pick the tags before expanding neighbours: expanding every long-tail tag
// first costs seconds on a real graph for the sake of limit rows.
WITH h
ORDER BY h.count DESC, h.name
LIMIT toInteger(coalesce($limit, 50))
OPTIONAL MATCH (h)-[r:CP|SS|PO|CO]-(n:Hashtag)
WITH h, r, n
ORDER BY n.count DESC, n.name
WITH h,
     count(n) AS degree,
     collect(CASE WHEN n IS NULL THEN null ELSE n.name + ' (' + type(r) + ')' END) AS ranked
RETURN h.name AS tag,
       h.count AS count,
       h.train_count AS train_count,
       degree,
       ranked[..toInteger(coalesce($per_tag, 5))] AS top_neighbours
ORDER BY count DESC, tag
