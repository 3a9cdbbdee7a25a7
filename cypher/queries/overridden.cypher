// Edges whose pair also had lower-priority relations that the priority rule
// (cp > ss > po > co) dropped. type: one relation type, or null / "" for all.
// Each pair once: a.name < b.name keeps one direction of the undirected match.
// mode: read
// param type: ""
// param limit: 50
MATCH (a:Hashtag)-[r:CP|SS|PO|CO]-(b:Hashtag)
WHERE a.name < b.name
  AND size(coalesce(r.overrides, [])) > 0
  AND (coalesce($type, '') = '' OR type(r) = toUpper($type))
RETURN a.name AS a,
       b.name AS b,
       type(r) AS type,
       coalesce(r.overrides, []) AS overrides,
       r.weight AS weight
ORDER BY type, a, b
LIMIT toInteger(coalesce($limit, 50))
