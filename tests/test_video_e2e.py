"""The demo micro-video set end to end, as a user runs it: generate-videos →
features extract → build (embedded ArcadeDB) → train on visual + acoustic
input → recommend --video; the content-only model must beat popularity."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]
# smaller than the paper's 40 frames at 224 px so the suite stays quick; the
# run's own settings travel with the data set to recommend --video
EXTRACT = ["--frames", "8", "--frame-size", "64", "--clips", "20", "--threads", "1"]


def run(*args, ok=True):
    p = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=900,
                       env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if ok:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def test_demo_videos_are_deterministic(tmp_path):
    from v2ht_kg.kg.video.demo import generate_videos

    def digest(d: Path) -> dict:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}

    a = generate_videos(tmp_path / "a", n=6, seed=3, seconds=1.0)
    generate_videos(tmp_path / "b", n=6, seed=3, seconds=1.0)
    generate_videos(tmp_path / "c", n=6, seed=4, seconds=1.0)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert (tmp_path / "a" / "posts.jsonl").read_text() != (tmp_path / "c" / "posts.jsonl").read_text()
    posts = [json.loads(l) for l in (tmp_path / "a" / "posts.jsonl").read_text().splitlines()]
    assert sorted(p["topic"] for p in posts) == sorted(a["topics"])  # one clip per topic
    assert all(len(p["hashtags"]) == 2 and p["description"] for p in posts)


def test_demo_set_end_to_end(tmp_path):
    videos, raw, wd = tmp_path / "videos", tmp_path / "raw", str(tmp_path / "work")
    run("data", "generate-videos", str(videos), "--n", "60", "--seed", "0", "--json")
    run("features", "extract", str(videos), "--out", str(raw), *EXTRACT, "--json")

    # a new video is extracted exactly as the data set was
    from v2ht_kg.kg.video.extract import query_features, read_manifest

    manifest = read_manifest(raw)
    assert manifest["settings"]["frames"] == 8 and len(manifest["no_audio_posts"]) == 3
    posts = [json.loads(l) for l in (videos / "posts.jsonl").read_text().splitlines()]
    probe = next(p for p in posts if p["split"] == "test" and p["audio"])
    feats, info = query_features(videos / probe["file"], manifest)
    ids = (raw / "features" / "visual.ids.txt").read_text().split()
    row = ids.index(probe["id"])
    np.testing.assert_allclose(feats["visual"].astype(np.float16), np.load(raw / "features" / "visual.npy")[row],
                               atol=1e-3)
    np.testing.assert_allclose(feats["acoustic"].astype(np.float16), np.load(raw / "features" / "acoustic.npy")[row],
                               atol=1e-2)

    build = json.loads(run("build", str(raw), "--format", "jsonl", "-w", wd, "--json").stdout)
    assert build["data"]["posts"] == 60 and build["data"]["modalities"] == ["visual", "acoustic", "text"]
    assert build["data"]["posts_by_split"] == {"train": 36, "valid": 12, "test": 12}

    # content only (no user, no text): what it learns, it learns from pixels and sound
    out = json.loads(run("train", "--run", "av", "--variant", "wo_u", "--modalities", "visual,acoustic",
                         "--epochs", "15", "--patience", "15", "--batch-size", "8", "--lr", "1e-2", "--seed", "0",
                         "--threads", "1", "-w", wd, "--json").stdout)
    model, pop = out["test"]["overall"], out["baselines"]["popularity"]["overall"]
    assert model["ndcg@10"] > pop["ndcg@10"] + 0.15, (model, pop)
    assert model["recall@5"] > pop["recall@5"] + 0.1, (model, pop)
    two = json.loads((Path(wd) / "runs" / "av" / "metrics.json").read_text())["two_stage"]
    n_tags = two["hashtags"]
    assert two["agreement"] == {str(n_tags): 1.0}  # fewer tags than candidates: the exact rank

    rec = json.loads(run("recommend", "av", "--video", str(videos / probe["file"]), "--text", probe["description"],
                         "-k", "5", "--explain", "-w", wd, "--json").stdout)
    assert len(rec["recommendations"]) == 5
    assert rec["video"]["settings"]["frames"] == 8 and rec["video"]["has_audio"]
    assert 1 <= len(rec["video"]["words"]) <= 6
    assert rec["explanations"] and rec["explanations"][0]["attention"]["visual"]["steps"] == 8

    # the same ranking as the data set's own copy of that post (in process: a CLI start costs seconds)
    from v2ht_kg.gnn.evaluate import recommend
    from v2ht_kg.gnn.runs import load_run

    r = load_run(Path(wd) / "runs" / "av")
    by_post = recommend(r, [r.data.ds.post_index[probe["id"]]], k=5)[0]
    assert [x["tag"] for x in rec["recommendations"]] == [t for t, _ in by_post]
    assert rec["ranking"] == {"by": "V2HT", "exact": True, "candidates": n_tags}
    # two stages over 8 candidates: every score is the exact model's
    few = json.loads(run("recommend", "av", "--post", probe["id"], "-k", "5", "--candidates", "8", "-w", wd,
                         "--json").stdout)
    assert few["ranking"] == {"by": "V2HT", "exact": False, "candidates": 8}
    exact = dict(recommend(r, [r.data.ds.post_index[probe["id"]]], k=n_tags)[0])
    assert all(abs(x["score"] - exact[x["tag"]]) < 1e-5 for x in few["recommendations"])

    from v2ht_kg.kg.errors import VideoError

    with pytest.raises(VideoError, match="not a readable video"):
        query_features(raw / "posts.jsonl", manifest)
