// relationship count per type
// mode: read
MATCH ()-[r]->()
RETURN type(r) AS type, count(*) AS n
