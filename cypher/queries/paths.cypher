// Shortest typed paths between two hashtags (at most 4 hops): the tags along
// each path, the relation type and weight of every hop.
// The hop bound is fixed here because Cypher cannot take a path length as a
// parameter.
// mode: read
// param source: "kid"
// param target: "ballet"
// param limit: 10
MATCH (a:Hashtag {name: $source})
MATCH (b:Hashtag {name: $target})
WHERE a <> b
MATCH p = allShortestPaths((a)-[:CP|SS|PO|CO*..4]-(b))
RETURN [n IN nodes(p) | n.name] AS tags,
       [r IN relationships(p) | type(r)] AS types,
       [r IN relationships(p) | r.weight] AS weights,
       length(p) AS hops
LIMIT toInteger(coalesce($limit, 10))
