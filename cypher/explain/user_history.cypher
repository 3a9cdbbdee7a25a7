// A user's past hashtags from training posts, most used first, leaving out
// one post (the post being explained, whose own tags would be the answer).
// exclude: a post id, or null to keep every training post.
// mode: read
// param user: "alice"
// param exclude: "p1"
MATCH (u:User {name: $user})-[:POSTED]->(p:Post)-[:TAGGED]->(h:Hashtag)
WHERE p.split = 'train' AND ($exclude IS NULL OR p.id <> $exclude)
RETURN h.name AS tag,
       count(p) AS posts,
       h.longtail AS longtail
ORDER BY posts DESC, tag
