// Every hashtag for the graph export, ordered by name (the store order when
// no data set id order is given).
// mode: read
MATCH (h:Hashtag)
RETURN h.name AS name,
       h.longtail AS longtail,
       h.count AS count,
       h.train_count AS train_count
ORDER BY name
