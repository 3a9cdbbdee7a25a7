// SS edges into a store that has none of this type (fresh build): CREATE skips the MERGE check
// mode: write
// param rows: [{"a": "dance", "b": "kid dancer", "props": {"weight": 1.0, "synset_a": "dancer.n.01", "synset_b": "performer.n.01", "direction": "b_hypernym_of_a", "depth": 1}}]
UNWIND $rows AS row
MATCH (a:Hashtag {name: row.a})
MATCH (b:Hashtag {name: row.b})
CREATE (a)-[r:SS]->(b)
SET r = row.props
RETURN count(r) AS n
