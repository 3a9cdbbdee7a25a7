"""A build is one transaction over the work directory (issue 9, item 3):
data/, the store and graph.pt change together, the build marker says
"complete" only once all three agree, a second data set never merges into
the first one's graph, and reads say when the three disagree. Real
embedded store, real failures (no mocks)."""
from __future__ import annotations

import shutil

import pytest

from handmade import write_dataset
from v2ht_kg.kg.dataset import PreparedDataset
from v2ht_kg.kg.pipeline import build_graph, consistency_problems, file_digest, staging_dir
from v2ht_kg.kg.workdir import Workdir

TAGS_A = ["kid dancer", "kid", "dancer", "dog", "beach"]
POSTS_A = [("train", 0, ["kid dancer", "kid"], "kids dance"), ("train", 1, ["kid", "dancer"], "dance"),
           ("train", 0, ["kid", "dancer", "beach"], "beach"), ("train", 1, ["dog", "beach"], "dog on beach"),
           ("valid", 0, ["dog"], "dog"), ("test", 1, ["kid"], "kid")]
TAGS_B = ["sunset", "sun", "set", "cat"]
POSTS_B = [("train", 0, ["sunset", "sun"], "sun"), ("train", 0, ["sun", "set"], "set"),
           ("train", 0, ["sun", "set", "cat"], "cat"), ("test", 0, ["cat"], "cat")]


def _staged(wd: Workdir, tags, posts) -> PreparedDataset:
    return PreparedDataset(write_dataset(staging_dir(wd), tags, posts))


def _names(store) -> set[str]:
    return {r["name"] for r in store.run("MATCH (h:Hashtag) RETURN h.name AS name")[1]}


@pytest.fixture()
def wd(tmp_path, store):
    store.clear()
    w = Workdir.resolve(tmp_path / "w").ensure()
    yield w
    shutil.rmtree(staging_dir(w), ignore_errors=True)


def test_staged_build_swaps_data_in_and_marks_complete_with_all_fingerprints(wd, store):
    ds = _staged(wd, TAGS_A, POSTS_A)
    summary = build_graph(ds, store, wd, use_wordnet=False)
    assert not staging_dir(wd).exists()
    assert PreparedDataset(wd.data).fingerprint == ds.fingerprint
    info = store.build_info()
    assert info["status"] == "complete" and info["fingerprint"] == ds.fingerprint
    assert info["graph_sha"] == file_digest(wd.graph)
    assert summary["cleared"] is None
    assert consistency_problems(info, wd) == []


def test_second_data_set_without_fresh_replaces_the_graph_instead_of_the_union(wd, store):
    build_graph(_staged(wd, TAGS_A, POSTS_A), store, wd, use_wordnet=False)
    ds_b = _staged(wd, TAGS_B, POSTS_B)
    summary = build_graph(ds_b, store, wd, use_wordnet=False)
    assert "another data set" in summary["cleared"]
    assert _names(store) == set(TAGS_B)  # nothing of A left
    info = store.build_info()
    assert info["fingerprint"] == ds_b.fingerprint == PreparedDataset(wd.data).fingerprint
    assert consistency_problems(info, wd) == []
    # the same data again merges (no clear), and gives the same graph
    counts = store.counts()
    again = build_graph(PreparedDataset(wd.data), store, wd, use_wordnet=False)
    assert again["cleared"] is None and store.counts() == counts
    # other relation parameters: another graph, cleared first
    from v2ht_kg.kg.relations import RelationParams

    other = build_graph(PreparedDataset(wd.data), store, wd, RelationParams(co_min_count=5), use_wordnet=False)
    assert other["cleared"] == "its graph was built with other relation parameters"
    assert store.counts()["edges"].get("CO", 0) < counts["edges"].get("CO", 0)


def test_failed_export_leaves_the_marker_loading_and_data_untouched(wd, store):
    ds_a = _staged(wd, TAGS_A, POSTS_A)
    build_graph(ds_a, store, wd, use_wordnet=False)
    graph_before = file_digest(wd.graph)
    ds_b = _staged(wd, TAGS_B, POSTS_B)
    # a real failure inside the export: its temporary file's name is taken by a folder
    import os

    blocker = wd.root / f".graph.pt.tmp-{os.getpid()}"
    (blocker / "x").mkdir(parents=True)
    with pytest.raises(OSError):
        build_graph(ds_b, store, wd, use_wordnet=False)
    shutil.rmtree(blocker)
    info = store.build_info()
    assert info["status"] == "loading" and info["fingerprint"] == ds_b.fingerprint
    assert PreparedDataset(wd.data).fingerprint == ds_a.fingerprint  # old data/ kept
    assert file_digest(wd.graph) == graph_before  # old graph.pt kept
    problems = consistency_problems(info, wd)
    assert any("did not complete" in p for p in problems)
    assert any(ds_b.fingerprint in p and ds_a.fingerprint in p for p in problems)
    # a rebuild of the old data set clears B's partial graph and agrees again
    build_graph(PreparedDataset(wd.data), store, wd, use_wordnet=False)
    assert _names(store) == set(TAGS_A)
    assert consistency_problems(store.build_info(), wd) == []


def test_reads_are_told_when_the_work_dir_disagrees(wd, store):
    build_graph(_staged(wd, TAGS_A, POSTS_A), store, wd, use_wordnet=False)
    info = store.build_info()
    wd.graph.unlink()
    assert consistency_problems(info, wd) == [f"{wd.graph} is missing (rerun `v2ht-kg build`)"]
    wd.graph.write_bytes(b"not the snapshot")
    assert "is not the snapshot" in consistency_problems(info, wd)[0]
    shutil.rmtree(wd.data)
    write_dataset(wd.data, TAGS_B, POSTS_B)  # data/ replaced behind the store's back
    assert any("was built from data set" in p for p in consistency_problems(info, wd))
    assert "no build marker" in consistency_problems(None, wd)[0]


# --- the command line: a real process against the session's embedded server --

import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]


def _cli(*args, **env):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", **env})


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _error_line(p) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr[-2000:]
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    return lines[0]


@pytest.mark.parametrize("case", ["wrong password", "unreachable"])
def test_build_against_a_bad_store_leaves_data_untouched(tmp_path, embedded_server, case):
    w = Workdir.resolve(tmp_path / "w").ensure()
    before = PreparedDataset(write_dataset(w.data, TAGS_A, POSTS_A)).fingerprint
    uri = embedded_server.uri if case == "wrong password" else f"bolt://127.0.0.1:{_closed_port()}"
    p = _cli("build", "--format", "synthetic", "--preset", "tiny", "--seed", "7", "-w", w.root, "--store", uri,
             NEO4J_USER=embedded_server.user, NEO4J_PASSWORD="not-the-password")
    line = _error_line(p)
    assert ("authentication failed" if case == "wrong password" else "unreachable") in line, line
    assert PreparedDataset(w.data).fingerprint == before
    assert not list(w.root.glob("*.tmp-*")) and not (w.root / "raw-synthetic").exists()


def test_read_on_a_store_without_build_marker_warns(tmp_path, store, embedded_server):
    store.clear()
    p = _cli("cypher", "MATCH (h:Hashtag) RETURN count(h) AS c", "--json", "-w", tmp_path, "--store",
             embedded_server.uri, NEO4J_USER=embedded_server.user, NEO4J_PASSWORD=embedded_server.password)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().replace(" ", "").replace("\n", "") == '[{"c":0}]'
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: the store holds no build marker"), p.stderr
