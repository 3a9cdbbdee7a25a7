"""The embedded graph store: an ArcadeDB server with its Bolt plugin, run on
the files of ``<workdir>/store``, so the default set-up needs no Neo4j.

Files under the store folder::

    .password     root password (0600), see config.embedded_password
    .password-reader  password of the read-only user v2ht_reader (0600)
    server.lock   flock held by whichever process serves these files
    server.json   {pid, bolt_port, http_port} while a server runs
    arcadedb/     ArcadeDB's root (databases, users, event logs)
    log/          the engine's log (it never writes to our stdout/stderr)

In-process or child process (measured here, 2 cores): both start in about
1.5 s, but only in-process can the store use ArcadeDB's own bulk ingest API
(GraphBatch: 20k-85k edges/s here against 1.5k-13k/s for Cypher over Bolt). The
engine's logs are routed to files through a java.util.logging config, so
in-process does not dirty the CLI's output. So the default is in-process;
``mode="process"`` runs the same ``serve_forever`` in a child (used when the
caller wants the JVM out of its process, e.g. next to a long training run).

One server per folder: the lock makes a second starter find the first one
(``v2ht-kg store serve`` in another terminal) and reuse its port instead of
opening the same files twice.
"""
from __future__ import annotations

import atexit
import fcntl
import gc
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .config import (DEFAULT_DATABASE, EMBEDDED_READER, EMBEDDED_USER, READER_GROUP, READER_PASSWORD_FILE,
                     password_file_value)
from .errors import StoreError
from .fsio import named
from .prefetch import ordered_map

HEAP = "2g"
# The JVM picks G1 on two cores. On the bulk ingest's short-lived JSON
# garbage the parallel collector spends about 30% less CPU and loads
# 1.8M typed edges about 25% faster (bench/bench_ingest.py, variant g1);
# the rest of the JVM's work here is queries with a small live set.
GC_ARGS = ("-XX:+UseParallelGC",)


def jvm_gc_args() -> list[str]:
    """GC_ARGS, unless the user's JVM options already choose a collector
    (two collectors stop the JVM from starting)."""
    chosen = " ".join(os.environ.get(k, "") for k in ("ARCADEDB_JVM_ARGS", "JAVA_TOOL_OPTIONS"))
    return [] if re.search(r"-XX:\+Use\w*GC\b", chosen) else list(GC_ARGS)
START_TIMEOUT_S = 60.0
START_ATTEMPTS = 5

_LOGGING_PROPERTIES = """\
handlers = java.util.logging.FileHandler
.level = INFO
io.undertow.level = WARNING
org.xnio.level = WARNING
org.jboss.level = WARNING
java.util.logging.FileHandler.level = INFO
java.util.logging.FileHandler.pattern = {pattern}
java.util.logging.FileHandler.formatter = com.arcadedb.log.LogFormatter
java.util.logging.FileHandler.limit = 20000000
java.util.logging.FileHandler.count = 3
java.util.logging.FileHandler.append = true
"""


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


def _free_port(avoid: set[int] = frozenset()) -> int:
    """A port that can be bound now, below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the ephemeral
    range, which outgoing connections (the driver's, any test's) draw from
    too: between our close and the server's bind one of them may take it.
    That happened in CI ("Unable to listen to a HTTP port"). Ports below the
    range are never given to outgoing connections."""
    lo, _ = _ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, lo - 12000), lo) if lo > 2048 else 0
        if port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            got = s.getsockname()[1]
            if got not in avoid:
                return got
    raise StoreError("no free TCP port on 127.0.0.1 for the embedded server")


def check_database_files(db_dir: Path) -> None:
    """Refuses a database folder whose files the schema names but that are
    gone. ArcadeDB opens such a folder without a word and answers 0 rows
    from the missing type (issue 9: a deleted bucket read as an empty graph)."""
    if not db_dir.is_dir():
        return
    files = [f.name for f in db_dir.iterdir()]
    fix = f"rebuild it: v2ht-kg build --fresh (the store folder is {db_dir.parent.parent.parent})"
    schema = db_dir / "schema.json"
    if not schema.exists():
        if any(f.endswith(".bucket") for f in files):
            raise StoreError(f"the store's schema file {schema} is missing; {fix}")
        return
    try:
        types = json.loads(schema.read_text(encoding="utf-8")).get("types", {})
    except (OSError, ValueError, UnicodeDecodeError, AttributeError) as e:
        raise StoreError(f"the store's schema file {schema} is unreadable ({type(e).__name__}); {fix}") from None
    for name, t in types.items():
        buckets = list(t.get("buckets", []))
        if t.get("type") == "v":  # vertex types keep their edge lists beside
            buckets += [f"{b}_{side}_edges" for b in t.get("buckets", []) for side in ("in", "out")]
        for b in buckets:
            if not any(f.startswith(b + ".") and f.endswith(".bucket") for f in files):
                raise StoreError(f"the store has lost the file of {name} ({db_dir / (b + '.*.bucket')}); {fix}")


