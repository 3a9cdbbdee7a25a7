// training posts: (:User)-[:POSTED]->(:Post)-[:TAGGED]->(:Hashtag); MERGE, idempotent.
// n counts TAGGED edges whose hashtag exists.
// mode: write
// param rows: [{"id": "p1", "user": "u7", "split": "train", "tags": ["dance", "kid dancer"]}]
UNWIND $rows AS row
MERGE (u:User {name: row.user})
MERGE (p:Post {id: row.id})
SET p.split = row.split
MERGE (u)-[:POSTED]->(p)
WITH p, row
UNWIND row.tags AS tag
MATCH (h:Hashtag {name: tag})
MERGE (p)-[:TAGGED]->(h)
RETURN count(h) AS n
