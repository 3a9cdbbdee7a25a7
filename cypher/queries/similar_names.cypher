// Hashtags whose name contains the given text, or (for names of 3+
// characters) is contained in it: close names to suggest for an unknown tag.
// Most used first.
// mode: read
// param text: "dancer"
// param limit: 10
WITH toLower($text) AS text
MATCH (h:Hashtag)
WHERE h.name CONTAINS text OR (size(h.name) >= 3 AND text CONTAINS h.name)
RETURN h.name AS tag,
       h.count AS count,
       h.longtail AS longtail
ORDER BY count DESC, tag
LIMIT toInteger(coalesce($limit, 10))
