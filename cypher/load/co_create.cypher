// CO edges into a store that has none of this type (fresh build): CREATE skips the MERGE check
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 0.4, "count": 3, "strength": 0.4, "pmi": 2.1}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
CREATE (a)-[r:CO]->(b)
SET r = row.props
RETURN count(r) AS n
