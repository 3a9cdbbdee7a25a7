"""One embedded ArcadeDB server for the whole test session (starting one
costs seconds); tests that need an empty graph call ``store.clear()``."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: OpenMP threads only add synchronisation, which costs seconds
    per test on a loaded 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    from v2ht_kg.kg.embedded import EmbeddedServer

    server = EmbeddedServer(tmp_path_factory.mktemp("workdir") / "store")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def store(embedded_server):
    from v2ht_kg.kg.store import GraphStore

    gs = GraphStore(embedded_server.uri, (embedded_server.user, embedded_server.password),
                    embedded_server.database, ingest=embedded_server.ingest)
    gs.verify()
    gs.ensure_schema()
    yield gs
    gs.close()


@pytest.fixture(scope="session")
def neo4j_store():
    """A real Neo4j (or any Bolt server) named by NEO4J_URI; its data is cleared."""
    uri = os.environ.get("NEO4J_URI")
    if not uri:
        pytest.skip("NEO4J_URI is not set (no Neo4j server to test against)")
    from v2ht_kg.kg.store import GraphStore

    gs = GraphStore(uri, (os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", "")),
                    os.environ.get("NEO4J_DATABASE", "neo4j"))
    gs.verify()
    gs.ensure_schema()
    yield gs
    gs.close()
