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
echo "== 4. train V2HT ($EPOCHS epochs at most) and evaluate against the baselines"
rm -rf "$V2HT_WORKDIR/runs/quickstart"
$V train --run quickstart --epochs "$EPOCHS" --seed 0
echo "== 5. recommend for a test post and explain its long-tail suggestions"
POST=$(.venv/bin/python - <<'PY'
import json, os
for line in open(os.path.join(os.environ["V2HT_WORKDIR"], "data", "posts.jsonl"), encoding="utf-8"):
    p = json.loads(line)
    if p["split"] == "test":
        print(p["id"]); break
PY
)
$V recommend quickstart --post "$POST" -k 10 --explain
echo "== done: work directory $V2HT_WORKDIR"
