#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite against the embedded
# ArcadeDB server (and Neo4j too when NEO4J_URI is set).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
# pytest's 5 means no test ran: that is a failure here, not a pass.
[ "$rc" = 5 ] && { echo "test: no tests ran" >&2; exit 1; }
exit "$rc"
