"""Two-stage recommendation (gnn/ranking.py): with N = H it is the exact full
rank; with fewer candidates every score it returns is the exact one, the
candidates are distinct, excluded hashtags never come back, and on a model
whose scores a linear query explains the retrieval keeps the exact top 10."""
from __future__ import annotations

import contextlib

import pytest
import torch

from test_model import batch, config, model
from v2ht_kg.gnn import ranking

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H = 300


def big(variant="full", mods=("visual", "acoustic", "text"), seed=0):
    cfg = config(mods, variant, n_hashtags=H)
    return model(cfg, seed).eval()


@pytest.mark.parametrize("variant", ["full", "wo_u"])
def test_two_stage_with_every_hashtag_is_the_exact_top_k(variant):
    m = big(variant)
    bt = batch(b=6, n=H)
    exact_scores, exact_ids = torch.topk(m.score_all(bt), 10, dim=1)
    scores, ids = m.recommend(bt, 10, candidates=H)
    assert torch.equal(ids, exact_ids)
    assert torch.allclose(scores, exact_scores)
    assert ranking.agreement(m, [bt], n=H) == 1.0


@pytest.mark.parametrize("bf16", [False, True])
def test_the_full_rank_in_tile_order_is_the_rank_in_hashtag_order(bf16):
    """The full rank takes the hashtags sorted by one modality's score c
    (ranking.TileOrder) and puts each logit back in its hashtag's column:
    the scores of tiles in hashtag order, with the C loops and with torch's
    ops, but for the last bit where a product of torch's sums a row by its
    place in the tile (the float32 logit layer)."""
    from v2ht_kg.gnn import native

    m = big()
    bt = batch(b=5, n=H)
    with torch.no_grad():
        side = m._hashtag_side()
        post = m.encode_posts(bt, side)
        order = ranking.tile_order(post, side)
        key = order.modality
        assert key == max(side[1], key=lambda k: post.modalities[k].a.shape[1])
        assert not torch.equal(order.order, torch.arange(H))  # a real permutation, kept for the side
        assert torch.equal(torch.sort(order.order).values, torch.arange(H))
        assert ranking.tile_order(post, side) is order
        assert (order.side[1][key][1:] >= order.side[1][key][:-1]).all()
        for step in range(2):
            for off in ([False, True] if native.available() else [True]):
                with native.off() if off else contextlib.nullcontext():
                    plain = ranking._run_tiles(m, post, side, H, slice, chunk=37, bf16=bf16, fused=False)
                    got = ranking._score_encoded(m, post, side, chunk=37, bf16=bf16)
                assert torch.allclose(got, plain, rtol=1e-6, atol=0), (step, off)
                assert (got == plain).float().mean() > 0.95, (step, off)
            # a side changed in place (a model without propagation hands out its
            # embedding parameter, which training updates so): a new order
            side[0].mul_(-1.5)
            side[1][key].neg_()
            assert ranking.tile_order(post, side) is not order


def test_rerank_scores_are_exact_and_candidates_distinct():
    m = big()
    bt = batch(b=5, n=H)
    full = m.score_all(bt)
    side = m._hashtag_side()
    post = m.encode_posts(bt, side)
    cand = ranking.retrieve(m, post, side, 40)
    assert cand.shape == (5, 40)
    assert all(len(set(r)) == 40 for r in cand.tolist())
    pairs = ranking.score_pairs(m, post, side, cand, chunk=7)
    assert torch.allclose(pairs, full.gather(1, cand), atol=1e-5)
    scores, ids = m.recommend(bt, 10, candidates=40)
    assert torch.allclose(scores, full.gather(1, ids), atol=1e-5)
    # the best of the candidates: nothing among them scores above the 10th
    tenth = scores[:, -1:]
    assert ((full.gather(1, cand) > tenth + 1e-5).sum(1) <= 9).all()


def test_excluded_hashtags_never_come_back():
    m = big()
    bt = batch(b=4, n=H)
    full = m.score_all(bt)
    exclude = torch.zeros(4, H, dtype=torch.bool)
    exclude[:, full[0].topk(50).indices] = True  # the first post's best 50, for every post
    _, ids = m.recommend(bt, 10, candidates=60, exclude=exclude)
    assert not exclude.gather(1, ids).any()
    _, exact_ids = m.recommend(bt, 10, exclude=exclude)
    assert not exclude.gather(1, exact_ids).any()


