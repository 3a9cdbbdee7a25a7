// CP edges into a store that has none of this type (fresh build): CREATE skips the MERGE check
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 1.0, "words": ["dance"], "overrides": ["co"]}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
CREATE (a)-[r:CP]->(b)
SET r = row.props
RETURN count(r) AS n
