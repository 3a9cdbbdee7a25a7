"""Security: exploration without --write cannot write, whatever the query.

The server refuses: read-only sessions log in as the embedded store's reader
user, whose ArcadeDB group may read records and nothing else. The client's
clause/procedure check is only a first, friendlier line, so the server-side
tests below send the attacks past it (GraphStore._execute, and the raw
driver in WRITE access mode)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import neo4j
import pytest

from v2ht_kg.kg.errors import StoreError, V2HTError
from v2ht_kg.kg.store import GraphStore, writing_clause

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]

# The attacks plus the plain clauses and schema/security changes.
ATTACKS = [
    "CALL apoc.do.when(true, 'MATCH (n:Hashtag) DETACH DELETE n', '', {}) YIELD value RETURN value",
    "CALL apoc.merge.node(['Hashtag'], {name: 'merged'}) YIELD node RETURN node",
    "MATCH (a:Hashtag {name: 'sec a'}), (b:Hashtag {name: 'sec b'}) "
    "CALL apoc.refactor.mergeNodes([a, b]) YIELD node RETURN node",
    "CALL apoc.create.node(['Hashtag'], {name: 'created'}) YIELD node RETURN node",
    "CALL dbms.security.createUser('evil', 'pw', false)",
    "CREATE (:Hashtag {name: 'evil'})",
    "CREATE (:Evil {name: 'new type'})",
    "MATCH (n:Hashtag) SET n.x = 1",
    "MATCH (n:Hashtag) REMOVE n.count",
    "MATCH (n:Hashtag) DETACH DELETE n",
    "MERGE (:Hashtag {name: 'merged'})",
    "CREATE INDEX evil_idx IF NOT EXISTS FOR (n:Hashtag) ON (n.x)",
    "CREATE CONSTRAINT evil_c IF NOT EXISTS FOR (n:Evil) REQUIRE n.id IS UNIQUE",
]


def snapshot(store):
    return store.counts(), sorted(json.dumps(r, sort_keys=True) for r in store.run(
        "MATCH (n) RETURN labels(n) AS l, properties(n) AS p", {})[1])


@pytest.fixture
def seeded(store):
    store.clear()
    store.run("CREATE (:Hashtag {name: 'sec a', count: 1}), (:Hashtag {name: 'sec b', count: 2})"
              "-[:CO {weight: 0.5}]->(:Hashtag {name: 'sec c', count: 3})", {}, write=True)
    return store


@pytest.fixture
def reader(embedded_server):
    gs = GraphStore(embedded_server.uri, (embedded_server.read_user, embedded_server.read_password),
                    embedded_server.database, read_only=True)
    yield gs
    gs.close()


def test_reader_can_read(seeded, reader):
    assert reader.run("MATCH (h:Hashtag) RETURN h.name AS n ORDER BY n", {})[1] == [
        {"n": "sec a"}, {"n": "sec b"}, {"n": "sec c"}]
    assert {r["label"] for r in reader.run("CALL db.labels() YIELD label RETURN label", {})[1]} >= {"Hashtag"}
    assert reader.counts()["edges"] == {"CO": 1}


@pytest.mark.parametrize("query", ATTACKS)
def test_server_refuses_writes_of_a_read_only_session(seeded, reader, query):
    before = snapshot(seeded)
    # Past the client check, straight to the server in a READ transaction.
    with pytest.raises(StoreError) as e:
        reader._execute(query, {}, write=False)
    assert "\n" not in str(e.value)
    assert snapshot(seeded) == before


@pytest.mark.parametrize("query", ATTACKS)
def test_server_refuses_the_reader_even_in_write_access_mode(seeded, embedded_server, query):
    """ArcadeDB ignores the session's access mode: what stops the reader is
    its user's permissions, so a WRITE session fails the same way."""
    before = snapshot(seeded)
    with neo4j.GraphDatabase.driver(embedded_server.uri,
                                    auth=(embedded_server.read_user, embedded_server.read_password)) as d:
        with d.session(database=embedded_server.database, default_access_mode=neo4j.WRITE_ACCESS) as s:
            with pytest.raises(neo4j.exceptions.Neo4jError):
                s.run(query).consume()
    assert snapshot(seeded) == before


def test_read_only_store_refuses_write_calls_before_the_server(reader):
    with pytest.raises(V2HTError, match="read-only"):
        reader.write("admin/clear", limit=1)
    with pytest.raises(V2HTError, match="read-only"):
        reader.run("CREATE (:Hashtag {name: 'x'})", {}, write=True)


@pytest.mark.parametrize("query", ATTACKS[:5] + [
    "CALL `apoc`.`do`.when(true, 'MATCH (n) DETACH DELETE n', '', {}) YIELD value RETURN value",
    "CALL `apoc.do.when`(true, 'MATCH (n) DETACH DELETE n', '', {}) YIELD value RETURN value",
    "MATCH (n) CALL apoc.periodic.iterate('MATCH (x) RETURN x', 'DELETE x', {}) YIELD batches RETURN batches",
    "call APOC.Do.When(true, 'x', '', {}) yield value return value",
])
def test_client_check_refuses_procedures_outside_the_allowlist(query):
    assert writing_clause(query) is not None


@pytest.mark.parametrize("query", [
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
    "CALL { MATCH (n:Hashtag) RETURN n } RETURN count(n) AS c",
    "RETURN 'CALL apoc.do.when(true)' AS s",
    "MATCH (n) RETURN n.call AS c // CALL apoc.merge.node",
])
def test_client_check_lets_read_only_calls_pass(query):
    assert writing_clause(query) is None