def test_a_post_does_not_depend_on_its_batch():
    m = big()
    bt = batch(b=6, n=H)
    _, together = m.recommend(bt, 10, candidates=50)
    one = batch(b=6, n=H)
    for f in ("seqs", "lengths"):
        setattr(one, f, {k: v[2:3] for k, v in getattr(one, f).items()})
    one.rows, one.users, one.user_feats = one.rows[2:3], one.users[2:3], one.user_feats[2:3]
    one.cand = one.labels = one.cand_mask = None
    _, alone = m.recommend(one, 10, candidates=50)
    assert torch.equal(alone[0], together[2])


def test_retrieval_finds_the_top_of_a_nearly_linear_model():
    """Where the MLP is close to linear, the linearised query is close to the model
    and 60 of 300 candidates hold the whole exact top 10 (a wrong gradient or
    a wrong sign in q would not)."""
    m = big(seed=2)
    with torch.no_grad():
        for lin in [x for x in m.mlp if isinstance(x, torch.nn.Linear)][:-1]:
            lin.bias.add_(5.0)  # every ReLU active: the MLP is linear in p0
    bt = batch(b=8, n=H, seed=4)
    assert ranking.agreement(m, [bt], n=60) >= 0.95
    # a random filter of the same size keeps about 60/300 of them
    g = torch.Generator().manual_seed(0)
    full = m.score_all(bt)
    rand = torch.stack([torch.randperm(H, generator=g)[:60] for _ in range(8)])
    exact = full.topk(10).indices
    kept = sum(len(set(a) & set(b)) for a, b in zip(exact.tolist(), rand.tolist())) / exact.numel()
    assert kept < 0.5


def test_the_compiled_kernel_equals_the_eager_one():
    """Every tile the same shape (the last overlaps), compiled by torch.compile
    where a compiler is present; without one, or with V2HT_COMPILE=0, the eager
    kernel answers alone."""
    m = big()
    bt = batch(b=4, n=H)
    eager = m.score_all(bt)
    old = ranking.FUSED_PAIRS
    ranking.FUSED_PAIRS = 4 * 64  # 64 hashtags a tile: 300 is not a multiple
    try:
        fused = m.score_all(bt, fused=True)
        side = m._hashtag_side()
        post = m.encode_posts(bt, side)
        cand = ranking.retrieve(m, post, side, 150)
        pairs = ranking.score_pairs(m, post, side, cand, fused=True)
    finally:
        ranking.FUSED_PAIRS = old
    assert torch.allclose(fused, eager, atol=1e-5)
    assert torch.allclose(pairs, eager.gather(1, cand), atol=1e-5)


def test_the_authors_most_used_tags_are_candidates():
    from test_model import with_history

    m = big()
    bt = with_history(batch(b=4, n=H), length=6)
    bt.hist_ids = bt.hist_ids * 7 % H  # spread over the 300 tags
    side = m._hashtag_side()
    post = m.encode_posts(bt, side)
    cand = ranking.retrieve(m, post, side, 20, history=(bt.hist_ids, bt.hist_weights))
    for i in range(4):
        w, ids = bt.hist_weights[i], bt.hist_ids[i]
        own = set(ids[w.topk(20 // ranking.HISTORY_SHARE).indices][w.topk(20 // ranking.HISTORY_SHARE).values > 0].tolist())
        assert own <= set(cand[i].tolist())
    assert bt.hist_weights[-1].sum() == 0  # the last post has no history: linear scores only
    plain = ranking.retrieve(m, post, side, 20)
    assert torch.equal(cand[-1], plain[-1])


@pytest.mark.parametrize("bf16", [False, True])
def test_the_onednn_mlp_scores_as_the_plain_product_does(monkeypatch, bf16):
    """The tile kernel's hidden layers through oneDNN's linear give the
    scores of torch.addmm + ReLU, the path taken where oneDNN is missing."""
    m = big()
    bt = batch(b=5, n=H)
    monkeypatch.setitem(ranking._ONEDNN, "ok", None)
    fast = m.score_all(bt, bf16=bf16)
    # a torch build with oneDNN really took that path
    assert ranking._ONEDNN.get("ok") is not False or not torch.backends.mkldnn.is_available()
    monkeypatch.setitem(ranking._ONEDNN, "ok", False)  # as on a build without it
    plain = m.score_all(bt, bf16=bf16)
    assert torch.allclose(fast, plain, atol=1e-5 if not bf16 else 1e-2)
    x, w = torch.randn(7, 12), torch.randn(5, 12)
    y = ranking.onednn_linear(x, w, None, relu=False)
    assert y is None or torch.allclose(y, x @ w.t(), atol=1e-5)
