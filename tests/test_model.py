"""The V2HT model: shapes for every variant and modality subset, exact full
ranking, Bi-Interaction (Eq. 14) by hand, attention masking, and learning."""
from __future__ import annotations

import json

import pytest
import torch
from torch_geometric.data import Data

from v2ht_kg.gnn.batch import PostBatch
from v2ht_kg.gnn.config import VARIANTS, V2HTConfig, apply_variant
from v2ht_kg.gnn.encoders import ModalityEncoder, ModalityStates
from v2ht_kg.gnn.model import V2HT
from v2ht_kg.kg.errors import V2HTError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


H = 40
DIMS = {"visual": 12, "acoustic": 6, "text": 5}
STEPS = {"visual": 7, "acoustic": 9, "text": 4}
SUBSETS = [("text",), ("visual", "acoustic"), ("visual", "acoustic", "text")]


def graph(n=H, seed=0):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, 3 * n), generator=g)
    et = torch.randint(0, 4, (3 * n,), generator=g)
    ew = torch.rand(3 * n, generator=g)
    return Data(edge_index=torch.cat([ei, ei.flip(0)], 1), edge_type=et.repeat(2),
                edge_weight=ew.repeat(2), num_nodes=n)


def config(modalities=("visual", "acoustic", "text"), variant="full", **kw):
    base = dict(n_hashtags=H, d_hashtag=8, d_common=8, modalities=modalities, input_dims=DIMS,
                lstm_hidden={"visual": 8, "acoustic": 6, "text": 6}, d_user_in=10, mlp_hidden=(16, 8),
                edge_hidden=4)
    base.update(kw)
    return apply_variant(V2HTConfig(**base), variant)


def model(cfg, seed=0):
    torch.manual_seed(seed)
    return V2HT(cfg, torch.randn(cfg.n_hashtags, cfg.d_hashtag), graph(cfg.n_hashtags))


def batch(b=4, k=5, seed=1, n=H, modalities=tuple(DIMS)):
    g = torch.Generator().manual_seed(seed)
    seqs, lengths = {}, {}
    for m in modalities:
        t = STEPS[m]
        ln = torch.randint(1, t + 1, (b,), generator=g)
        ln[0] = t  # one full-length sequence
        x = torch.randn(b, t, DIMS[m], generator=g)
        x[torch.arange(t)[None, :] >= ln[:, None]] = 0.0
        seqs[m], lengths[m] = x, ln
    cand = torch.randint(0, n, (b, k), generator=g)
    mask = torch.ones(b, k, dtype=torch.bool)
    mask[-1, -2:] = False
    return PostBatch(rows=torch.arange(b), seqs=seqs, lengths=lengths, users=torch.arange(b),
                     user_feats=torch.randn(b, 10, generator=g), cand=cand,
                     labels=(torch.rand(b, k, generator=g) < 0.3).float(), cand_mask=mask)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("mods", SUBSETS)
def test_shapes_and_forward_equals_score_all(variant, mods):
    cfg = config(mods, variant)
    m = model(cfg).eval()
    bt = batch()
    logits = m(bt)
    assert logits.shape == (4, 5)
    full = m.score_all(bt, chunk=7)
    assert full.shape == (4, H)
    valid = bt.cand_mask
    # valid slots score as the full rank does; padding slots are not scored
    assert torch.allclose(full.gather(1, bt.cand)[valid], logits[valid], atol=1e-5)
    assert torch.all(logits[~valid] == 0)
    m.eval()
    unmasked = m.score_candidates(m.encode_posts(bt), bt.cand)
    assert torch.allclose(unmasked, full.gather(1, bt.cand), atol=1e-5)
    scores, ids = m.recommend(bt, 3)
    assert scores.shape == ids.shape == (4, 3)
    assert torch.equal(ids[:, 0], full.argmax(1))
    assert m.hashtag_embeddings().shape == (H, 8)
    att = m.attention(bt, bt.cand[:, 0])
    assert set(att) == set(mods) and all(att[x].shape == (4, STEPS[x]) for x in mods)
    assert torch.isfinite(m.loss(bt))
    assert (m.propagation is not None) == cfg.use_propagation
    assert (m.user_encoder is not None) == cfg.use_user


