"""The graph store: one class over one ``neo4j.Driver``, the same for the
embedded ArcadeDB server and a real Neo4j. Every statement is a file under
``cypher/`` (loaded by name through cypher_lib); values are parameters.

Loading has three paths, chosen per call (``path="auto"``):

* ``merge``  — Cypher MERGE in ``UNWIND $rows`` batches: idempotent, portable
  (Neo4j), the one used whenever the target type already holds data.
* ``create`` — Cypher CREATE, used for a type that is still empty (a fresh
  build): node batches spread over two concurrent sessions, relationship
  batches (edges, posts with their TAGGED edges) in one, as concurrent
  writes between shared endpoints conflict.
* ``bulk``   — ArcadeDB's GraphBatch ingest, only when this process hosts the
  embedded server and the type is empty; several times the Cypher speed.
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Iterator

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError, CypherSyntaxError, Neo4jError, ServiceUnavailable, SessionExpired

from . import cypher_lib
from .config import EMBEDDED_READER, redact_uri, resolve_store
from .errors import DataError, StoreError, V2HTError
from .edge_json import OWN, edge_rows_json, stored_fields
from .schema import REL_LABEL, Edge

BATCH = 20_000
WORKERS = 2
CONNECT_TIMEOUT_S = 5.0  # TCP connect
ACQUIRE_TIMEOUT_S = 10.0  # a connection from the pool, Bolt handshake included (driver default 60)
PATHS = ("auto", "merge", "create", "bulk")


def _one_line(text: str) -> str:
    first = (text or "").strip().splitlines()
    return first[0].strip() if first else "no message"


# --- read-only guard for ad-hoc queries ------------------------------------

_WRITE_PATTERNS = [
    ("CALL ... IN TRANSACTIONS", re.compile(r"\bIN\s+TRANSACTIONS\b", re.I)),
    ("LOAD CSV", re.compile(r"\bLOAD\s+CSV\b", re.I)),
] + [
    (kw, re.compile(rf"(?<![.$\w]){kw}\b", re.I))
    for kw in ("CREATE", "MERGE", "DETACH", "DELETE", "SET", "REMOVE", "DROP", "FOREACH")
]
# String literals, quoted identifiers and comments hold no clauses.
_NON_CODE = re.compile(
    r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.S
)


# Procedures a read-only query may CALL (lower case). Anything else (apoc.*,
# dbms.*, db.create.*, ...) needs --write. This is the friendly first line
# only: the server refuses writes of a read-only session by itself (the
# embedded store's reader user, Neo4j's READ access mode).
READ_PROCEDURES = frozenset({
    "db.labels", "db.relationshiptypes", "db.propertykeys", "db.indexes", "db.constraints",
    "db.schema.visualization", "db.schema.nodetypeproperties", "db.schema.reltypeproperties",
    "db.info", "db.ping", "dbms.components",
})
_CALL = re.compile(r"(?<![.$\w])CALL\s+((?:`[^`]*`|[A-Za-z_][\w]*)(?:\s*\.\s*(?:`[^`]*`|[A-Za-z_][\w]*))*)", re.I)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|//[^\n]*|/\*.*?\*/", re.S)


def _procedure_name(raw: str) -> str:
    return ".".join(part.strip().strip("`") for part in raw.split("."))


def writing_clause(query: str) -> str | None:
    """The first writing clause of ``query`` (ignoring literals, quoted names
    and comments) or a procedure call outside READ_PROCEDURES, or None for a
    query the client lets through as read-only."""
    code = _NON_CODE.sub(" ", query)
    hits = [(m.start(), name) for name, pat in _WRITE_PATTERNS if (m := pat.search(code))]
    # Procedure names may be back-quoted: look for them with only string
    # literals and comments blanked.
    for m in _CALL.finditer(_STRINGS.sub(" ", query)):
        name = _procedure_name(m.group(1))
        if name.lower() not in READ_PROCEDURES:
            hits.append((m.start(), f"CALL {name}: not a read-only procedure"))
            break
    return min(hits)[1] if hits else None


# --- driver values to plain Python -----------------------------------------

def plain(value):
    """Nodes → dict of properties plus ``_labels``; relationships → dict plus
    ``_type``; paths → list of nodes and relationships; temporal → ISO text."""
    if isinstance(value, neo4j.graph.Node):
        return {**{k: plain(v) for k, v in value.items()}, "_labels": sorted(value.labels)}
    if isinstance(value, neo4j.graph.Relationship):
        return {**{k: plain(v) for k, v in value.items()}, "_type": value.type}
    if isinstance(value, neo4j.graph.Path):
        out: list = [plain(value.start_node)]
        for rel in value.relationships:
            out.append(plain(rel))
            out.append(plain(rel.end_node))
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if hasattr(value, "iso_format"):
        return value.iso_format()
    return value


def edge_row(edge: Edge) -> dict:
    # overrides only where the pair had lower-priority relations: an empty
    # list on every CO edge (1.75M at INSVIDEO scale) cost ArcadeDB's ingest
    # 40% of its time (bench/bench_ingest.py, empty-list); readers coalesce
    clash = sorted(set(OWN) & set(edge.evidence))
    if clash:
        raise DataError(f"edge {edge.a!r}-{edge.b!r}: evidence field {clash[0]!r} clashes with a stored property")
    props = {"weight": float(edge.weight)}
    for key in stored_fields(edge):
        val = list(edge.overrides) if key == "overrides" else edge.evidence[key]
        if isinstance(val, (list, tuple)):
            val = [str(v) for v in val]
        elif not isinstance(val, (str, int, float, bool)):
            raise DataError(f"edge {edge.a!r}-{edge.b!r}: evidence {key!r} is not a JSON scalar or string list")
        props[key] = val
    return {"a": edge.a, "b": edge.b, "props": props}


def _flat(meta: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in meta.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}_"))
        elif isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = [str(x) for x in v]
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class GraphStore:
    """``ingest``: ArcadeDB's in-process bulk loader (embedded.ArcadeIngest)
    when this process hosts the server; None elsewhere. ``counter``: a
    callable returning ``counts()`` from the counts the engine keeps per type
    (same host only; it reads nothing else, so read-only sessions get it too)."""

    def __init__(self, uri: str, auth: tuple[str, str], database: str = "neo4j", ingest=None,
                 read_only: bool = False, counter=None):
        self.uri = redact_uri(uri)  # for messages; the driver gets the real one
        self.database = database
        self.read_only = read_only
        self.ingest = None if read_only else ingest
        self._counter = counter
        self._user = auth[0]
        self._tag_rids: dict[str, str] | None = None  # bulk path: name -> RID
        try:
            # connection_timeout: a port that accepts but never speaks Bolt
            # (an HTTP server, say) must fail in seconds, not after 60.
            self.driver = GraphDatabase.driver(uri, auth=auth, max_connection_pool_size=8,
                                               connection_timeout=CONNECT_TIMEOUT_S,
                                               connection_acquisition_timeout=ACQUIRE_TIMEOUT_S)
        except (ValueError, neo4j.exceptions.ConfigurationError) as e:
            raise StoreError(f"{self.uri}: {_one_line(str(e))}") from None

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GraphStore({self.uri!r}, database={self.database!r})"

    # --- errors ---------------------------------------------------------
    def _error(self, e: Exception, what: str = "") -> StoreError:
        where = f"{self.uri} (database {self.database})"
        if isinstance(e, AuthError):
            hint = ""
            if self.read_only and self._user == EMBEDDED_READER:
                hint = " (a server started by an older version lacks the read-only user: restart `v2ht-kg store serve`)"
            return StoreError(f"{where}: authentication failed for user {self._user!r}{hint}")
        if isinstance(e, (ServiceUnavailable, SessionExpired, OSError)):
            return StoreError(f"{where}: unreachable ({_one_line(str(e))})")
        if isinstance(e, Neo4jError):
            code = e.code or ""
            msg = _one_line(e.message or str(e))
            if self.read_only and ("Security.Forbidden" in code or "AccessMode" in code):
                return StoreError(f"{where}: the store refused a write{what} in a read-only session ({msg}); "
                                  "pass --write to allow writes")
            if "DatabaseNotFound" in code or ("database" in msg.lower() and "not" in msg.lower() and "exist" in msg.lower()):
                return StoreError(f"{where}: no such database ({msg})")
            if isinstance(e, CypherSyntaxError) or "SyntaxError" in code:
                return StoreError(f"Cypher syntax error{what}: {msg}")
            return StoreError(f"{where}: query{what} failed: {msg} [{code}]")
        return StoreError(f"{where}: {type(e).__name__}: {_one_line(str(e))}")

    # --- primitives -----------------------------------------------------
    def _execute(self, text: str, params: dict, write: bool, what: str = "") -> tuple[list[str], list[dict]]:
        if write and self.read_only:
            raise V2HTError(f"this store connection is read-only{what}; pass --write to allow writes")

        def work(tx):
            result = tx.run(text, params)
            rows = [dict(r) for r in result]
            return list(result.keys()), rows

        try:
            with self.driver.session(
                database=self.database,
                default_access_mode=neo4j.WRITE_ACCESS if write else neo4j.READ_ACCESS,
            ) as session:
                keys, rows = (session.execute_write if write else session.execute_read)(work)
        except (Neo4jError, ServiceUnavailable, SessionExpired, OSError, neo4j.exceptions.DriverError) as e:
            raise self._error(e, what) from None
        return keys, [{k: plain(v) for k, v in r.items()} for r in rows]

    def read(self, name: str, **params) -> list[dict]:
        """Rows of the named read query (``cypher/<name>.cypher``)."""
        q = cypher_lib.load(name)
        if q.mode != "read":
            raise V2HTError(f"cypher/{name}.cypher is a write query; use write()")
        rows: list[dict] = []
        for stmt in q.statements:
            rows = self._execute(stmt, params, write=False, what=f" {name}")[1]
        return rows

    def write(self, name: str, **params) -> list[dict]:
        q = cypher_lib.load(name)
        rows: list[dict] = []
        for stmt in q.statements:
            rows = self._execute(stmt, params, write=True, what=f" {name}")[1]
        return rows

    def run(self, query: str, params: dict | None = None, write: bool = False) -> tuple[list[str], list[dict]]:
        """The user's ad-hoc Cypher (``v2ht-kg cypher``): read-only unless
        ``write``. What refuses writes is the server: open the store with
        ``read_only=True`` (the embedded reader user; a READ session on
        Neo4j). The clause and procedure check here only answers sooner, with
        a friendlier message, before any round trip."""
        if not write:
            clause = writing_clause(query)
            if clause:
                raise V2HTError(f"this query writes ({clause}); pass --write to allow it")
        return self._execute(query, params or {}, write=write)

    def verify(self) -> None:
        """Raises StoreError unless the server answers, accepts the
        credentials and has the database."""
        try:
            self.driver.verify_connectivity()
        except Exception as e:  # the driver raises several families here
            raise self._error(e) from None
        self.read("admin/ping")

    # --- schema and maintenance ----------------------------------------
    def ensure_schema(self) -> None:
        # Schema statements run in auto-commit transactions: Neo4j refuses
        # them in a transaction that also touches data.
        try:
            with self.driver.session(database=self.database) as session:
                for stmt in cypher_lib.load("schema").statements:
                    session.run(stmt).consume()
        except (Neo4jError, ServiceUnavailable, SessionExpired, OSError) as e:
            raise self._error(e, " schema") from None

    def clear(self, batch: int = 20_000) -> None:
        """Deletes every node and relationship; constraints and indexes stay."""
        self._tag_rids = None
        while self.write("admin/clear", limit=batch)[0]["n"]:
            pass

    def counts(self) -> dict:
        if self._counter is not None:  # O(types), not a scan of every node and edge
            return self._counter()
        nodes = {r["label"]: r["n"] for r in self.read("admin/count_nodes")}
        edges = {r["type"]: r["n"] for r in self.read("admin/count_edges")}
        return {"nodes": dict(sorted(nodes.items())), "edges": dict(sorted(edges.items()))}

    # --- build marker ---------------------------------------------------
    def begin_build(self, meta: dict) -> None:
        props = {**_flat(meta), "id": "current", "status": "loading", "started": _now()}
        self.write("admin/build_begin", props=props)

    def finish_build(self, meta: dict) -> None:
        props = {**_flat(meta), "status": "complete", "finished": _now()}
        if not self.write("admin/build_finish", props=props):
            raise StoreError(f"{self.uri}: finish_build without begin_build (no Build marker)")

    def build_info(self) -> dict | None:
        rows = self.read("admin/build_info")
        return rows[0]["build"] if rows else None

    # --- loading --------------------------------------------------------
    def _empty(self, label: str, edge: bool = False) -> bool:
        if self.ingest is not None:
            return self.ingest.count(label) == 0
        # Without the engine at hand: a cheap existence probe through Cypher
        # would need the label in the text, so count via the generic queries.
        c = self.counts()
        return c["edges" if edge else "nodes"].get(label, 0) == 0

    def _choose(self, path: str, label: str, edge: bool = False) -> str:
        if path not in PATHS:
            raise V2HTError(f"load path must be one of {', '.join(PATHS)}, not {path!r}")
        if path == "bulk" and self.ingest is None:
            raise V2HTError("the bulk load path needs the embedded server in this process")
        if path in ("create", "bulk") and not self._empty(label, edge):
            raise V2HTError(f"load path {path!r} needs an empty store ({label} already has data); use merge")
        if path != "auto":
            return path
        if not self._empty(label, edge):
            return "merge"
        return "bulk" if self.ingest is not None else "create"

    def _batches(self, name: str, rows: list[dict], batch: int, workers: int) -> int:
        chunks = [rows[i:i + batch] for i in range(0, len(rows), batch)]
        if not chunks:
            return 0
        text = cypher_lib.load(name).statements[0]

        def one(chunk):
            return self._execute(text, {"rows": chunk}, write=True, what=f" {name}")[1][0]["n"]

        if workers <= 1 or len(chunks) == 1:
            return sum(one(c) for c in chunks)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return sum(pool.map(one, chunks))

    def load_hashtags(self, rows: list[dict], batch: int = BATCH, path: str = "auto") -> int:
        """rows {name, words, count, train_count, longtail, surfaces}."""
        rows = list({r["name"]: r for r in rows}.values())
        for r in rows:
            for key in ("name", "words", "count", "train_count", "longtail", "surfaces"):
                if key not in r:
                    raise DataError(f"hashtag row {r.get('name', r)!r} lacks {key!r}")
        rows = [{k: r[k] for k in ("name", "words", "count", "train_count", "longtail", "surfaces")} for r in rows]
        how = self._choose(path, "Hashtag")
        self._tag_rids = None
        if how == "bulk":
            rids = self.ingest.create_vertices("Hashtag", rows)
            self._tag_rids = dict(zip((r["name"] for r in rows), rids))
            return len(rows)
        if how == "create":
            return self._batches("load/hashtags_create", rows, batch, WORKERS)
        return self._batches("load/hashtags", rows, batch, 1)

    def load_edges(self, edges: list[Edge], batch: int = BATCH, path: str = "auto") -> dict[str, int]:
        """One relationship per pair (a < b), typed CP/SS/PO/CO by ``Edge.type``;
        returns the count per kind. On the bulk path every type goes through
        one ingest batch. Raises DataError when an edge names a hashtag not in
        the store."""
        by_kind: dict[str, dict[tuple[str, str], Edge]] = {k: {} for k in REL_LABEL}
        for e in edges:
            if e.type not in REL_LABEL:
                raise V2HTError(f"unknown relation kind {e.type!r}; expected one of {', '.join(REL_LABEL)}")
            by_kind[e.type][e.key] = e  # a later duplicate pair wins
        hows = {k: self._choose(path, REL_LABEL[k], edge=True) for k, v in by_kind.items() if v}
        out: dict[str, int] = {k: 0 for k in REL_LABEL}
        bulk = {k: list(by_kind[k].values()) for k, how in hows.items() if how == "bulk"}
        if bulk:
            out.update(self._bulk_edges(bulk))
        rows = {k: [edge_row(e) for e in by_kind[k].values()] for k in hows if k not in bulk}
        for kind, rs in rows.items():
            how = hows[kind]
            name = f"load/{kind}_create" if how == "create" else f"load/{kind}"
            # One session, CREATE or MERGE: concurrent transactions writing edges
            # between shared endpoints conflict (Neo4j's lock deadlocks; the embedded
            # engine's concurrent-modification errors), and the driver's retries,
            # each after about a second, made two sessions 2.5-3x slower than one
            n = self._batches(name, rs, batch, 1)
            if n != len(rs):
                raise DataError(f"{len(rs) - n} of {len(rs)} {kind} edges name hashtags not in the store")
            out[kind] = n
        return out

    def load_posts(self, rows: list[dict], batch: int = BATCH, path: str = "auto") -> int:
        """rows {id, user, tags: [names], split}; returns the TAGGED edges written."""
        rows = list({str(r["id"]): r for r in rows}.values())
        rows = [{"id": str(r["id"]), "user": str(r["user"]), "split": r["split"],
                 "tags": sorted({str(t) for t in r["tags"]})} for r in rows]
        n_tags = sum(len(r["tags"]) for r in rows)
        how = self._choose(path, "Post")
        if how != "merge" and not self._empty("User"):
            how = "merge"
        if how == "bulk":
            n = self._bulk_posts(rows)
        elif how == "create":
            users = sorted({r["user"] for r in rows})
            self._batches("load/users_create", [{"name": u} for u in users], batch, WORKERS)
            n = self._batches("load/posts_create", rows, batch, 1)  # their TAGGED edges: one session, as edges
        else:
            n = self._batches("load/posts", rows, batch, 1)
        if n != n_tags:
            raise DataError(f"{n_tags - n} of {n_tags} post tags name hashtags not in the store")
        return n

    def _bulk_edges(self, bulk: dict[str, list[Edge]]) -> dict[str, int]:
        """The bulk path. Rows are not built via edge_row: at 100k edges the
        per-value checks cost as much as the ingest itself, so types are
        checked by the JSON encoder instead (kg/edge_json.py, a column at a
        time), chunk by chunk, while the engine ingests the chunk before
        (embedded.JsonChunks)."""
        from .embedded import JsonChunks

        rids = self._hashtag_rids()
        batches = {}
        for kind, es in bulk.items():
            missing = [e for e in es if e.a not in rids or e.b not in rids]
            if missing:
                m = missing[0]
                raise DataError(f"{len(missing)} {kind} edges name hashtags not in the store, e.g. {m.a!r}-{m.b!r}")
            # the distinct field sets, not a union over every edge's keys (3 s at INSVIDEO scale)
            clash = {*OWN, "_src", "_dst"} & {k for ks in {tuple(e.evidence) for e in es} for k in ks}
            if clash:
                raise DataError(f"{kind} edge evidence field {sorted(clash)[0]!r} clashes with a stored property")
            batches[REL_LABEL[kind]] = JsonChunks.over(es, partial(edge_rows_json, rids=rids))
        try:
            self.ingest.create_edges(batches)
        except TypeError as e:  # a value JSON cannot carry
            raise DataError(f"edge evidence is not JSON scalars or lists ({e})") from None
        return {k: len(es) for k, es in bulk.items()}

    def _hashtag_rids(self) -> dict[str, str]:
        # Fetching the map over Bolt costs about 1 s per 15k hashtags, so the
        # bulk hashtag load keeps it; the count guards against other writers.
        if self._tag_rids is None or len(self._tag_rids) != self.ingest.count("Hashtag"):
            self._tag_rids = {r["name"]: r["rid"] for r in self.read("admin/hashtag_rids")}
        return self._tag_rids

    def _bulk_posts(self, rows: list[dict]) -> int:
        tags = self._hashtag_rids()
        missing = sorted({t for r in rows for t in r["tags"] if t not in tags})
        if missing:
            raise DataError(f"{len(missing)} post tags name hashtags not in the store, e.g. {missing[0]!r}")
        users = sorted({r["user"] for r in rows})
        user_rid = dict(zip(users, self.ingest.create_vertices("User", [{"name": u} for u in users])))
        post_rid = self.ingest.create_vertices("Post", [{"id": r["id"], "split": r["split"]} for r in rows])
        # no properties: rid lists, which cross as joined strings (no JSON per edge)
        t_src = [p for r, p in zip(rows, post_rid) for _ in r["tags"]]
        t_dst = [tags[t] for r in rows for t in r["tags"]]
        self.ingest.create_edges({
            "POSTED": ([user_rid[r["user"]] for r in rows], list(post_rid)),
            "TAGGED": (t_src, t_dst)})
        return len(t_src)


@contextmanager
def open_store(store: str | None, workdir: Path, create: bool = False,
               read_only: bool = False, fresh: bool = False) -> Iterator[GraphStore]:
    """The configured store, verified; the embedded server is started for
    the duration when ``store`` resolves to it (or reused when one serves
    the work directory already). Without ``create`` an embedded store must
    exist already: querying a work directory that was never built would
    otherwise start an empty database and answer "0 rows". With
    ``read_only`` the session logs in as the read-only user (embedded) or
    the configured read user (Neo4j) and runs only READ transactions: the
    server refuses any write. With ``fresh`` (``build --fresh``) an embedded
    store this process starts begins from an empty database: its old files,
    damaged or not, are dropped (a served one is cleared by the build)."""
    cfg = resolve_store(store, workdir)
    if cfg.embedded and not create and not (Path(cfg.embedded_root) / "arcadedb" / "databases").is_dir():
        raise DataError(f"no graph store in {workdir}: run `v2ht-kg build` there first "
                        "(or pass --store / set V2HT_STORE for a Neo4j server)")
    if not cfg.embedded:
        gs = GraphStore(cfg.uri, cfg.read_auth if read_only else cfg.auth, cfg.database, read_only=read_only)
        try:
            gs.verify()
            yield gs
        finally:
            gs.close()
        return
    from .embedded import EmbeddedServer

    server = EmbeddedServer(cfg.embedded_root, password=cfg.password, fresh=fresh)
    uri = server.start()
    try:
        gs = GraphStore(uri, cfg.read_auth if read_only else cfg.auth, cfg.database, ingest=server.ingest,
                        read_only=read_only, counter=server.type_counts if server.ingest is not None else None)
        try:
            gs.verify()
            yield gs
        except StoreError as e:
            # ArcadeDB reports a full disk as a lost transaction, or not at all
            raise StoreError(_with_disk_state(str(e), Path(cfg.embedded_root))) from None
        finally:
            gs.close()
    finally:
        server.stop()


def _with_disk_state(message: str, root: Path) -> str:
    from .fsio import disk_free

    free = disk_free(root)
    if free is None or free >= DISK_FULL_BYTES:
        return message
    return f"{message}; the disk holding {root} is full ({free // 1024} KiB free): free space, then rerun"


DISK_FULL_BYTES = 16 << 20
