// A user's past hashtags from training posts, most used first.
// mode: read
// param user: "alice"
MATCH (u:User {name: $user})-[:POSTED]->(p:Post)-[:TAGGED]->(h:Hashtag)
WHERE p.split = 'train'
RETURN h.name AS tag,
       count(p) AS posts,
       h.longtail AS longtail
ORDER BY posts DESC, tag
