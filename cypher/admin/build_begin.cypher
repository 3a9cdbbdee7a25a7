// mark the build as loading: replaces every property of the marker, so nothing of an
// earlier complete build survives into an interrupted one
// mode: write
// param props: {"id": "current", "status": "loading", "fingerprint": "3f2a", "started": "2025-01-01T00:00:00+00:00"}
MERGE (b:Build {id: "current"})
SET b = $props
RETURN b.status AS status
