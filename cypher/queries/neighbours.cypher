// Neighbours of a hashtag with the relation type, weight and evidence of each
// edge, strongest first. type: "CP", "SS", "PO" or "CO" to keep one relation
// type, null or "" for all. tag_is_a tells which end the *_a evidence fields
// describe (edges are stored once per pair, a -> b with a < b by name).
// mode: read
// param tag: "kid dancer"
// param type: ""
// param limit: 25
MATCH (h:Hashtag {name: $tag})-[r:CP|SS|PO|CO]-(n:Hashtag)
WHERE coalesce($type, '') = '' OR type(r) = toUpper($type)
RETURN n.name AS neighbour,
       type(r) AS type,
       r.weight AS weight,
       startNode(r) = h AS tag_is_a,
       r.words AS words,
       r.synset_a AS synset_a,
       r.synset_b AS synset_b,
       r.direction AS direction,
       r.depth AS depth,
       r.wup AS wup,
       r.count AS co_count,
       r.strength AS strength,
       r.pmi AS pmi,
       coalesce(r.overrides, []) AS overrides,
       n.count AS neighbour_count,
       n.longtail AS neighbour_longtail
ORDER BY weight DESC, neighbour
LIMIT toInteger(coalesce($limit, 25))
