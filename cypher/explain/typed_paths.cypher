// Shortest typed paths of at most 3 hops from a hashtag to each of the
// target hashtags: the tags along each path and the relation type and weight
// of every hop. Targets without such a path are absent from the result.
// mode: read
// param tag: "kid"
// param targets: ["ballet", "dancer", "sunset"]
MATCH (a:Hashtag {name: $tag})
MATCH (b:Hashtag)
WHERE b.name IN $targets AND b <> a
MATCH p = shortestPath((a)-[:CP|SS|PO|CO*..3]-(b))
RETURN b.name AS target,
       [n IN nodes(p) | n.name] AS tags,
       [r IN relationships(p) | type(r)] AS types,
       [r IN relationships(p) | r.weight] AS weights,
       length(p) AS hops
ORDER BY hops, target
