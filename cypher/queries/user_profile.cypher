// A user's hashtags with how many of the user's training posts carry each.
// mode: read
// param user: "alice"
// param limit: 50
MATCH (u:User {name: $user})-[:POSTED]->(p:Post)-[:TAGGED]->(h:Hashtag)
WHERE p.split = 'train'
RETURN h.name AS tag,
       count(p) AS posts,
       h.count AS count,
       h.longtail AS longtail
ORDER BY posts DESC, tag
LIMIT toInteger(coalesce($limit, 50))