def test_reader_password_survives_a_lost_password_file(tmp_path):
    """The reader's password is set from its file at every start: a deleted
    file means a new password, not a store that rejects the reader."""
    from v2ht_kg.kg.embedded import EmbeddedServer

    root = tmp_path / "store"
    with EmbeddedServer(root):
        pass
    (root / ".password-reader").unlink()
    server = EmbeddedServer(root)
    server.start()
    try:
        gs = GraphStore(server.uri, (server.read_user, server.read_password), server.database, read_only=True)
        gs.verify()
        gs.close()
        assert (root / ".password-reader").stat().st_mode & 0o777 == 0o600
    finally:
        server.stop()


# --- the command line: one-line error, exit 2, graph unchanged ----------------

def _cli(*args):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("sec") / "work")
    p = _cli("build", "--format", "synthetic", "--preset", "tiny", "-w", wd, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    return wd


def _graph(wd):
    p = _cli("cypher", "MATCH (n) OPTIONAL MATCH (n)-[r]->() "
             "RETURN count(DISTINCT n) AS nodes, count(r) AS rels, collect(DISTINCT n.name)[0..5] AS some",
             "-w", wd, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_cli_attacks_fail_with_one_line_and_leave_the_graph(built):
    before = _graph(built)
    assert before[0]["nodes"] > 0
    for query in ATTACKS[:6]:
        p = _cli("cypher", query, "-w", built)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode == 2, (query, p.returncode, p.stdout[-500:], p.stderr[-2000:])
        assert "Traceback" not in p.stderr and len(lines) == 1 and lines[0].startswith("error:"), p.stderr
        assert "--write" in lines[0]
    assert _graph(built) == before


def test_cli_write_flag_still_writes(built):
    p = _cli("cypher", "MERGE (h:Hashtag {name: $n}) RETURN h.name AS n", "-p", "n=sec written", "--write", "-w", built,
             "--json")
    assert p.returncode == 0, p.stderr
    p = _cli("cypher", "MATCH (h:Hashtag {name: $n}) DETACH DELETE h", "-p", "n=sec written", "--write", "-w", built)
    assert p.returncode == 0, p.stderr


@pytest.mark.neo4j
@pytest.mark.parametrize("query", ["CREATE (:Hashtag {name: 'evil'})", "MATCH (n:Hashtag) SET n.x = 1",
                                   "MATCH (n) DETACH DELETE n"])
def test_neo4j_read_session_refuses_writes(neo4j_store, query):
    """On Neo4j the READ access mode of the session is what the server enforces."""
    ro = GraphStore(neo4j_store.uri, (os.environ.get("NEO4J_READ_USER") or os.environ.get("NEO4J_USER", "neo4j"),
                                      os.environ.get("NEO4J_READ_PASSWORD") or os.environ.get("NEO4J_PASSWORD", "")),
                    neo4j_store.database, read_only=True)
    before = neo4j_store.counts()
    with pytest.raises(StoreError):
        ro._execute(query, {}, write=False)
    ro.close()
    assert neo4j_store.counts() == before


# --- no pickle from disk: a crafted snapshot or checkpoint runs nothing -------

_EVIL = """
import os, sys, torch
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
torch.save({"model": Evil(), "names": ["a"]}, sys.argv[1])
"""


def _crafted(path, marker):
    # Written by another process, as an attacker would: the class is not
    # even importable here.
    subprocess.run([sys.executable, "-c", _EVIL, str(path), str(marker)], check=True, timeout=120)
    assert path.stat().st_size > 0 and not marker.exists()


def test_crafted_graph_snapshot_and_checkpoint_are_refused_without_running(tmp_path):
    from v2ht_kg.gnn import runs
    from v2ht_kg.kg.errors import DataError

    marker = tmp_path / "pwned"
    evil = tmp_path / "graph.pt"
    _crafted(evil, marker)
    with pytest.raises(DataError, match="refused to unpickle") as e:
        runs.load_graph(evil, ["a"])
    assert "\n" not in str(e.value) and "weights_only" not in str(e.value)
    with pytest.raises(DataError, match="refused to unpickle"):
        runs.load_torch(evil, "checkpoint")
    assert not marker.exists()


def test_checkpoint_with_rng_states_loads_weights_only(tmp_path):
    """What train saves (model, optimizer, RNG states as tensors and plain
    values) round-trips through the weights-only loader."""
    import random

    import torch

    from v2ht_kg.gnn import runs

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
             "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}
    runs.save_torch(tmp_path / "checkpoint.pt", state)
    back = runs.load_torch(tmp_path / "checkpoint.pt")
    assert back["epoch"] == 3 and torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    assert back["rng"]["python"] == state["rng"]["python"]


def test_cli_train_refuses_a_crafted_graph_snapshot(built, tmp_path):
    from pathlib import Path

    graph = Path(built) / "graph.pt"
    saved = graph.read_bytes()
    marker = tmp_path / "pwned"
    try:
        _crafted(graph, marker)
        p = _cli("train", "-w", built, "--run", "evil", "--epochs", "1")
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert p.returncode == 2, (p.returncode, p.stderr[-2000:])
        assert len(lines) == 1 and "refused to unpickle" in lines[0] and "graph.pt" in lines[0], p.stderr
        assert not marker.exists()
    finally:
        graph.write_bytes(saved)
