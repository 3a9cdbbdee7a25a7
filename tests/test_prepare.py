"""Preparation: normalisation, filters, splits, manifest, atomic replace."""
from __future__ import annotations

import math

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
    # count: uses before the test period only (train + valid = 180 of 200 posts)
    assert kd.words == ["kid", "dancer"] and kd.count == 180
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


def _split_posts():
    """Given split: 'early' used 19 times before the test period and 10 times
    in it; 'late' 2 times before and 8 in it; 'testonly' only in test posts."""
    posts = []
    for i in range(40):
        split = "train" if i < 20 else ("valid" if i < 25 else "test")
        tags = ["common"]
        if split != "test" and i < 19:
            tags.append("early")
        if split == "test" and i < 35:
            tags.append("early")
        if split != "test" and i in (3, 21):
            tags.append("late")
        if split == "test" and i >= 32:
            tags += ["late", "testonly"]
        posts.append(Post(id=f"p{i}", user=f"u{i % 4}", hashtags=tags, text="words", split=split))
    return posts


def test_no_test_split_count_reaches_vocabulary_filters_or_longtail(tmp_path):
    """The protocol boundary (docs/metrics.md): counts, the count filter and the
    long-tail flag come from train + valid posts only."""
    params = PrepareParams(min_tag_count=3, split="given", longtail_threshold=20)
    ds = prepare(_split_posts(), tmp_path / "d", params, source={})
    vocab = {h.name: h for h in ds.hashtags}
    # 'late' has 10 uses in all but 2 before the test period: under the filter
    assert "late" not in vocab and "testonly" not in vocab
    # 'early': 19 uses before the test period (+10 test uses) is long-tail at threshold 20
    assert vocab["early"].count == 19 and vocab["early"].longtail
    assert vocab["common"].count == 25 and not vocab["common"].longtail
    test = [p for p in ds.posts if p.split == "test"]
    assert len(test) == 15  # test posts stay, even those left with only out-of-vocabulary tags
    assert sum(p.oov for p in test) == 2 * 8  # 'late' and 'testonly' on posts 32..39
    assert all(p.oov == 0 for p in ds.posts if p.split != "test")
    c = ds.manifest["counts"]
    assert c["test_oov_uses"] == 16 and c["test_tag_uses"] == 15 + 10 + 16
    # the same posts with the test uses removed give the same vocabulary and flags
    stripped = [Post(id=p.id, user=p.user, hashtags=["common"] if p.split == "test" else p.hashtags,
                     text=p.text, split=p.split) for p in _split_posts()]
    ds2 = prepare(stripped, tmp_path / "e", params, source={})
    assert [(h.name, h.count, h.longtail) for h in ds2.hashtags] == [(h.name, h.count, h.longtail) for h in ds.hashtags]


def test_out_of_vocabulary_test_tags_are_misses():
    import torch

    from v2ht_kg.gnn.metrics import ranking_metrics

    top = torch.tensor([[3, 1, 2, 0, 4]])
    full = ranking_metrics(top, [[3]], ks=(5,), is_top=True)
    half = ranking_metrics(top, [[3]], ks=(5,), is_top=True, extra=[1])
    assert full["recall@5"] == 1.0 and half["recall@5"] == 0.5
    assert half["ndcg@5"] == pytest.approx(1.0 / (1.0 + 1.0 / math.log2(3)))
    none = ranking_metrics(top, [[]], ks=(5,), is_top=True, extra=[2])
    assert none["n_posts"] == 1 and none["recall@5"] == 0.0


@pytest.mark.parametrize("order,drop", [("kept", False), ("kept", True), ("reversed", False)])
def test_features_follow_their_posts(tmp_path, order, drop):
    """Each prepared row gets its own post's features, whether the source
    lists them in the posts' order (copied as a slice) or not (gathered: a
    post dropped by the filters breaks the run, or another order)."""
    import numpy as np

    posts = _posts()
    if drop:
        posts[3] = Post(id="p3", user="u3", hashtags=["once"], text="no kept tag")  # no vocabulary tag
    ids = [p.id for p in posts]
    arr = np.stack([np.full((2, 3), i, dtype=np.float32) for i in range(len(posts))])
    if order == "reversed":
        ids, arr = ids[::-1], arr[::-1].copy()
    ds = prepare(posts, tmp_path / "d", PrepareParams(min_tag_count=3, split="random"), source={},
                 features={"visual": (arr, ids)})
    got = ds.features("visual")
    assert got.dtype == np.float16 and got.shape == (len(ds.posts), 2, 3) and len(ds.posts) == len(posts) - drop
    want = [float(p.id[1:]) for p in ds.posts]
    assert [float(got[i, 0, 0]) for i in range(len(ds.posts))] == want
    assert (got == got[:, :1, :1]).all()


@pytest.mark.parametrize("dtype,drop,link,linked", [("<f2", False, True, True), ("<f2", True, True, False),
                                                   ("<f4", False, True, False), ("<f2", False, False, False)])
def test_a_source_array_already_in_prepared_form_is_linked_not_copied(tmp_path, dtype, drop, link, linked):
    """float16 rows of every post in the posts' order are what the copy would
    write: with link_features (a generated set) the prepared file is then the
    source's inode; otherwise, and always for a user's files, a copy."""
    import os

    import numpy as np

    posts = _posts()
    if drop:
        posts[3] = Post(id="p3", user="u3", hashtags=["once"], text="no kept tag")
    src = tmp_path / "visual.npy"
    np.save(src, np.stack([np.full((2, 3), i, dtype=dtype) for i in range(len(posts))]))
    arr = np.load(src, mmap_mode="r")
    ds = prepare(posts, tmp_path / "d", PrepareParams(min_tag_count=3, split="random"), source={},
                 features={"visual": (arr, [p.id for p in posts])}, link_features=link)
    out = tmp_path / "d" / "features" / "visual.npy"
    assert (os.stat(out).st_ino == os.stat(src).st_ino) == linked
    got = ds.features("visual")
    assert got.dtype == np.float16 and [float(got[i, 0, 0]) for i in range(len(ds.posts))] == \
        [float(p.id[1:]) for p in ds.posts]


def test_category_paths_travel_from_raw_posts_to_the_prepared_rows(tmp_path):
    from v2ht_kg.kg.rawdata import read_raw_posts

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "posts.csv").write_text("id,user,hashtags,text,categories\n"
                                   "a,u1,#food,hot soup,food > cooking\n"
                                   "b,u1,#food,cold soup,\n", encoding="utf-8")
    posts = list(read_raw_posts(raw))
    assert [p.categories for p in posts] == [["food", "cooking"], []]
    assert Post.from_json(posts[0].to_json()).categories == ["food", "cooking"]
    assert "categories" not in posts[1].to_json()
    with pytest.raises(DataError, match="'categories' must be a list of strings"):
        Post.from_json({"id": "x", "hashtags": ["a"], "categories": "food"}, "posts.jsonl", 3)
    many = [Post(id=f"p{i}", user="u", hashtags=["soup"], text="hot soup", categories=["food"] * (i % 2))
            for i in range(20)]
    ds = prepare(many, tmp_path / "data", PrepareParams(min_tag_count=1, split="random", seed=0), source={})
    assert [p.categories for p in ds.posts] == [["food"] * (int(p.id[1:]) % 2) for p in ds.posts]
