"""Data pipeline: Word2Vec without leakage, batches, negatives, user features."""
import numpy as np
import pytest
import torch

from gnn_fixtures import write_prepared
from v2ht_kg.gnn.data import NEGATIVES, TrainingData
from v2ht_kg.gnn.embeddings import W2V_FILE, hashtag_vectors, load_word2vec, train_word2vec
from v2ht_kg.kg.dataset import PreparedDataset
from v2ht_kg.kg.errors import DataError

DIM = 12


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("gnn_data")
    write_prepared(root / "data", seed=3)
    return TrainingData.build(root / "data", root, seed=5, w2v_dim=DIM, max_text_tokens=3)


def test_word2vec_sees_training_posts_only_and_is_cached(data, tmp_path):
    assert "heldout" not in data.kv.key_to_index  # the word appears in valid/test posts only
    assert "w1" in data.kv.key_to_index
    cached = load_word2vec(data.ds.root.parent / W2V_FILE)
    assert np.array_equal(cached["w1"], data.kv["w1"])
    # same seed, same vectors (workers=1)
    sents = [["a", "b", "c"], ["b", "c", "d"]] * 5
    v1, v2 = train_word2vec(sents, 8, seed=1), train_word2vec(sents, 8, seed=1)
    assert np.array_equal(v1["b"], v2["b"])


def test_hashtag_vectors_mean_of_words_and_seeded_oov(data):
    ht = data.ds.hashtags
    two = next(h for h in ht if len(h.words) == 2 and all(w in data.kv.key_to_index for w in h.words))
    expect = (data.kv[two.words[0]] + data.kv[two.words[1]]) / 2
    assert torch.allclose(data.hashtag_init[two.id], torch.from_numpy(expect), atol=1e-6)

    class T:  # a tag none of whose words was trained
        def __init__(self, w):
            self.words, self.name = [w], w

    a = hashtag_vectors([T("zzz"), T("yyy")], data.kv, DIM, seed=9)
    b = hashtag_vectors([T("zzz"), T("yyy")], data.kv, DIM, seed=9)
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])
    assert float(a.abs().max()) < 1.0


def test_negatives_exclude_truth_and_are_reproducible(data):
    batches = list(data.train_batches(epoch=1, batch_size=16))
    again = list(data.train_batches(epoch=1, batch_size=16))
    other = list(data.train_batches(epoch=2, batch_size=16))
    n_rows = 0
    for b, b2 in zip(batches, again):
        assert torch.equal(b.cand, b2.cand) and torch.equal(b.rows, b2.rows)
        for i, r in enumerate(b.rows.tolist()):
            truth = set(data.tags[r])
            valid = b.cand[i][b.cand_mask[i]].tolist()
            lab = b.labels[i][b.cand_mask[i]].tolist()
            pos = [c for c, l in zip(valid, lab) if l == 1.0]
            neg = [c for c, l in zip(valid, lab) if l == 0.0]
            assert set(pos) == truth
            assert len(neg) == NEGATIVES * len(truth)
            assert not truth & set(neg)
            assert b.labels[i][~b.cand_mask[i]].sum() == 0
        n_rows += len(b)
    assert n_rows == len(data.rows["train"])
    assert not all(torch.equal(a.rows, c.rows) for a, c in zip(batches, other))


def test_batch_shapes_lengths_and_empty_text(data):
    rows = data.rows["train"][:8]
    b = data.batch(rows)
    assert b.cand is None
    assert b.seqs["visual"].dtype == torch.float32
    assert b.seqs["text"].shape[1] <= 3 and b.seqs["text"].shape[2] == DIM
    assert b.user_feats.shape == (8, data.d_user_in)
    vis = data.ds.features("visual")
    for i, r in enumerate(rows):
        # the fixture zero-pads every 4th row after 3 frames
        assert int(b.lengths["visual"][i]) == (3 if r % 4 == 0 else 5)
        assert torch.equal(b.seqs["visual"][i, :3], torch.from_numpy(vis[r, :3].astype(np.float32)))
    empty = [r for r in range(data.n_posts) if not data.tokens[r]]
    e = data.batch(empty[:2])
    assert e.lengths["text"].tolist() == [1, 1]
    assert float(e.seqs["text"].abs().sum()) == 0.0


def _post_vec(data, r):
    x = data.ds.features("visual")[r].astype(np.float64)
    L = 3 if r % 4 == 0 else 5
    return x[:L].mean(axis=0)


def _scaled(data, post_vec, tag_vec):
    """The raw profile standardised by the data set's fitted user scaling."""
    return (np.concatenate([post_vec, tag_vec]) - data._u_mu) / data._u_sd


