// connectivity and database check
// mode: read
RETURN 1 AS ok
