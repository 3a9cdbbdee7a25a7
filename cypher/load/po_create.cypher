// PO edges into a store that has none of this type (fresh build): CREATE skips the MERGE check
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 0.82, "wup": 0.82, "synset_a": "dancer.n.01", "synset_b": "singer.n.01", "overrides": ["co"]}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
CREATE (a)-[r:PO]->(b)
SET r = row.props
RETURN count(r) AS n
