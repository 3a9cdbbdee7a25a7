// user name -> element id, for ArcadeDB's bulk loader (its element ids are RIDs)
// mode: read
MATCH (u:User)
RETURN u.name AS name, elementId(u) AS rid
