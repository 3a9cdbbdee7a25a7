// CO edges between hashtags (a < b by name); MERGE, so a rerun keeps one edge per pair.
// props holds the weight, the evidence fields and the overridden relations (where any); SET = replaces
// whatever an earlier load stored. n counts rows whose two hashtags exist.
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 0.4, "count": 3, "strength": 0.4, "pmi": 2.1}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
MERGE (a)-[r:CO]->(b)
SET r = row.props
RETURN count(r) AS n