def test_score_all_exact_with_extreme_attention_and_projection():
    """Large step scores spread the breakpoints of ReLU(a + c) over the hashtags'
    range and test the overflow guard; d_F != d_D adds the common-space projection."""
    cfg = config(d_common=5)
    m = model(cfg).eval()
    with torch.no_grad():
        for enc in m.encoders.values():
            enc.att_step.weight.mul_(40.0)
            enc.att_tag.weight.mul_(40.0)
    bt = batch(b=6, k=H)
    bt.cand = torch.arange(H).repeat(6, 1)
    bt.cand_mask = None
    full = m.score_all(bt, chunk=16)
    assert torch.isfinite(full).all()
    assert torch.allclose(full, m(bt), atol=1e-4)


def test_pool_all_matches_literal_pooling_at_breakpoints():
    torch.manual_seed(3)
    b, t, d = 3, 6, 4
    lengths = torch.tensor([6, 3, 1])
    mask = torch.arange(t)[None] < lengths[:, None]
    a = torch.tensor([[0.5, -1.0, 2.0, 0.5, -3.0, 1.0],
                      [1.0, 1.0, -2.0, 9.0, 9.0, 9.0],  # padding has large scores: must not count
                      [-0.5, 0.0, 0.0, 0.0, 0.0, 0.0]])
    enc = ModalityStates(states=torch.zeros(b, t, 1), mask=mask, lengths=lengths, a=a, z=torch.randn(b, t, d))
    c = torch.tensor([-5.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0, 50.0, 200.0])  # ties, all-off, all-on
    got = ModalityEncoder.pool_all(enc, c)
    want = ModalityEncoder.pool(enc, c.expand(b, -1))
    assert torch.allclose(got, want, atol=1e-5)


def test_bi_interaction_is_eq14_by_hand():
    cfg = config(("visual", "text"), "wo_p", d_hashtag=2, d_common=2)
    m = model(cfg).eval()
    seen = {}
    m.mlp.register_forward_pre_hook(lambda mod, inp: seen.setdefault("p0", inp[0].clone()))
    ev, et = torch.tensor([[[1.0, 2.0]]]), torch.tensor([[[-1.0, 0.5]]])
    eh, eu = torch.tensor([[[3.0, 4.0]]]), torch.tensor([[[5.0, 6.0]]])
    m._interact([ev, et], eh, eu)
    # visual: 1*3 + 1*5 + 3*5 = 23, 2*4 + 2*6 + 4*6 = 44; text: -3 - 5 + 15 = 7, 2 + 3 + 24 = 29
    assert seen["p0"].flatten().tolist() == [23.0, 44.0, 7.0, 29.0]
    seen.clear()
    m._interact([ev, et], eh, None)  # without user: e~ * e_h
    assert seen["p0"].flatten().tolist() == [3.0, 8.0, -3.0, 2.0]


def test_attention_sums_to_one_and_ignores_padding():
    cfg = config()
    m = model(cfg).eval()
    bt = batch(b=5)
    tags = bt.cand[:, 0]
    att = m.attention(bt, tags)
    for mod, w in att.items():
        valid = torch.arange(w.shape[1])[None] < bt.lengths[mod][:, None]
        assert torch.allclose(w.sum(1), torch.ones(5), atol=1e-6)
        assert (w[~valid] == 0).all() and (w[valid] > 0).all()
    before = m(bt)
    for mod in bt.seqs:  # garbage in the padded steps must change nothing
        x = bt.seqs[mod]
        pad = torch.arange(x.shape[1])[None] >= bt.lengths[mod][:, None]
        x[pad] = 100.0
    assert torch.allclose(m(bt), before, atol=1e-6)
    assert torch.allclose(m.attention(bt, tags)["visual"], att["visual"], atol=1e-6)


