// hashtag name -> element id, for ArcadeDB's bulk edge loader (its element ids are RIDs)
// mode: read
MATCH (h:Hashtag)
RETURN h.name AS name, elementId(h) AS rid
