// SS edges between hashtags (a < b by name); MERGE, so a rerun keeps one edge per pair.
// props holds the weight, the evidence fields and the overridden relations (where any); SET = replaces
// whatever an earlier load stored. n counts rows whose two hashtags exist.
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 1.0, "synset_a": "dancer.n.01", "synset_b": "performer.n.01", "direction": "b_hypernym_of_a", "depth": 1}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
MERGE (a)-[r:SS]->(b)
SET r = row.props
RETURN count(r) AS n
