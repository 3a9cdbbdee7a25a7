// One hashtag's properties and its degree per relation type.
// mode: read
// param tag: "kid dancer"
MATCH (h:Hashtag {name: $tag})
RETURN h.name AS name,
       h.words AS words,
       h.surfaces AS surfaces,
       h.count AS count,
       h.train_count AS train_count,
       h.longtail AS longtail,
       COUNT { (h)-[:CP]-(:Hashtag) } AS cp,
       COUNT { (h)-[:SS]-(:Hashtag) } AS ss,
       COUNT { (h)-[:PO]-(:Hashtag) } AS po,
       COUNT { (h)-[:CO]-(:Hashtag) } AS co
