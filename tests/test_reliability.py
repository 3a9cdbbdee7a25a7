"""Reliability: the process that hosts the embedded JVM must not crash at exit."""
from __future__ import annotations

import subprocess
import sys
import textwrap

# What pytest's faulthandler plugin did to the test process: enable
# faulthandler before the JVM starts, disable it (restoring the pre-JVM
# SIGSEGV handler) while the JVM still runs. Without the guard in
# kg/embedded.py this script dies with SIGSEGV (exit 139) every time here:
# the JVM's safepoint polls and GC trap SIGSEGV on purpose.
_SCRIPT = textwrap.dedent("""
    import faulthandler, sys, tempfile
    from pathlib import Path
    faulthandler.enable()
    import jpype
    from v2ht_kg.kg.embedded import EmbeddedServer
    from v2ht_kg.kg.store import GraphStore
    with tempfile.TemporaryDirectory() as d:
        srv = EmbeddedServer(Path(d) / "store")
        srv.start()
        gs = GraphStore(srv.uri, (srv.user, srv.password), srv.database)
        gs.verify()
        gs.ensure_schema()
        faulthandler.disable()
        gs.load_hashtags([{"name": f"t{i}", "words": ["t"], "count": 1, "train_count": 1,
                           "longtail": True, "surfaces": []} for i in range(3000)], path="merge")
        for _ in range(30):
            gs.counts()
            jpype.java.lang.System.gc()
        gs.close()
        srv.stop()
    print("clean exit")
""")


def test_faulthandler_toggled_around_the_jvm_does_not_crash_the_process():
    p = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert p.stdout.strip().endswith("clean exit")