class _PortClash(Exception):
    pass


def _port_clash(e: Exception) -> bool:
    text = str(e)
    return "Unable to listen" in text or "Address already in use" in text or "BindException" in text


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_server_json(root: Path) -> dict | None:
    """The running server's ports, or None when none is alive on ``root``."""
    try:
        info = json.loads((Path(root) / "server.json").read_text(encoding="utf-8"))
        pid, bolt = int(info["pid"]), int(info["bolt_port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _pid_alive(pid) and port_open(bolt):
        return info
    return None


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with named(path):
        tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _release_fatal_signals() -> None:
    """Turn Python's faulthandler off before the JVM starts in this process.

    The JVM traps SIGSEGV on purpose (implicit null checks, safepoint polls)
    and installs its own handler for it. faulthandler, when enabled earlier
    (pytest's faulthandler plugin, ``-X faulthandler``, PYTHONFAULTHANDLER),
    remembers the handler that was there before it; its ``disable()`` puts
    that one back. Called after the JVM started (pytest does so at
    unconfigure), that replaces the JVM's handler, and the JVM's next
    deliberate trap kills the process (exit 139 after the tests passed).
    Disabling it here, while no JVM handler exists yet, leaves faulthandler
    holding nothing to restore, so a later ``disable()`` is a no-op and the
    JVM's handler stays in place for the life of the process.
    """
    import faulthandler

    if faulthandler.is_enabled():
        faulthandler.disable()


def _start_jvm(log_dir: Path) -> None:
    """Start the JVM once per process with the engine's logs going to files.

    The JVM itself prints one warning on fd 2 as it starts (incubator
    modules); fd 2 points at the log file for that moment only.
    """
    import jpype
    from arcadedb_embedded.jvm import start_jvm

    if jpype.isJVMStarted():
        return
    _release_fatal_signals()
    log_dir.mkdir(parents=True, exist_ok=True)
    props = log_dir / "logging.properties"
    props.write_text(_LOGGING_PROPERTIES.format(pattern=str(log_dir / "arcadedb.log")), encoding="utf-8")
    os.environ.setdefault("ARCADEDB_JVM_ERROR_FILE", str(log_dir / "hs_err_pid%p.log"))
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log_dir / "jvm.log", "ab") as f:
            os.dup2(f.fileno(), 2)
        start_jvm(heap_size=HEAP, jvm_args=[f"-Djava.util.logging.config.file={props}", *jvm_gc_args()])
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    # Java's own stderr goes to jvm.log too: a log handler that cannot write
    # (a full disk) reports through System.err with a 20-line Java stack,
    # which would bury the CLI's one-line error. A PrintStream never throws.
    from jpype import JClass

    stream = JClass("java.io.PrintStream")(JClass("java.io.FileOutputStream")(str(log_dir / "jvm.log"), True), True)
    JClass("java.lang.System").setErr(stream)


_RUNNING: set["EmbeddedServer"] = set()


def _stop_all() -> None:
    # The engine's threads are not daemons: a server left running (an
    # exception that skipped stop()) would keep the interpreter from exiting.
    # Registered after the JVM starts, so (atexit is LIFO) it runs before
    # JPype's own hook shuts the JVM down.
    for server in list(_RUNNING):
        try:
            server.stop()
        except Exception:
            pass


class _Lock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class EmbeddedServer:
    """``with EmbeddedServer(root) as uri:`` serves ``root`` (``<workdir>/store``)
    over Bolt on a free 127.0.0.1 port, or reuses the server that already
    does. ``ingest`` is the in-process bulk loader when this process hosts the
    engine, else None."""

    def __init__(self, root: Path, password: str | None = None, mode: str = "inprocess",
                 fresh: bool = False):
        if mode not in ("inprocess", "process"):
            raise ValueError(f"mode must be inprocess or process, not {mode!r}")
        self.root = Path(root).resolve()
        self.password = password
        self.mode = mode
        self.fresh = fresh  # discard the database's files at start (build --fresh)
        self.database = DEFAULT_DATABASE
        self.user = EMBEDDED_USER
        self.read_user = EMBEDDED_READER
        self.read_password: str | None = None
        self.bolt_port: int | None = None
        self.http_port: int | None = None
        self.reused = False
        self._server = None
        self._child: subprocess.Popen | None = None
        self._lock = _Lock(self.root / "server.lock")
        self._ingest = None

    @property
    def uri(self) -> str:
        if self.bolt_port is None:
            raise StoreError("embedded server is not running")
        return f"bolt://127.0.0.1:{self.bolt_port}"

    def type_counts(self) -> dict:
        return self.ingest.type_counts()

    @property
    def ingest(self):
        if self._server is None:
            return None
        if self._ingest is None:
            self._ingest = ArcadeIngest(self._server.get_database(self.database))
        return self._ingest

    def start(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.password is None:
            self.password = password_file_value(self.root)
        self.read_password = password_file_value(self.root, READER_PASSWORD_FILE)
        if self._lock.try_acquire():
            if self.mode == "inprocess":
                self._start_inprocess()
            else:
                self._lock.release()  # the child takes it
                self._start_child()
        else:
            self._reuse()
        return self.uri

    def _reuse(self) -> None:
        # The holder may still be starting: server.json appears once it listens.
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = read_server_json(self.root)
            if info is not None:
                self.bolt_port, self.http_port = int(info["bolt_port"]), int(info["http_port"])
                self.reused = True
                return
            time.sleep(0.2)
        raise StoreError(
            f"another process holds {self.root / 'server.lock'} but serves no Bolt port; "
            "stop it (v2ht-kg store serve) and retry"
        )

    def _start_inprocess(self) -> None:
        # A port picked free can still be taken before the server binds it
        # (another process on the machine): pick again, a few times.
        db_dir = self.root / "arcadedb" / "databases" / self.database
        if self.fresh and db_dir.exists():
            # `build --fresh`: the lock is ours, so no server reads these
            # files. Dropping them is O(1) where a DETACH DELETE took 66-120 s
            # for 600k edges, and it also repairs a damaged store. One rename
            # first, so a kill midway leaves no half-deleted database.
            trash = db_dir.with_name(f".discarded-{os.getpid()}-{db_dir.name}")
            db_dir.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            check_database_files(db_dir)
        except StoreError:
            self._lock.release()
            raise
        for attempt in range(START_ATTEMPTS):
            try:
                self._start_inprocess_once()
                return
            except _PortClash:
                if attempt == START_ATTEMPTS - 1:
                    self._lock.release()
                    raise StoreError(
                        f"embedded ArcadeDB server on {self.root} failed to start: "
                        f"no port could be bound in {START_ATTEMPTS} tries") from None

    def _start_inprocess_once(self) -> None:
        try:
            _start_jvm(self.root / "log")
            from arcadedb_embedded.server import create_server

            self.http_port = _free_port()
            self.bolt_port = _free_port({self.http_port})
            self._server = create_server(
                root_path=str(self.root / "arcadedb"),
                root_password=self.password,
                config={
                    "host": "127.0.0.1",
                    "http_port": self.http_port,
                    "server_plugins": "Bolt:com.arcadedb.bolt.BoltProtocolPlugin",
                    "bolt_port": self.bolt_port,
                },
            )
            self._server.start()
            if not _RUNNING:
                atexit.unregister(_stop_all)
                atexit.register(_stop_all)
            _RUNNING.add(self)
            self._server.create_database(self.database)  # no-op when it exists
            self._ensure_reader()
        except Exception as e:
            if self._server is not None:
                try:
                    self._server.stop()
                except Exception:
                    pass
            _RUNNING.discard(self)
            self._server = None
            if _port_clash(e):
                raise _PortClash() from None  # the lock stays held for the retry
            self._lock.release()
            raise StoreError(f"embedded ArcadeDB server on {self.root} failed to start: {e}") from None
        _write_json_atomic(
            self.root / "server.json",
            {"pid": os.getpid(), "bolt_port": self.bolt_port, "http_port": self.http_port},
        )

    def _ensure_reader(self) -> None:
        """The read-only user and its group, (re)declared at every start.

        ArcadeDB checks every record operation against the user's group for
        that database (server-groups.json): this group may read records of
        any type and nothing else — no create/update/delete of records, no
        schema, no security or settings. Writes through Cypher clauses,
        apoc.* procedures or anything else come back as
        Neo.ClientError.Security.Forbidden. The password is set from
        ``.password-reader`` each time, so a lost file only means a new one.
        """
        import jpype

        sec = self._server._java_server.getSecurity()
        json_object = jpype.JClass("com.arcadedb.serializer.json.JSONObject")
        group = {"access": [], "resultSetLimit": -1, "readTimeout": -1,
                 "types": {"*": {"access": ["readRecord"]}}}
        sec.saveGroup(self.database, READER_GROUP, json_object(json.dumps(group)))
        user = {"name": self.read_user, "password": str(sec.encodePassword(self.read_password)),
                "databases": {self.database: [READER_GROUP]}}
        if sec.existsUser(self.read_user):
            sec.updateUser(json_object(json.dumps(user)))
        else:
            sec.createUser(json_object(json.dumps(user)))

    def _start_child(self) -> None:
        log_dir = self.root / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "child.log", "ab") as log:
            # cwd = the store folder: anything the engine writes relative to
            # its working directory lands there, not in the user's.
            self._child = subprocess.Popen(
                [sys.executable, "-m", "v2ht_kg.kg.embedded", str(self.root)],
                cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._child.poll() is not None:
                raise StoreError(f"embedded ArcadeDB server exited at start; see {log_dir / 'child.log'}")
            info = read_server_json(self.root)
            if info is not None and int(info["pid"]) == self._child.pid:
                self.bolt_port, self.http_port = int(info["bolt_port"]), int(info["http_port"])
                return
            time.sleep(0.1)
        self._child.kill()
        raise StoreError(f"embedded ArcadeDB server did not open its port in {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        """Stops what this object started; a reused server keeps running."""
        self._ingest = None
        _RUNNING.discard(self)
        if self._server is not None:
            try:
                (self.root / "server.json").unlink(missing_ok=True)
                self._server.stop()
            finally:
                self._server = None
                self._lock.release()
        if self._child is not None:
            self._child.terminate()
            try:
                self._child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            self._child = None
        if not self.reused:
            self.bolt_port = self.http_port = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def frozen_gc():
    """Bulk loads with the Python heap frozen. JPype runs a full Python
    collection on every JVM collection; over a build's millions of live
    objects (posts, edges, rows) those took 77% of an INSVIDEO load. Frozen
    objects are never rescanned; what the load itself allocates still is."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _engine_errors(method):
    """The engine's exceptions (a full disk, a failed batch commit) as one
    StoreError line instead of a Java-flavoured traceback."""
    import functools

    @functools.wraps(method)
    def wrapped(*args, **kwargs):
        import jpype
        from arcadedb_embedded.exceptions import ArcadeDBError

        try:
            return method(*args, **kwargs)
        except (ArcadeDBError, jpype.JException) as e:
            text = " ".join(str(e).split())
            raise StoreError(f"bulk load into the embedded store failed: {text[:400]}") from None

    return wrapped


@dataclass
class JsonChunks:
    """One edge type's rows as JSON arrays made chunk by chunk: ``make`` are
    zero-argument callables, each returning one chunk's text. They run on
    one thread ahead of the engine, which parses one chunk while Python
    builds the next (a JVM call releases the GIL; a second Python thread
    would only contend for it)."""

    n: int
    make: list

    @classmethod
    def over(cls, items: list, to_json) -> "JsonChunks":
        """``to_json(chunk of items)`` for every ingest chunk of ``items``."""
        step = ArcadeIngest.CHUNK
        return cls(len(items), [partial(to_json, items[i:i + step]) for i in range(0, len(items), step)])


def _n_rows(rows) -> int:
    if isinstance(rows, JsonChunks):
        return rows.n
    return len(rows[0]) if isinstance(rows, tuple) else len(rows)


class ArcadeIngest:
    """ArcadeDB's own bulk ingest (GraphBatch) on the database this process
    serves. Rows cross into the JVM as one JSON string per chunk (lists of
    strings included), which is what makes it fast; GraphBatch manages its
    own transactions, so the store only uses it on empty types (a fresh
    build) and keeps Cypher MERGE for everything else."""

    CHUNK = 100_000

    def __init__(self, db):
        import jpype
        from arcadedb_embedded.results import _bridge_class

        self.db = db
        self._vertex_batcher = jpype.JClass("com.arcadedb.python.VertexBatcher")
        self._edge_batcher = _bridge_class("EdgeBatcher")
        if self._edge_batcher is None:
            raise StoreError("this arcadedb-embedded wheel lacks its bulk bridge")

    @_engine_errors
    def count(self, type_name: str) -> int:
        return int(self.db.count_type(type_name))

    @_engine_errors
    def type_counts(self) -> dict:
        """GraphStore.counts() from the engine's per-type record counts: types
        with no record are left out, as the Cypher count leaves them out."""
        out: dict[str, dict[str, int]] = {"nodes": {}, "edges": {}}
        for t in self.db.schema.get_types():
            kind = str(t.getClass().getSimpleName())
            side = "nodes" if "Vertex" in kind else "edges" if "Edge" in kind else None
            if side is None:
                continue
            name = str(t.getName())
            n = int(self.db.count_type(name))
            if n:
                out[side][name] = n
        return {k: dict(sorted(v.items())) for k, v in out.items()}

    @_engine_errors
    def create_vertices(self, type_name: str, rows: list[dict]) -> list[str]:
        """Creates one vertex per row; returns their RIDs in row order."""
        self.db.schema.get_or_create_vertex_type(type_name)
        rids: list[str] = []
        with self.db.graph_batch(use_wal=True) as gb:
            for i in range(0, len(rows), self.CHUNK):
                joined = str(self._vertex_batcher.createVerticesJson(
                    gb._java_graph_batch, type_name, json.dumps(rows[i:i + self.CHUNK])))
                if joined:
                    rids.extend(joined.split(";"))
        if len(rids) != len(rows):
            raise StoreError(f"bulk load of {type_name}: {len(rids)} of {len(rows)} vertices created")
        return rids

    @_engine_errors
    def create_edges(self, rows_by_type: dict[str, "list[dict] | JsonChunks | tuple[list[str], list[str]]"]) -> int:
        """rows: {"_src": rid, "_dst": rid, **properties}, per edge type, as a
        list or as JsonChunks, or, for edges without properties, a pair
        (source rids, destination rids): those cross as two joined strings,
        with no JSON row per edge to build or parse.
        Small loads put every type through ONE GraphBatch: closing a batch
        costs about a second, so one batch for four relation types loads
        about twice as fast as one per type (measured 48k vs 23k edges/s
        cold, 4 x 25k edges). Large loads take one batch per type: at
        INSVIDEO scale (1.8M edges) one shared batch fails at close with
        "cannot run inside a transaction the caller opened", while each
        type alone loads."""
        total = sum(_n_rows(r) for r in rows_by_type.values())
        for type_name in rows_by_type:
            self.db.schema.get_or_create_edge_type(type_name)
        groups = [rows_by_type] if total <= self.SHARED_BATCH_EDGES else [{t: r} for t, r in rows_by_type.items()]
        for group in groups:
            n = sum(_n_rows(r) for r in group.values())
            # WAL on: a crash mid-load must not corrupt the files (the Build
            # marker already says the load is incomplete).
            with self.db.graph_batch(use_wal=True, parallel_flush=True, expected_edge_count=max(n, 1)) as gb:
                for type_name, rows in group.items():
                    if isinstance(rows, JsonChunks):
                        for text in ordered_map(lambda make: make(), rows.make, workers=1, ahead=2):
                            self._edge_batcher.newEdgesJson(gb._java_graph_batch, type_name, text)
                        continue
                    if isinstance(rows, tuple):
                        src, dst = rows
                        for i in range(0, len(src), self.CHUNK):
                            self._edge_batcher.newEdgesJoined(
                                gb._java_graph_batch, ";".join(src[i:i + self.CHUNK]), type_name,
                                ";".join(dst[i:i + self.CHUNK]))
                        continue
                    for i in range(0, len(rows), self.CHUNK):
                        self._edge_batcher.newEdgesJson(
                            gb._java_graph_batch, type_name, json.dumps(rows[i:i + self.CHUNK]))
        return total

    SHARED_BATCH_EDGES = 250_000


def serve_forever(root: Path, on_ready=None) -> None:
    """Serve ``root`` until SIGINT/SIGTERM (``v2ht-kg store serve``).
    ``on_ready(server)`` is called once the port is open (to print it)."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    server = EmbeddedServer(root, mode="inprocess")
    try:
        server.start()
        if server.reused:
            raise StoreError(
                f"{root} is already served on bolt://127.0.0.1:{server.bolt_port} "
                f"(pid {read_server_json(server.root)['pid']})"
            )
        if on_ready is not None:
            on_ready(server)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for s, h in previous.items():
            signal.signal(s, h)


if __name__ == "__main__":  # the child process of EmbeddedServer(mode="process")
    serve_forever(Path(sys.argv[1]))