def learnable_problem(n_posts=48, n_tags=12, seed=0):
    """Each post belongs to one of 4 classes; its visual frames carry the class
    signal and its true hashtags are the 3 tags of that class."""
    g = torch.Generator().manual_seed(seed)
    cls = torch.arange(n_posts) % 4
    proto = torch.randn(4, DIMS["visual"], generator=g) * 2
    x = proto[cls][:, None, :] + 0.3 * torch.randn(n_posts, STEPS["visual"], DIMS["visual"], generator=g)
    lengths = torch.full((n_posts,), STEPS["visual"])
    pos = cls[:, None] * 3 + torch.arange(3)[None]
    neg = torch.randint(0, n_tags, (n_posts, 6), generator=g)
    neg = torch.where((neg // 3) == cls[:, None], (neg + 3) % n_tags, neg)
    cand = torch.cat([pos, neg], 1)
    labels = torch.cat([torch.ones(n_posts, 3), torch.zeros(n_posts, 6)], 1)
    return PostBatch(rows=torch.arange(n_posts), seqs={"visual": x}, lengths={"visual": lengths},
                     users=torch.zeros(n_posts, dtype=torch.long),
                     user_feats=torch.randn(n_posts, 10, generator=g), cand=cand, labels=labels,
                     cand_mask=torch.ones_like(labels, dtype=torch.bool))


@pytest.mark.parametrize("variant", ["full", "wo_up"])
def test_loss_decreases_on_a_learnable_problem(variant):
    cfg = config(("visual",), variant, n_hashtags=12, dropout=0.0)
    torch.manual_seed(0)
    m = V2HT(cfg, torch.randn(12, cfg.d_hashtag), graph(12))
    bt = learnable_problem()
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    first = m.loss(bt).item()
    for _ in range(40):
        opt.zero_grad()
        loss = m.loss(bt)
        loss.backward()
        opt.step()
    m.eval()
    last = m.loss(bt).item()
    assert last < 0.5 * first, (first, last)
    # the trained model ranks the class's tags first
    _, top = m.recommend(bt, 3)
    hits = (top // 3 == (bt.rows % 4)[:, None]).float().mean().item()
    assert hits > 0.8


def test_hashtag_cache_follows_parameter_updates():
    cfg = config()
    m = model(cfg).eval()
    with torch.no_grad():
        e1 = m.hashtag_embeddings().clone()
        assert m.hashtag_embeddings() is m.hashtag_embeddings()  # cached
        m.hashtag_emb.add_(1.0)
        assert not torch.allclose(m.hashtag_embeddings(), e1)


def test_loss_ignores_padding_candidates():
    m = model(config()).eval()
    bt = batch()
    base = m.loss(bt)
    bt.labels[~bt.cand_mask] = 1 - bt.labels[~bt.cand_mask]
    assert torch.allclose(m.loss(bt), base)


def test_edge_weights_for_explanations():
    m = model(config())
    ew = m.edge_weights()
    n_e = graph().edge_index.shape[1]
    for k in ("A", "A_prime", "A_hat"):
        assert ew[k].shape == (n_e,)
    assert ew["self_A_hat"].shape == (H,)
    with pytest.raises(V2HTError):
        model(config(variant="wo_p")).edge_weights()


def test_config_round_trip_and_variants():
    cfg = config(("visual", "text"))
    again = V2HTConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert cfg.variant("wo_up").variant_name == "wo_up"
    assert not cfg.variant("wo_u").use_user and cfg.variant("wo_u").use_propagation
    with pytest.raises(V2HTError, match="variant"):
        cfg.variant("nope")
    with pytest.raises(V2HTError, match="d_user"):
        config(d_user=4)
    with pytest.raises(V2HTError, match="modality"):
        config(("smell",))
    with pytest.raises(V2HTError, match="unknown model config"):
        V2HTConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_bad_inputs_are_clear_errors():
    m = model(config()).eval()
    bt = batch(modalities=("visual", "text"))
    with pytest.raises(V2HTError, match="acoustic"):
        m(bt)
    bt = batch()
    bt.cand[0, 0] = H
    with pytest.raises(V2HTError, match="hashtag ids"):
        m(bt)
    with pytest.raises(V2HTError, match="graph"):
        V2HT(config(), torch.randn(H, 8), None)
    with pytest.raises(V2HTError, match="shape"):
        V2HT(config(variant="wo_p"), torch.randn(H, 5), None)


def test_bf16_scores_rank_like_fp32():
    m = model(config()).eval()
    bt = batch(b=4)
    exact = m.score_all(bt)
    fast = m.score_all(bt, bf16=True)
    assert fast.dtype == torch.float32
    top_exact = exact.topk(5).indices
    # the best fp32 hashtag stays near the top under bf16
    ranks = (fast > fast.gather(1, top_exact[:, :1])).sum(1)
    assert (ranks < 5).all()


def with_history(bt, seed=5, length=6):
    """Adds a user history: random tags with normalised weights; the last post has none."""
    g = torch.Generator().manual_seed(seed)
    b = len(bt.rows)
    bt.hist_ids = torch.randint(0, H, (b, length), generator=g)
    w = torch.rand(b, length, generator=g)
    w[0, -2:] = 0.0  # padding slots
    w[-1] = 0.0
    bt.hist_weights = w / w.sum(1, keepdim=True).clamp_min(1e-12)
    return bt


@pytest.mark.parametrize("propagated", [False, True])
def test_learned_user_history_is_exact_and_trains_the_hashtag_embeddings(propagated):
    cfg = config(user_history="learned", user_history_propagated=propagated, d_user_in=10, d_user_tags=6)
    m = model(cfg)
    assert m.user_encoder.net[0].in_features == 10 - 6 + 8
    bt = with_history(batch())
    m.eval()
    logits = m(bt)
    valid = bt.cand_mask
    assert torch.allclose(m.score_all(bt, chunk=7).gather(1, bt.cand)[valid], logits[valid], atol=1e-5)
    # the history enters the score; padding slots and the dropped Word2Vec block do not
    before = logits.clone()
    bt.hist_ids[0, -2:] = (bt.hist_ids[0, -2:] + 1) % H
    bt.user_feats[:, 3:9] = 100.0
    assert torch.allclose(m(bt), before, atol=1e-6)
    bt.hist_ids[1] = (bt.hist_ids[1] + 1) % H
    assert not torch.allclose(m(bt)[1], before[1])
    # gradients reach the embeddings of history tags that are not candidates
    m.train()
    only_hist = sorted(set(bt.hist_ids[1].tolist()) - set(bt.cand.flatten().tolist()))
    assert only_hist
    m.loss(bt).backward()
    assert float(m.hashtag_emb.grad[only_hist].abs().sum()) > 0


def test_learned_user_history_config_and_errors():
    cfg = config(user_history="learned")
    assert cfg.d_user_tags == cfg.d_hashtag
    assert V2HTConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(V2HTError, match="user_history"):
        config(user_history="bag")
    with pytest.raises(V2HTError, match="Word2Vec block"):
        config(user_history="learned", d_user_in=5, d_user_tags=8)
    V2HTConfig(**{**cfg.to_dict(), "d_user_in": 5, "use_user": False})  # no user tower: nothing to replace
    m = model(cfg).eval()
    with pytest.raises(V2HTError, match="hist_ids"):
        m(batch())
    bt = with_history(batch())
    bt.hist_ids[0, 0] = H
    with pytest.raises(V2HTError, match="hashtag ids"):
        m(bt)


@pytest.mark.parametrize("all_valid", [True, False])
def test_gradients_on_two_threads_repeat_exactly(all_valid):
    """Repeated hashtags and posts among a step's pairs: their gradients must
    sum in one order on every call (x[ids]'s backward summed them with
    atomic adds on two threads once they held 32k values, and runs of one
    seed parted)."""
    m = model(config()).train()
    bt = batch(b=64, k=96, seed=3)  # 6,000+ pairs over 40 hashtags, d 8: past 32k values
    if all_valid:
        bt.cand_mask[:] = True

    def grads():
        torch.manual_seed(0)  # the same dropout masks
        m.zero_grad(set_to_none=True)
        m.loss(bt).backward()
        return [p.grad.clone() for p in m.parameters() if p.grad is not None]

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        first = grads()
        for _ in range(12):
            assert all(torch.equal(a, b) for a, b in zip(first, grads()))
    finally:
        torch.set_num_threads(before)
