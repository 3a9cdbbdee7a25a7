#!/usr/bin/env bash
# The long-tail trade-off of `--tail-boost` for one trained run: R@10,
# NDCG@10 and long-tail R@10 on the test split at each boost B (ranking by
# score − B·log(1 + the tag's known uses)), as a Markdown table.
#   bash scripts/tail_curve.sh WORKDIR RUN [BOOSTS]    (default "0 0.05 0.1 0.2 0.3")
# docs/metrics.md quotes its output for the README's results runs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/tail_curve.sh WORKDIR RUN [BOOSTS]" >&2
  exit 2
fi
wd="$1" run="$2" boosts="${3:-0 0.05 0.1 0.2 0.3}"
V="${V2HT_BIN:-.venv/bin/v2ht-kg}"
echo "| tail boost | R@10 | NDCG@10 | long-tail R@10 |"
echo "|---|---|---|---|"
for b in $boosts; do
  $V evaluate "$run" -w "$wd" --tail-boost "$b" --no-baselines --json | .venv/bin/python -c "
import json, sys
d = json.load(sys.stdin)
o, l = d['overall'], d['longtail']
print(f\"| $b | {o['recall@10']:.4f} | {o['ndcg@10']:.4f} | {l['recall@10']:.4f} |\")"
done
