#!/usr/bin/env bash
# The main job end to end on the embedded store: set up, generate the small
# synthetic micro-video set, build the typed hashtag graph, explore it,
# train V2HT for a few epochs, evaluate against the baselines, recommend and
# explain. Work directory: $V2HT_WORKDIR or ./v2ht-work.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export V2HT_WORKDIR="${V2HT_WORKDIR:-$PWD/v2ht-work}"
V=.venv/bin/v2ht-kg
EPOCHS="${EPOCHS:-8}"

echo "== 1. build: generate + prepare + relations + load into the embedded store"
$V build --format synthetic --preset small --seed 42
echo "== 2. data statistics (frequency plot: $V2HT_WORKDIR/reports/hashtag-frequency.png)"
$V data stats
echo "== 3. Cypher: one relation per pair (priority cp > ss > po > co)"
$V cypher "MATCH (a:Hashtag)-[r]-(b:Hashtag) WITH a, b, count(r) AS n WHERE n > 1 RETURN count(*) AS pairs_with_two_relations"
$V query relation_counts
echo "== 4. train V2HT-KG (V2HT for $EPOCHS epochs at most, then the fusion head) and evaluate against the baselines"
rm -rf "$V2HT_WORKDIR/runs/quickstart"
$V train --run quickstart --epochs "$EPOCHS" --seed 0
$V evaluate quickstart --protocol new-to-user --sampling-seeds 0,1
echo "== 5. recommend for a test post and explain its long-tail suggestions"
# the first test post whose top 10 holds a long-tail tag (that is what --explain explains)
POST=$(.venv/bin/python - <<'PY'
import os
from pathlib import Path
from v2ht_kg.gnn.evaluate import recommend
from v2ht_kg.gnn.hybrid import HybridScorer
from v2ht_kg.gnn.runs import load_run
path = Path(os.environ["V2HT_WORKDIR"]) / "runs" / "quickstart"
run = load_run(path)
hybrid = HybridScorer(run, path)
ds = run.data.ds
longtail = {h.name for h in ds.hashtags if h.longtail}
rows = [p.row for p in ds.posts if p.split == "test"][:200]
pick = next((r for r, recs in zip(rows, recommend(run, rows, k=10, hybrid=hybrid)) if any(t in longtail for t, _ in recs)), rows[0])
print(ds.posts[pick].id)
PY
)
$V recommend quickstart --post "$POST" -k 10 --explain
echo "== done: work directory $V2HT_WORKDIR"
