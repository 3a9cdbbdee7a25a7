"""The synthetic generator (kg.synthetic) and the raw folder format (kg.rawdata).

Real WordNet (the Debian files or nltk's download) and real files on disk;
the tiny preset is generated once per module (about 1 s)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from v2ht_kg.kg.errors import DataError, V2HTError
from v2ht_kg.kg.rawdata import FeatureWriter, raw_features, read_raw_posts, write_raw
from v2ht_kg.kg.records import Post

synthetic = pytest.importorskip("v2ht_kg.kg.synthetic")
try:
    synthetic._wordnet_dir()
except V2HTError as e:  # pragma: no cover - depends on the machine
    pytest.skip(f"WordNet not installed: {e}", allow_module_level=True)

SMALL = dict(n_posts=300, n_users=20, n_tags=80, tags_per_post=4.0, visual_dim=16, acoustic_dim=8)


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny") / "raw"
    meta = synthetic.generate_preset("tiny", d, seed=11)
    return d, meta


@pytest.fixture(scope="module")
def canon(tiny):
    """Surface form -> canonical tag, built from the vocabulary the way a
    normaliser would (lower case, no '#', concatenated words, regular or
    WordNet plural of the last word); ambiguous plurals are left out."""
    _, meta = tiny
    wn = synthetic._load_nouns()
    forms: dict[str, set[str]] = {}
    for h in meta["hashtags"]:
        w = h["name"].split()
        for f in ("".join(w), "".join(w[:-1] + [synthetic.plural(wn, w[-1])])):
            forms.setdefault(f, set()).add(h["name"])
    return {f: next(iter(names)) for f, names in forms.items() if len(names) == 1}


@pytest.fixture(scope="module")
def tiny_posts(tiny, canon):
    d, _ = tiny
    posts = list(read_raw_posts(d))
    return posts, [[canon[s.lstrip("#").lower()] for s in p.hashtags] for p in posts]


# -- determinism ----------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = synthetic.generate(tmp_path / "a", seed=5, **SMALL)
    synthetic.generate(tmp_path / "b", seed=5, **SMALL)
    synthetic.generate(tmp_path / "c", seed=6, **SMALL)
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert set(fa) == {"posts.jsonl", "generator.json", "features/visual.npy", "features/visual.ids.txt",
                       "features/acoustic.npy", "features/acoustic.ids.txt"}
    assert fa == fb
    for name in ("posts.jsonl", "features/visual.npy", "features/acoustic.npy", "generator.json"):
        assert fa[name] != fc[name], name
    assert a["params"]["seed"] == 5 and json.loads(fa["generator.json"])["params"] == a["params"]
    # Atomic: nothing but the finished folders is left beside them.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]


def test_feature_chunks_on_threads_are_the_one_thread_bytes(tmp_path, monkeypatch):
    """Feature chunks are made on two threads where there are two cores;
    each has its own seed, so one thread writes the same files."""
    monkeypatch.setattr(synthetic, "_CHUNK", 16)  # several chunks in flight at this size
    synthetic.generate(tmp_path / "two", seed=5, **SMALL)
    monkeypatch.setattr(synthetic.os, "cpu_count", lambda: 1)
    synthetic.generate(tmp_path / "one", seed=5, **SMALL)
    two, one = _files(tmp_path / "two"), _files(tmp_path / "one")
    assert two["features/visual.npy"] == one["features/visual.npy"]
    assert two == one


def test_refuses_non_empty_folder_unless_overwrite(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    (d / "keep.txt").write_text("x")
    with pytest.raises(V2HTError, match="not empty"):
        synthetic.generate(d, seed=1, **SMALL)
    assert (d / "keep.txt").exists()
    synthetic.generate(d, seed=1, overwrite=True, **SMALL)
    assert not (d / "keep.txt").exists() and (d / "posts.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_bad_parameters_are_one_line_errors(tmp_path):
    with pytest.raises(V2HTError, match="n_users"):
        synthetic.generate(tmp_path / "x", n_posts=5, n_users=10, n_tags=80, tags_per_post=3, seed=0)
    with pytest.raises(V2HTError, match="preset"):
        synthetic.generate_preset("huge", tmp_path / "y")
    assert not any(tmp_path.iterdir())


# -- shape ------------------------------------------------------------------------
def test_posts_users_and_tags_per_post(tiny, tiny_posts):
    _, meta = tiny
    posts, tags = tiny_posts
    assert len(posts) == 600 and len({p.id for p in posts}) == 600
    per_user = Counter(p.user for p in posts)
    assert len(per_user) == 40 and min(per_user.values()) >= 10
    assert max(per_user.values()) >= 2 * min(per_user.values())  # heavy tail, not uniform
    mean = np.mean([len(t) for t in tags])
    assert 4.5 <= mean <= 5.6
    assert all(len(t) == len(set(t)) for t in tags)
    assert meta["stats"]["tags_per_post"] == pytest.approx(mean, abs=1e-3)


def test_vocabulary_long_tail_and_counts(tiny, tiny_posts):
    _, meta = tiny
    _, tags = tiny_posts
    counts = Counter(t for ts in tags for t in ts)
    vocab = {h["name"]: h for h in meta["hashtags"]}
    assert len(vocab) == 150 and set(counts) == set(vocab)  # every tag used, none extra
    assert all(counts[n] == h["count"] for n, h in vocab.items())
    c = np.array(sorted(counts.values(), reverse=True))
    assert (c < c.mean()).mean() >= 0.6  # most tags are below the mean: a long tail
    assert c[: len(c) // 10].sum() / c.sum() >= 0.3  # a few head tags carry much of the use
    assert c[0] >= 5 * np.median(c)


def test_multi_word_tags_compose_vocabulary_words(tiny):
    _, meta = tiny
    names = {h["name"] for h in meta["hashtags"]}
    multi = [h for h in meta["hashtags"] if " " in h["name"]]
    assert 0.2 <= len(multi) / len(names) <= 0.7
    compounds = [h for h in multi if h["kind"] == "compound"]
    assert compounds and all(all(w in names for w in h["name"].split()) for h in compounds)
    # Every multi-word tag has at least one cp neighbour among single-word tags.
    assert all(any(w in names for w in h["name"].split()) for h in multi)
    wn = synthetic._load_nouns()
    singles = [n for n in names if " " not in n]
    assert all(wn.is_noun(n) for n in singles)  # real English words
    # Topics are WordNet subtrees: each single-word topic tag lies under its root.
    topic_tags = [h for h in meta["hashtags"] if h["topic"] >= 0 and h["kind"] == "single"]
    assert len({h["topic"] for h in topic_tags}) == len(meta["topics"]) >= 3
    for t, topic in enumerate(meta["topics"]):
        below, _ = synthetic._subtree(wn, topic["root"])
        assert {h["name"] for h in topic_tags if h["topic"] == t} <= set(below)


def test_surface_forms_are_messy_but_map_back(tiny, tiny_posts):
    posts, _ = tiny_posts  # the fixture itself proves every surface maps back
    surfaces = [s for p in posts for s in p.hashtags]
    assert all(" " not in s for s in surfaces)
    assert any(s.startswith("#") for s in surfaces)
    assert any(any(ch.isupper() for ch in s[1:]) for s in surfaces)  # CamelCase
    lowered = {s.lstrip("#").lower() for s in surfaces}
    _, meta = tiny
    plain = {h["name"].replace(" ", "") for h in meta["hashtags"]}
    assert lowered - plain  # some plurals


def test_text_is_short_and_tag_related(tiny_posts):
    posts, tags = tiny_posts
    assert all(1 <= len(p.text.split()) <= 6 and "#" not in p.text for p in posts)
    words_of = [{w for t in ts for w in t.split()} for ts in tags]
    hits = np.mean([bool(set(p.text.split()) & w) for p, w in zip(posts, words_of)])
    assert hits >= 0.5
    assert all(p.time and p.time.startswith("2018-") for p in posts)


def test_features_shapes_and_ids(tiny, tiny_posts):
    d, meta = tiny
    posts, _ = tiny_posts
    ids = [p.id for p in posts]
    feats = raw_features(d, known_ids=set(ids))
    v, vids = feats["visual"]
    a, aids = feats["acoustic"]
    assert v.shape == (600, 40, 128) and a.shape == (600, 60, 64)
    assert v.dtype == np.float16 and a.dtype == np.float16 and isinstance(v, np.memmap)
    assert vids == ids and aids == ids
    assert np.isfinite(np.asarray(v[:50], dtype=np.float32)).all()
    assert meta["features"]["visual"] == {"steps": 40, "dim": 128, "relevant_steps": 8, "dtype": "float16"}


@pytest.mark.parametrize("modality", ["visual", "acoustic"])
def test_features_carry_the_hashtags(tiny, tiny_posts, modality):
    """A centroid probe fitted on half the posts separates posts with a topic
    tag from posts without it on the other half: the content is learnable."""
    d, meta = tiny
    _, tags = tiny_posts
    x = np.asarray(raw_features(d)[modality][0], dtype=np.float32).mean(axis=1)
    topic_tags = [h["name"] for h in sorted(meta["hashtags"], key=lambda h: -h["count"]) if h["topic"] >= 0]
    fit = np.arange(len(tags)) % 2 == 0
    aucs = []
    for name in topic_tags[:3]:
        y = np.array([name in t for t in tags])
        w = x[fit & y].mean(0) - x[fit & ~y].mean(0)
        s = x[~fit] @ w
        pos, neg = s[y[~fit]], s[~y[~fit]]
        aucs.append((pos[:, None] > neg[None, :]).mean())
    assert min(aucs) > 0.65, aucs


def test_planted_tag_has_only_its_cp_neighbour(tiny, tiny_posts):
    _, meta = tiny
    posts, tags = tiny_posts
    plant = meta["planted"]
    names = {h["name"]: h for h in meta["hashtags"]}
    tag, neighbour = plant["tag"], plant["neighbour"]
    assert names[tag]["kind"] == "planted" and names[neighbour]["kind"] == "single"
    assert tag.split()[1] == neighbour
    modifier = tag.split()[0]
    assert all(modifier not in n.split() for n in names if n != tag)  # its only cp link
    hosting = [t for p, t in zip(posts, tags) if tag in t]
    assert 2 <= len(hosting) == names[tag]["count"] == plant["uses"] <= 3
    assert sorted(p.id for p, t in zip(posts, tags) if tag in t) == plant["posts"]
    partners = Counter(x for t in hosting for x in t if x != tag)
    assert neighbour not in partners and max(partners.values(), default=1) == 1
    assert names[neighbour]["count"] >= 10


def test_no_features_when_dim_is_zero(tmp_path):
    synthetic.generate(tmp_path / "r", seed=2, **{**SMALL, "visual_dim": 0, "acoustic_dim": 0})
    assert raw_features(tmp_path / "r") == {}
    assert len(list(read_raw_posts(tmp_path / "r"))) == 300


# -- the raw folder format ----------------------------------------------------------
def _posts(n=3):
    return [Post(id=f"p{i}", user=f"u{i % 2}", hashtags=[f"#tag{i}", "Dog"], text="hi", time="2020-01-01")
            for i in range(n)]


def test_write_raw_round_trip(tmp_path):
    x = np.arange(3 * 4 * 2, dtype=np.float32).reshape(3, 4, 2)
    n = write_raw(tmp_path, _posts(), features={"visual": (x, ["p2", "p0", "p1"])})
    assert n == 3
    back = list(read_raw_posts(tmp_path))
    assert [p.to_json() for p in back] == [p.to_json() for p in _posts()]
    arr, ids = raw_features(tmp_path, known_ids={"p0", "p1", "p2"})["visual"]
    assert ids == ["p2", "p0", "p1"] and arr.dtype == np.float32 and np.array_equal(arr, x)
    assert not list(tmp_path.rglob("*.tmp"))


def test_csv_variant(tmp_path):
    (tmp_path / "posts.csv").write_text(
        "id,user,hashtags,text,time\n"
        "a,u1,\"#dog, KidDancer beach\",\"hello, world\",2020-01-01\n"
        "b,,cat,,\n", encoding="utf-8")
    a, b = read_raw_posts(tmp_path)
    assert a.hashtags == ["#dog", "KidDancer", "beach"] and a.text == "hello, world" and a.time == "2020-01-01"
    assert b.hashtags == ["cat"] and b.user == "<unknown>" and b.time is None


def test_csv_errors_name_file_and_line(tmp_path):
    p = tmp_path / "posts.csv"
    p.write_text("id,user,text\nx,u,t\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.csv:1: header lacks column\(s\) hashtags"):
        list(read_raw_posts(tmp_path))
    p.write_text("id,hashtags\na,x\n\"multi\nline\",y\n\na,z\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.csv:6: duplicate post id 'a' \(line 2 has it too\)"):
        list(read_raw_posts(tmp_path))
    p.write_text("id,hashtags\n,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.csv:2: empty id"):
        list(read_raw_posts(tmp_path))
    p.write_text("id,hashtags\na,x\nb,y,extra\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.csv:3: 3 fields, header has 2"):
        list(read_raw_posts(tmp_path))


def test_jsonl_errors_name_file_and_line(tmp_path):
    p = tmp_path / "posts.jsonl"
    p.write_text('{"id": "a", "hashtags": ["x"]}\n\n{"id": "b", "hashtags": [\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.jsonl:3: not valid JSON"):
        list(read_raw_posts(tmp_path))
    p.write_text('{"id": "a", "hashtags": ["x"]}\n{"id": "a", "hashtags": []}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.jsonl:2: duplicate post id 'a'"):
        list(read_raw_posts(tmp_path))
    p.write_text('{"id": "a", "hashtags": "x"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"posts.jsonl:1: 'hashtags' must be a list"):
        list(read_raw_posts(tmp_path))
    (tmp_path / "posts.csv").write_text("id,hashtags\n", encoding="utf-8")
    with pytest.raises(DataError, match="both posts.jsonl and posts.csv"):
        list(read_raw_posts(tmp_path))
    with pytest.raises(DataError, match="no such raw data folder"):
        list(read_raw_posts(tmp_path / "missing"))


def test_feature_validation_errors(tmp_path):
    write_raw(tmp_path, _posts(), features={"acoustic": (np.zeros((3, 2, 2), np.float16), ["p0", "p1", "p2"])})
    f = tmp_path / "features"
    (f / "acoustic.ids.txt").write_text("p0\np1\n")
    with pytest.raises(DataError, match=r"acoustic.ids.txt:3: 2 ids but acoustic.npy has 3 rows"):
        raw_features(tmp_path)
    (f / "acoustic.ids.txt").write_text("p0\np1\np2\np3\n")
    with pytest.raises(DataError, match=r"acoustic.ids.txt:4: 4 ids but acoustic.npy has 3 rows"):
        raw_features(tmp_path)
    (f / "acoustic.ids.txt").write_text("p0\nzz\np2\n")
    with pytest.raises(DataError, match=r"acoustic.ids.txt:2: post id 'zz' is not in the posts file"):
        raw_features(tmp_path, known_ids={p.id for p in read_raw_posts(tmp_path)})
    (f / "acoustic.ids.txt").write_text("p0\np0\np2\n")
    with pytest.raises(DataError, match=r"acoustic.ids.txt:2: duplicate post id 'p0'"):
        raw_features(tmp_path)
    np.save(f / "acoustic.npy", np.zeros((3, 4), np.float16))
    with pytest.raises(DataError, match=r"acoustic.npy: expected a 3-d array"):
        raw_features(tmp_path)
    np.save(f / "acoustic.npy", np.zeros((3, 4, 2), np.int64))
    with pytest.raises(DataError, match=r"dtype int64 is not float16 or float32"):
        raw_features(tmp_path)
    (f / "acoustic.ids.txt").unlink()
    with pytest.raises(DataError, match=r"acoustic.npy: no acoustic.ids.txt beside it"):
        raw_features(tmp_path)
    (f / "acoustic.npy").write_bytes(b"not numpy")
    (f / "acoustic.ids.txt").write_text("p0\n")
    with pytest.raises(DataError, match=r"acoustic.npy: not a readable .npy array"):
        raw_features(tmp_path)


def test_feature_writer_streams_chunks_and_checks_rows(tmp_path):
    path = tmp_path / "v.npy"
    rng = np.random.default_rng(0)
    full = rng.standard_normal((10, 3, 4)).astype(np.float16)
    with FeatureWriter(path, 10, 3, 4) as w:
        for lo in range(0, 10, 4):
            w.write(full[lo:lo + 4])
    assert np.array_equal(np.load(path, mmap_mode="r"), full)
    with pytest.raises(ValueError, match="5 rows written, 10 announced"):
        with FeatureWriter(tmp_path / "short.npy", 10, 3, 4) as w:
            w.write(full[:5])
    assert not (tmp_path / "short.npy").exists() and not list(tmp_path.glob("*.tmp"))
