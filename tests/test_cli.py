"""The command line as a user runs it: a real process, the embedded store,
exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SHARED_DATA

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]


def run(*args, ok=True, timeout=600):
    p = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "COLUMNS": "200"})
    if ok:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def one_line_error(p):
    assert p.returncode == 2, (p.returncode, p.stdout[-500:], p.stderr[-2000:])
    assert "Traceback" not in p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), p.stderr
    return lines[0]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent on this machine")
def test_data_stats_twitter_2013_json(tmp_path):
    p = run("data", "stats", str(SHARED_DATA / "twitter-hashtags-2013"), "--json", "-w", str(tmp_path))
    out = json.loads(p.stdout)
    assert out["posts"] == 33_881 and out["users"] == 2_571
    assert 2.0 < out["hashtags_per_post"] < 2.1
    assert Path(out["frequency_png"]).stat().st_size > 5_000


def test_bad_input_is_one_line(tmp_path):
    one_line_error(run("data", "stats", str(tmp_path / "missing"), "-f", "twitter-hashtags-2013", ok=False))
    d = tmp_path / "tw"
    d.mkdir()
    for f in ("train", "valid", "test"):
        (d / f"{f}.csv").write_bytes(b"text\t1\tlove\n")
    (d / "train.csv").write_bytes(b"text\t1\tlove\nbad\n")
    line = one_line_error(run("data", "prepare", str(d), "-f", "twitter-hashtags-2013", "-w", str(tmp_path / "w"), ok=False))
    assert "train.csv:2" in line
    assert not (tmp_path / "w" / "data").exists()


def test_build_query_and_rebuild_on_embedded_store(tmp_path):
    wd = str(tmp_path / "work")
    first = json.loads(run("build", "--format", "synthetic", "--preset", "tiny", "-w", wd, "--json").stdout)
    edges = first["graph"]["edges"]
    assert all(edges[r] > 0 for r in ("cp", "ss", "po", "co")), edges

    p = run("cypher", "MATCH (a:Hashtag)-[r]-(b:Hashtag) WITH a, b, count(r) AS n WHERE n > 1 RETURN count(*) AS c",
            "--json", "-w", wd)
    assert json.loads(p.stdout) == [{"c": 0}]  # priority: one relation per pair

    p = run("cypher", "MATCH (h:Hashtag) WHERE h.count >= $n RETURN count(h) AS c", "--param", "n=1", "--json", "-w", wd)
    assert json.loads(p.stdout)[0]["c"] == first["data"]["hashtags"]

    line = one_line_error(run("cypher", "MATCH (h:Hashtag) SET h.x = 1", "-w", wd, ok=False))
    assert "--write" in line
    one_line_error(run("cypher", "MATCH (h:Hashtag RETURN h", "-w", wd, ok=False))

    second = json.loads(run("build", "--format", "synthetic", "--preset", "tiny", "-w", wd, "--json").stdout)
    assert second["graph"]["store_counts"] == first["graph"]["store_counts"]
    assert second["graph"]["edges"] == edges

    status = json.loads(run("store", "status", "-w", wd, "--json").stdout)
    assert status["build"]["status"] == "complete"


def test_querying_a_work_directory_never_built_is_an_error(tmp_path):
    line = one_line_error(run("cypher", "MATCH (n) RETURN count(n) AS c", "-w", str(tmp_path / "never"), ok=False))
    assert "no graph store" in line and "v2ht-kg build" in line
