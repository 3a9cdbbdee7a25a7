// PO edges between hashtags (a < b by name); MERGE, so a rerun keeps one edge per pair.
// props holds the weight, the evidence fields and the overridden relations (where any); SET = replaces
// whatever an earlier load stored. n counts rows whose two hashtags exist.
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 0.82, "wup": 0.82, "synset_a": "dancer.n.01", "synset_b": "singer.n.01", "overrides": ["co"]}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
MERGE (a)-[r:PO]->(b)
SET r = row.props
RETURN count(r) AS n
