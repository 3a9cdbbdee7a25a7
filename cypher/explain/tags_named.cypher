// The hashtags among the given names (e.g. the word n-grams of a post's
// text), with their use count.
// mode: read
// param names: ["hill", "kid dancer", "sunny day"]
MATCH (h:Hashtag)
WHERE h.name IN $names
RETURN h.name AS tag,
       h.count AS count
ORDER BY tag
