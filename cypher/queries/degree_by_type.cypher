// Degree distribution per relation type over all hashtags: how many hashtags
// have at least one edge of the type, mean, median, 90th percentile and
// maximum degree (hashtags without such an edge count as degree 0).
// mode: read
MATCH (h:Hashtag)
WITH h,
     COUNT { (h)-[:CP]-(:Hashtag) } AS cp,
     COUNT { (h)-[:SS]-(:Hashtag) } AS ss,
     COUNT { (h)-[:PO]-(:Hashtag) } AS po,
     COUNT { (h)-[:CO]-(:Hashtag) } AS co
UNWIND [['CP', cp], ['SS', ss], ['PO', po], ['CO', co]] AS pair
WITH pair[0] AS type, pair[1] AS degree
RETURN type,
       count(*) AS hashtags,
       sum(CASE WHEN degree > 0 THEN 1 ELSE 0 END) AS connected,
       avg(degree) AS mean,
       percentileDisc(degree, 0.5) AS median,
       percentileDisc(degree, 0.9) AS p90,
       max(degree) AS max
ORDER BY type
