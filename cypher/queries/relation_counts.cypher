// Relationships per relation type, with their mean weight and how many of
// them overrode a lower-priority relation.
// Each pair is counted once: the a.name < b.name filter keeps one of the two
// directions an undirected match yields.
// mode: read
MATCH (a:Hashtag)-[r:CP|SS|PO|CO]-(b:Hashtag)
WHERE a.name < b.name
RETURN type(r) AS type,
       count(r) AS relationships,
       avg(r.weight) AS mean_weight,
       sum(CASE WHEN size(coalesce(r.overrides, [])) > 0 THEN 1 ELSE 0 END) AS with_overrides
ORDER BY type
