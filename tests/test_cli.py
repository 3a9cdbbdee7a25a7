"""The command line as a user runs it: a real process, the embedded store,
exit codes and one-line errors."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from cli_checks import one_line_error

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]


def run(*args, ok=True, timeout=600):
    p = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "COLUMNS": "200"})
    if ok:
        assert p.returncode == 0, p.stderr[-3000:]
    return p




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
    # the load's parts, timed, with their rates (hashtags; typed edges; users, posts, POSTED, TAGGED)
    g = first["graph"]
    assert set(g["load_seconds"]) == set(g["load_rows_per_s"]) == {"hashtags", "edges", "posts"}
    assert sum(g["load_seconds"].values()) <= g["seconds"]["load"] + 0.05
    secs = g["load_seconds"]["edges"]  # rounded to 10 ms in the output
    assert sum(edges.values()) / (secs + 0.006) <= g["load_rows_per_s"]["edges"] <= sum(edges.values()) / max(secs - 0.006, 1e-3)
    # the generated features are already in prepared form (every post kept): linked, not written twice
    raw = next(Path(wd).glob("raw-synthetic/*/features/visual.npy"))
    assert raw.stat().st_ino == (Path(wd) / "data" / "features" / "visual.npy").stat().st_ino

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
    # for a reader: the counts as "label  n,nnn" lines, not a printed dict
    text = run("store", "status", "-w", wd).stdout
    assert "{" not in text and "problems  none" in text
    tagged = status["counts"]["edges"]["TAGGED"]
    assert re.search(rf"TAGGED\s+{tagged:,}\b", text), text


def test_querying_a_work_directory_never_built_is_an_error(tmp_path):
    line = one_line_error(run("cypher", "MATCH (n) RETURN count(n) AS c", "-w", str(tmp_path / "never"), ok=False))
    assert "no graph store" in line and "v2ht-kg build" in line


def test_default_model_train_evaluate_recommend(tmp_path):
    """The default model end to end as a user runs it: train (V2HT + fusion head),
    evaluate under its protocol and new-to-user, recommend; protocol errors."""
    wd = str(tmp_path / "work")
    run("build", "--format", "synthetic", "--preset", "tiny", "-w", wd, "--json")
    out = json.loads(run("train", "--run", "d", "--epochs", "1", "--threads", "1", "-w", wd, "--json").stdout)
    assert out["variant"] == "hybrid" and out["protocol"] == "deployed"
    for p in (Path(wd) / "data", Path(wd) / "data" / "posts.jsonl", Path(wd) / "graph.pt", Path(wd) / "store",
              Path(wd) / "runs" / "d" / "config.json", Path(wd) / "runs" / "d" / "fusion.json"):
        assert p.stat().st_mode & 0o077 == 0, p  # private to the user
    assert set(out["baselines"]) >= {"knn", "knn_history", "user_history"}
    assert 0 < out["test"]["overall"]["recall@10"] <= 1
    fit = json.loads((Path(wd) / "runs" / "d" / "hybrid.json").read_text())["fit"]
    # the head also learned from the latest training posts, as many as the validation posts
    n_valid = sum(json.loads(l)["split"] == "valid" for l in (Path(wd) / "data" / "posts.jsonl").read_text().splitlines())
    assert fit["window_posts"] == n_valid and fit["epochs"] <= len(fit["holdout_curve"]) <= 30
    assert fit["epochs"] in fit["averaged_epochs"] and len(fit["averaged_epochs"]) == min(5, len(fit["holdout_curve"]))
    ev = json.loads(run("evaluate", "d", "-w", wd, "--json", "--no-baselines").stdout)
    assert ev["variant"] == "hybrid" and ev["overall"] == out["test"]["overall"]
    line = one_line_error(run("evaluate", "d", "--protocol", "strict", "-w", wd, ok=False))
    assert "deployed protocol" in line
    assert "unknown protocol" in one_line_error(run("evaluate", "d", "--protocol", "online", "-w", wd, ok=False))
    nu = json.loads(run("evaluate", "d", "--protocol", "new-to-user", "--sampling-seeds", "0,1", "-w", wd,
                        "--json").stdout)
    assert nu["protocol"] == "new-to-user" and len(nu["model"]["map"]["per_seed"]) == 2
    assert 0 <= nu["random"]["map"]["mean"] <= 1 and (Path(wd) / "eval").is_dir()
    reach = json.loads(run("evaluate", "d", "--graph-reach", "-w", wd, "--json").stdout)
    assert reach["hits"] + reach["misses"] == reach["positives"] > 0
    assert reach["misses_reachable"]["any"] <= reach["misses"]
    # two hops reach every miss one hop reaches, and maybe more
    assert reach["misses_reachable"]["any"] <= reach["within_two_hops"]["misses_reachable"]["any"] <= reach["misses"]
    assert "--protocol" in one_line_error(run("evaluate", "d", "--graph-reach", "--protocol", "strict", "-w", wd,
                                               ok=False))
    post = next(json.loads(l)["id"] for l in (Path(wd) / "data" / "posts.jsonl").read_text().splitlines()
                if json.loads(l)["split"] == "test")
    rec = json.loads(run("recommend", "d", "--post", post, "-k", "5", "-w", wd, "--json").stdout)
    assert len(rec["recommendations"]) == 5
    # each tag also as posts spelt it most (the canonical name joins its words with spaces)
    spelt = {h["name"]: h["surfaces"][0] for h in map(json.loads, (Path(wd) / "data" / "hashtags.jsonl").open())}
    assert all(r["surface"] == spelt[r["tag"]] for r in rec["recommendations"])
    assert abs(sum(r["score"] for r in rec["recommendations"])) <= 1.0 + 1e-6  # softmax shares
    # --tail-boost B ranks by score − B·log(1 + known uses): a huge B puts a
    # tag of the fewest known uses (train + valid, deployed) first
    known = Counter(t for l in (Path(wd) / "data" / "posts.jsonl").read_text().splitlines()
                    for t in json.loads(l)["tags"] if json.loads(l)["split"] != "test")
    names = [h["name"] for h in map(json.loads, (Path(wd) / "data" / "hashtags.jsonl").open())]
    fewest = min(known[i] for i in range(len(names)))
    boosted = json.loads(run("recommend", "d", "--post", post, "-k", "5", "--tail-boost", "1000", "-w", wd,
                             "--json").stdout)
    assert known[names.index(boosted["recommendations"][0]["tag"])] == fewest
    assert boosted["ranking"]["tail_boost"] == 1000
    ev_b = json.loads(run("evaluate", "d", "--tail-boost", "1000", "-w", wd, "--json", "--no-baselines").stdout)
    assert ev_b["tail_boost"] == 1000 and ev_b["overall"] != ev["overall"]
    assert "--tail-boost" in one_line_error(run("recommend", "d", "--post", post, "--tail-boost", "-1", "-w", wd,
                                                ok=False))
    top = rec["recommendations"][0]["tag"]
    ex = json.loads(run("explain", "d", "--post", post, "--tag", top, "-w", wd, "--json").stdout)
    assert ex["fusion"]["rank"] == 1  # the head's own rank of its first suggestion
    assert all(g["rank_without"] >= 1 for g in ex["fusion"]["groups"].values())
    assert "--post reads" in one_line_error(run("explain", "d", "--post", post, "--tag", top, "--category", "music",
                                                "-w", wd, ok=False))
    new = json.loads(run("recommend", "d", "--text", "dance party tonight", "-k", "3", "-w", wd, "--json").stdout)
    assert len(new["recommendations"]) == 3
    # --category names a new post's path; the synthetic run's head has no category group
    cat = run("recommend", "d", "--text", "dance party tonight", "--category", "music > dance", "-k", "3", "-w", wd,
              "--json")
    assert json.loads(cat.stdout)["recommendations"] and "does not read categories" in cat.stderr
    assert "--post reads" in one_line_error(run("recommend", "d", "--post", post, "--category", "music", "-w", wd,
                                                ok=False))
    assert "name at least one category" in one_line_error(run("recommend", "d", "--text", "x", "--category", " > ",
                                                              "-w", wd, ok=False))
    line = one_line_error(run("train", "--run", "x", "--fusion", "memory,telepathy", "-w", wd, ok=False))
    assert "telepathy" in line
    assert "--propagate-every" in one_line_error(run("train", "--run", "y", "--propagate-every", "0", "-w", wd,
                                                       ok=False))
    pe = json.loads(run("train", "--run", "pe", "--variant", "paper", "--epochs", "1", "--propagate-every", "3",
                        "--threads", "1", "-w", wd, "--json").stdout)
    assert 0 <= pe["test"]["overall"]["recall@10"] <= 1
    assert json.loads((Path(wd) / "runs" / "pe" / "config.json").read_text())["propagate_every"] == 3


def test_wide_query_rows_go_one_block_a_row_on_a_narrow_terminal(monkeypatch):
    """Eleven columns at 60 columns would cut every word: each row is then a
    key: value block, with every value whole; a wide terminal keeps the table."""
    from rich.console import Console
    from rich.table import Table

    from v2ht_kg.cli import graph_cmd

    keys = [f"column_{i}" for i in range(11)]
    rows = [{k: f"value-{i}-{j}" for j, k in enumerate(keys)} for i in range(3)]
    narrow = Console(width=60, record=True)
    monkeypatch.setattr(graph_cmd, "console", narrow)
    view = graph_cmd._rows_table(keys, rows, title="q")
    assert not isinstance(view, Table)
    narrow.print(view)
    text = narrow.export_text()
    assert "row 3" in text and all(f"value-{i}-{j}" in text for i in range(3) for j in range(11))
    assert "…" not in text
    monkeypatch.setattr(graph_cmd, "console", Console(width=400))
    assert isinstance(graph_cmd._rows_table(keys, rows), Table)


def _kuairec_csv(path: Path) -> None:
    """A small file in kuairec's format: three category paths, captions that
    name what the video shows, tags that follow both."""
    head = ("video_id,manual_cover_text,caption,topic_tag,first_level_category_id,first_level_category_name,"
            "second_level_category_id,second_level_category_name,third_level_category_id,third_level_category_name\n")
    kinds = [("美食", "美食日常", ["红烧肉 好吃", "面条 好吃", "做饭 日常"], ["美食", "家常菜", "吃货"]),
             ("喜剧", "搞笑", ["笑死 我 了", "段子 搞笑", "哈哈 太 逗"], ["搞笑", "段子", "幽默"]),
             ("运动", "篮球", ["投篮 训练", "扣篮 集锦", "球场 日常"], ["篮球", "运动", "健身"])]
    rows = []
    for i in range(150):
        first, second, caps, tags = kinds[i % 3]
        picked = [tags[0], tags[1 + (i // 3) % 2]] + ([tags[2]] if i % 5 == 0 else [])
        rows.append(f"{100 + i},UNKNOWN,{caps[(i // 3) % 3]},\"[{','.join(picked)}]\",{i % 3},{first},"
                    f"{10 + i % 3},{second},-124,UNKNOWN\n")
    path.write_text(head + "".join(rows), encoding="utf-8")


def test_recommend_composes_a_new_post_like_the_data_set(tmp_path):
    """kuairec's posts carry their category path at the head of their text; a
    new post given as --text and --category is composed alike, so the caption
    with --category scores as the caption written after the path names."""
    src = tmp_path / "kuairec_caption_category.csv"
    _kuairec_csv(src)
    wd = str(tmp_path / "work")
    run("build", str(src), "--format", "kuairec", "-w", wd, "--json")
    run("train", "--run", "k", "--epochs", "1", "--threads", "1", "-w", wd, "--json")

    def top(*args: str) -> list:
        out = json.loads(run("recommend", "k", *args, "-k", "5", "-w", wd, "--json").stdout)
        return [(x["tag"], round(x["score"], 5)) for x in out["recommendations"]]

    # a test post (unknown to the history, like a new one) with that caption
    posts = [json.loads(line) for line in (tmp_path / "work" / "data" / "posts.jsonl").read_text().splitlines()]
    pid = next(p["id"] for p in posts if p["split"] == "test" and p["text"] == "美食 美食日常 红烧肉 好吃")
    stored = top("--post", pid)
    assert top("--text", "红烧肉 好吃", "--category", "美食 > 美食日常") == stored
    assert stored[0][0] in ("美食", "家常菜", "吃货")
