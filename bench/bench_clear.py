"""How long `build --fresh` takes to empty the embedded store, both ways.

    .venv/bin/python bench/bench_clear.py STORE_DIR   # e.g. <workdir>/store of a built work dir

Copies STORE_DIR twice into a temporary folder (the original is not
touched) and, on one copy, starts the server and empties it with the
batched DETACH DELETE (`GraphStore.clear`, the path a served store still
takes), on the other starts it with ``fresh=True`` (the database's files
are dropped at start, what `build --fresh` now does). Prints the seconds of
each, server start included, and the edges that were there.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from v2ht_kg.kg.config import password_file_value
from v2ht_kg.kg.embedded import EmbeddedServer
from v2ht_kg.kg.store import GraphStore


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("server.lock", "server.json", "log"))
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        slow, fast = _copy(a.store, Path(d) / "delete"), _copy(a.store, Path(d) / "fresh")
        t = time.perf_counter()
        srv = EmbeddedServer(slow, password=password_file_value(slow))
        srv.start()
        gs = GraphStore(srv.uri, (srv.user, srv.password), srv.database)
        before = gs.counts()
        gs.clear()
        after = gs.counts()
        gs.close()
        srv.stop()
        t_delete = time.perf_counter() - t
        t = time.perf_counter()
        srv = EmbeddedServer(fast, password=password_file_value(fast), fresh=True)
        srv.start()
        gs = GraphStore(srv.uri, (srv.user, srv.password), srv.database)
        gs.ensure_schema()
        empty = gs.counts()
        gs.close()
        srv.stop()
        t_fresh = time.perf_counter() - t
    edges = sum(before["edges"].values())
    assert not sum(after["nodes"].values()) and not sum(empty["nodes"].values()), (after, empty)
    print(f"store {a.store}: {sum(before['nodes'].values()):,} nodes, {edges:,} edges")
    print(f"DETACH DELETE (start + clear): {t_delete:7.1f} s")
    print(f"fresh start (files dropped):   {t_fresh:7.1f} s   ({t_delete / t_fresh:.1f}x faster)")


if __name__ == "__main__":
    main()
