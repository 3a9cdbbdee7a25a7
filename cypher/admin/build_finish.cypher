// mark the build complete, adding the finish time and counts to the marker
// mode: write
// param props: {"status": "complete", "finished": "2025-01-01T00:01:00+00:00", "counts_Hashtag": 15000}
MATCH (b:Build {id: "current"})
SET b += $props
RETURN b.status AS status
