"""Preparation: normalisation, filters, splits, manifest, atomic replace."""
from __future__ import annotations


import pytest

from v2ht_kg.kg.errors import DataError
from v2ht_kg.kg.prepare import PrepareParams, default_params, prepare
from v2ht_kg.kg.records import Post


def _posts(n=200):
    out = []
    for i in range(n):
        user = f"u{i % 10}"
        tags = ["#KidDancer" if i % 3 == 0 else "kiddancer", "dance"]
        if i % 5 == 0:
            tags.append("rare")
        if i == 7:
            tags.append("once")
        out.append(Post(id=f"p{i}", user=user, hashtags=tags, text=f"kids dancing at the party {i}"))
    return out


def test_prepare_normalises_filters_and_splits(tmp_path):
    params = PrepareParams(min_tag_count=3, split="random", longtail_threshold=50, seed=1)
    ds = prepare(_posts(), tmp_path / "data", params, source={"format": "test"})
    names = [h.name for h in ds.hashtags]
    assert "kid dancer" in names and "dance" in names and "rare" in names
    assert "once" not in names  # under min_tag_count
    kd = ds.hashtags[ds.tag_index["kid dancer"]]
    assert kd.words == ["kid", "dancer"] and kd.count == 200
    assert set(kd.surfaces) == {"#KidDancer", "kiddancer"}
    assert ds.hashtags[ds.tag_index["rare"]].longtail and not kd.longtail
    splits = [p.split for p in ds.posts]
    assert splits.count("train") == 160 and splits.count("valid") == 20 and splits.count("test") == 20
    # train_count only counts training posts (co-occurrence and profiles use it)
    assert kd.train_count == 160
    assert "kid" in ds.posts[0].tokens and "party" in ds.posts[0].tokens
    m = ds.manifest
    assert m["counts"]["raw_posts"] == 200 and m["params"]["seed"] == 1
    assert set(m["checksums"]) == {"hashtags.jsonl", "users.jsonl", "posts.jsonl"}


def test_random_split_is_seeded(tmp_path):
    a = prepare(_posts(), tmp_path / "a", PrepareParams(split="random", seed=3), source={})
    b = prepare(_posts(), tmp_path / "b", PrepareParams(split="random", seed=3), source={})
    c = prepare(_posts(), tmp_path / "c", PrepareParams(split="random", seed=4), source={})
    assert a.fingerprint == b.fingerprint
    assert [p.split for p in a.posts] != [p.split for p in c.posts]


def test_given_and_time_splits(tmp_path):
    posts = _posts(100)
    for i, p in enumerate(posts):
        p.split = "train" if i < 80 else ("valid" if i < 90 else "test")
    ds = prepare(posts, tmp_path / "g", PrepareParams(split="auto"), source={})
    assert [p.split for p in ds.posts] == [p.split for p in posts]
    posts = _posts(100)
    for i, p in enumerate(posts):
        p.time = f"2011-02-{(100 - i) // 10 + 1:02d}"
    ds = prepare(posts, tmp_path / "t", PrepareParams(split="time"), source={})
    test_times = [p.time for p in ds.posts if p.split == "test"]
    train_times = [p.time for p in ds.posts if p.split == "train"]
    assert min(test_times) >= max(train_times)


def test_user_filter(tmp_path):
    posts = _posts(100) + [Post(id="lonely", user="solo", hashtags=["dance"], text="")]
    ds = prepare(posts, tmp_path / "d", PrepareParams(min_user_posts=5, split="random"), source={})
    assert "solo" not in ds.user_index and "lonely" not in ds.post_index


def test_failed_prepare_keeps_previous_data_set(tmp_path):
    out = tmp_path / "data"
    prepare(_posts(), out, PrepareParams(split="random"), source={})
    before = (out / "manifest.json").read_text()
    with pytest.raises(DataError, match="no posts left"):
        prepare(_posts(), out, PrepareParams(min_tag_count=10_000), source={})
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temp folder left behind


def test_empty_and_emoji_tags_dropped(tmp_path):
    posts = [Post(id=str(i), user="u", hashtags=["love", "🔥🔥"], text="") for i in range(30)]
    ds = prepare(posts, tmp_path / "d", PrepareParams(split="random"), source={})
    assert [h.name for h in ds.hashtags] == ["love"]


def test_defaults_per_data_set():
    assert default_params("twitter-hashtags-2013").split == "given"
    assert default_params("tweets2011").split == "time"
    assert default_params("synthetic", min_tag_count=7).min_tag_count == 7
