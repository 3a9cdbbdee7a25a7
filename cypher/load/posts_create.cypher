// posts into a store that has none (fresh build); their users exist already.
// n counts TAGGED edges whose hashtag exists.
// mode: write
// param rows: [{"id": "p1", "user": "u7", "split": "train", "tags": ["dance", "kid dancer"]}]
UNWIND $rows AS row
MATCH (u:User {name: row.user})
CREATE (u)-[:POSTED]->(p:Post {id: row.id, split: row.split})
WITH p, row
UNWIND row.tags AS tag
MATCH (h:Hashtag {name: tag})
CREATE (p)-[:TAGGED]->(h)
RETURN count(h) AS n
