// user nodes into a store that has none (fresh build); names are distinct
// mode: write
// param rows: [{"name": "u7"}]
UNWIND $rows AS row
CREATE (u:User {name: row.name})
RETURN count(u) AS n
