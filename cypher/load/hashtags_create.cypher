// hashtag nodes into a store that has none (fresh build): CREATE skips the MERGE lookup
// mode: write
// param rows: [{"name": "kid dancer", "words": ["kid", "dancer"], "count": 12, "train_count": 9, "longtail": true, "surfaces": ["kiddancer", "kiddancers"]}]
UNWIND $rows AS row
CREATE (h:Hashtag {name: row.name, words: row.words, count: row.count,
                   train_count: row.train_count, longtail: row.longtail, surfaces: row.surfaces})
RETURN count(h) AS n
