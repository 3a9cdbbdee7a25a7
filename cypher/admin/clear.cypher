// delete up to $limit nodes with their relationships; the store repeats it until n = 0
// (the schema stays)
// mode: write
// param limit: 20000
MATCH (n)
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS n
