// Every typed neighbour of a hashtag with the edge's weight and all its
// evidence fields, the neighbour's use count and long-tail flag. tag_is_a
// tells which end the *_a evidence fields describe.
// mode: read
// param tag: "kid dancer"
MATCH (h:Hashtag {name: $tag})-[r:CP|SS|PO|CO]-(n:Hashtag)
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
ORDER BY type, weight DESC, neighbour
