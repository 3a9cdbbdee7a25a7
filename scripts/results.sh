#!/usr/bin/env bash
# Regenerate every results table in docs/results/ (the numbers the README
# quotes): paper Table 2 (all variants + baselines, mean ± std over seeds
# 0,1,2) on synthetic small and on twitter-hashtags-2013, and Table 4
# (modality subsets) on synthetic small.
#   bash scripts/results.sh [synthetic|modalities|twitter|all]
# Runs are kept in $RESULTS_WORKDIR (default ./v2ht-results) and reused, so
# an interrupted call resumes. About 1.5 h on 2 CPU cores for "all" (twitter:
# at most 6 epochs a run, to keep its 12 runs near 45 min).
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
if [ -z "${V2HT_BIN:-}" ]; then
  bash scripts/setup.sh
  V2HT_BIN=.venv/bin/v2ht-kg
fi
V="$V2HT_BIN"
W="${RESULTS_WORKDIR:-$PWD/v2ht-results}"
SHARED="${SHARED_DATA:-../shared/data}"
THREADS="${THREADS:-1}"

if [ "$part" = synthetic ] || [ "$part" = modalities ] || [ "$part" = all ]; then
  [ -f "$W/synthetic/graph.pt" ] || $V build --format synthetic --preset small --seed 42 -w "$W/synthetic" --json >/dev/null
fi
if [ "$part" = synthetic ] || [ "$part" = all ]; then
  $V results -w "$W/synthetic" --table variants --seeds 0,1,2 --threads "$THREADS" \
    --title "Table 2 on synthetic small (visual + acoustic + text)" --out docs/results/synthetic-variants.md
fi
if [ "$part" = modalities ] || [ "$part" = all ]; then
  $V results -w "$W/synthetic" --table modalities --seeds 0 --threads "$THREADS" \
    --title "Table 4 on synthetic small: modality subsets (full V2HT)" --out docs/results/synthetic-modalities.md
fi
if [ "$part" = twitter ] || [ "$part" = all ]; then
  if [ ! -d "$SHARED/twitter-hashtags-2013" ]; then
    echo "results: $SHARED/twitter-hashtags-2013 is absent; skipping the twitter table" >&2
  else
    [ -f "$W/twitter/graph.pt" ] || $V build "$SHARED/twitter-hashtags-2013" --format twitter-hashtags-2013 -w "$W/twitter" --json >/dev/null
    $V results -w "$W/twitter" --table variants --seeds 0,1,2 --epochs 6 --valid-posts 1000 --threads "$THREADS" \
      --title "Table 2 on twitter-hashtags-2013 (text only, its chronological split)" --out docs/results/twitter-2013-variants.md
  fi
fi