def test_user_features_leave_one_out(data):
    D = 8
    r = int(data.rows["train"][0])
    u = data.users[r]
    others = [int(o) for o in data.rows["train"] if data.users[o] == u and o != r]
    f = data.user_features(np.array([r]))[0].numpy()
    emb = data.hashtag_init.numpy()
    other_tags = [t for o in others for t in data.tags[o]]
    expect = _scaled(data, np.mean([_post_vec(data, o) for o in others], axis=0), emb[other_tags].mean(axis=0))
    assert np.allclose(f[:D + DIM], expect, atol=1e-4)
    assert f[-1] == 0.0
    # a test post sees the user's whole training history
    t = int(next(x for x in data.rows["test"] if data.users[x] == u))
    ft = data.user_features(np.array([t]))[0].numpy()
    mine = others + [r]
    expect = _scaled(data, np.mean([_post_vec(data, o) for o in mine], axis=0),
                     emb[[x for o in mine for x in data.tags[o]]].mean(axis=0))
    assert np.allclose(ft[:D + DIM], expect, atol=1e-4)
    # batch composition does not change a row's features
    assert torch.allclose(data.batch(np.array([t, r])).user_feats[1], torch.from_numpy(f))


def test_user_profiles_are_standardised(data):
    """Weighted by training posts, every profile column of the training users'
    full histories has mean 0 and spread 1 (or stays centred when constant)."""
    users = sorted({int(data.users[r]) for r in data.rows["train"]})
    f = data.user_features_for(users).numpy().astype(np.float64)
    w = np.array([np.sum(data.users[data.rows["train"]] == u) for u in users], dtype=np.float64)
    mu = np.average(f[:, :-1], axis=0, weights=w)
    sd = np.sqrt(np.average((f[:, :-1] - mu) ** 2, axis=0, weights=w))
    assert np.allclose(mu, 0.0, atol=1e-4)
    assert np.allclose(sd[data._u_sd != 1.0], 1.0, atol=1e-3)
    assert np.all(f[:, -1] == 0.0)


def test_unknown_user_and_text_only_profiles(tmp_path):
    write_prepared(tmp_path / "d", visual=False, acoustic=False, unknown_user=True, seed=1, n_users=3)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=DIM)
    assert data.modalities == ("text",) and data.user_source == "text"
    assert data.d_user_in == 2 * DIM + 1
    r0 = [r for r in range(data.n_posts) if data.users[r] == 0]
    f = data.user_features(np.array(r0))
    assert float(f[:, :-1].abs().sum()) == 0.0 and bool((f[:, -1] == 1).all())
    known = data.user_features(np.array([r for r in data.rows["test"] if data.users[r] == 1]))
    assert bool((known[:, -1] == 0).all()) and float(known[:, :DIM].abs().sum()) > 0
    nb = data.new_post_batch(["w1", "never"], None)
    assert nb.user_feats[0, -1] == 1 and nb.lengths["text"].tolist() == [1]


def test_missing_modality_is_a_data_error(tmp_path):
    write_prepared(tmp_path / "d", visual=False, acoustic=False, n_users=2)
    ds = PreparedDataset(tmp_path / "d")
    with pytest.raises(DataError, match="visual"):
        TrainingData.build(ds, None, modalities=["visual"], w2v_dim=DIM)


def test_visual_profile_cache_gives_the_same_features(data):
    cache = data.ds.root.parent / "user_visual_sums.npz"
    assert cache.exists()
    again = TrainingData.build(data.ds, data.ds.root.parent, seed=5, w2v_dim=DIM, max_text_tokens=3)
    rows = np.concatenate([data.rows["train"][:5], data.rows["test"][:5]])
    assert torch.equal(again.user_features(rows), data.user_features(rows))


def _history(ids, w):
    return {int(i): float(x) for i, x in zip(ids.tolist(), w.tolist()) if x > 0}


def test_user_history_ids_leave_one_out(data):
    r = int(data.rows["train"][0])
    u = data.users[r]
    others = [int(o) for o in data.rows["train"] if data.users[o] == u and o != r]
    uses = [t for o in others for t in data.tags[o]]
    ids, w = data.user_history(np.array([r]))
    assert _history(ids[0], w[0]) == pytest.approx({t: uses.count(t) / len(uses) for t in set(uses)})
    # a test post sees the whole history, and the batch carries the same tensors
    t = int(next(x for x in data.rows["test"] if data.users[x] == u))
    uses_all = uses + list(data.tags[r])
    b = data.batch(np.array([r, t]))
    got = _history(b.hist_ids[1], b.hist_weights[1])
    assert got == pytest.approx({x: uses_all.count(x) / len(uses_all) for x in set(uses_all)})
    assert _history(b.hist_ids[0], b.hist_weights[0]) == pytest.approx(_history(ids[0], w[0]))
    assert torch.allclose(b.hist_weights.sum(1), torch.ones(2))
    # the whole-history form for new posts agrees with the test post
    nid, nw = data.user_history_for([int(u)])
    assert _history(nid[0], nw[0]) == pytest.approx(got)


def test_user_history_is_empty_without_history(tmp_path):
    write_prepared(tmp_path / "d", visual=False, acoustic=False, unknown_user=True, seed=1, n_users=3)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=DIM)
    r0 = np.array([r for r in range(data.n_posts) if data.users[r] == 0])  # the unknown user
    ids, w = data.user_history(r0)
    assert float(w.abs().sum()) == 0.0 and ids.shape[0] == len(r0)
    nb = data.new_post_batch(["w1"], None)
    assert float(nb.hist_weights.abs().sum()) == 0.0
    known = data.new_post_batch(["w1"], 1)
    assert float(known.hist_weights.sum()) == pytest.approx(1.0)
