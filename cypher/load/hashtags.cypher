// hashtag nodes; MERGE on the unique name, so a rerun leaves the same graph
// mode: write
// param rows: [{"name": "kid dancer", "words": ["kid", "dancer"], "count": 12, "train_count": 9, "longtail": true, "surfaces": ["kiddancer", "kiddancers"]}]
UNWIND $rows AS row
MERGE (h:Hashtag {name: row.name})
SET h.words = row.words, h.count = row.count, h.train_count = row.train_count,
    h.longtail = row.longtail, h.surfaces = row.surfaces
RETURN count(h) AS n
