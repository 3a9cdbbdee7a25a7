"""Hashtag propagation (paper Eqs. 4-7) on tiny graphs, checked against hand
computation and dense matrix formulas."""
from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Data

from v2ht_kg.gnn.propagation import HashtagPropagation, _CSRMatmul, _PairDots, _RowSums
from v2ht_kg.kg.errors import V2HTError


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def undirected(pairs, types, priors, n):
    """Both directions of every pair, as kg.export writes them."""
    a = torch.tensor([p[0] for p in pairs] + [p[1] for p in pairs])
    b = torch.tensor([p[1] for p in pairs] + [p[0] for p in pairs])
    return Data(edge_index=torch.stack([a, b]), edge_type=torch.tensor(types * 2),
                edge_weight=torch.tensor(priors * 2, dtype=torch.float), num_nodes=n)


# path 0-1-2, a triangle-free branch 1-3, node 4 isolated
PAIRS = [(0, 1), (1, 2), (1, 3)]
TYPES = [0, 3, 1]
PRIORS = [1.0, 0.25, 0.5]
N, D = 5, 4


def make(alpha=0.2, layers=2, seed=0, graph=None, residual=False):
    torch.manual_seed(seed)
    g = graph if graph is not None else undirected(PAIRS, TYPES, PRIORS, N)
    prop = HashtagPropagation(D, N, g, alpha=alpha, layers=layers, edge_hidden=3, residual=residual)
    emb = torch.randn(N, D)
    return prop, emb


def dense(prop, m):
    """Dense A (from per-pair values), A' and A^ built from the CSR outputs."""
    t = prop.topo
    a = torch.zeros(N, N)
    a[t.pair_lo, t.pair_hi] = m["A"]
    a[t.pair_hi, t.pair_lo] = m["A"]
    a1 = torch.zeros(N, N)
    a1[t.rows, t.cols] = m["A_prime"]
    a1 += torch.diag(m["A_prime_self"])
    ah = torch.zeros(N, N)
    ah[t.rows, t.cols] = m["A_hat"]
    ah += torch.diag(m["A_hat_self"])
    return a, a1, ah


def test_hand_computed_weights_with_zeroed_projections():
    prop, emb = make(alpha=0.3)
    with torch.no_grad():
        prop.edge_weight.p.weight.zero_()
        prop.edge_weight.q.weight.zero_()
        prop.edge_weight.type_bias.copy_(torch.tensor([0.5, 0.0, 0.0, -1.0]))
        prop.edge_weight.prior_coef.copy_(torch.tensor([1.0, 2.0, 1.0, 1.0]))
        m = prop.matrices(emb)
    a, a1, _ = dense(prop, m)
    a01, a12, a13 = softplus(0.5 + 1.0), softplus(-1.0 + 0.25), softplus(2.0 * 0.5)
    assert a[0, 1].item() == pytest.approx(a01, rel=1e-6)
    assert a[1, 2].item() == pytest.approx(a12, rel=1e-6)
    assert a[3, 1].item() == pytest.approx(a13, rel=1e-6)
    row1 = a01 + a12 + a13
    assert a1[1, 0].item() == pytest.approx(0.3 * a01 / row1, rel=1e-6)
    assert a1[1, 2].item() == pytest.approx(0.3 * a12 / row1, rel=1e-6)
    assert a1[0, 1].item() == pytest.approx(0.3, rel=1e-6)  # node 0 has one neighbour
    assert a1[1, 1].item() == pytest.approx(0.7)
    assert a1[4, 4].item() == pytest.approx(1.0)  # isolated: only the self loop


def test_rows_sum_to_one_and_self_weight():
    prop, emb = make(alpha=0.2)
    with torch.no_grad():
        m = prop.matrices(emb)
    a, a1, _ = dense(prop, m)
    assert torch.allclose(a1.sum(1), torch.ones(N), atol=1e-6)
    assert torch.allclose(torch.diag(a1)[:4], torch.full((4,), 0.8))
    assert torch.diag(a1)[4] == 1.0
    assert torch.allclose(a, a.t())  # the learned weight is symmetric
    assert (m["A"] > 0).all()


def test_normalisation_matches_dense_formula():
    prop, emb = make(alpha=0.6)
    with torch.no_grad():
        m = prop.matrices(emb)
    _, a1, ah = dense(prop, m)
    d = a1.sum(1).rsqrt()
    expect = d[:, None] * a1 * d[None, :]
    assert torch.allclose(ah, expect, atol=1e-6)


def test_output_equals_dense_propagation():
    prop, emb = make(alpha=0.2, layers=2)
    with torch.no_grad():
        m = prop.matrices(emb)
        _, _, ah = dense(prop, m)
        w0, w1 = (lin.weight for lin in prop.layers)
        expect = ah @ torch.relu(ah @ emb @ w0.t()) @ w1.t()
        got = prop(emb)
    assert torch.allclose(got, expect, atol=1e-5)


def test_residual_adds_initial_embedding():
    prop, emb = make(residual=True)
    with torch.no_grad():
        with_res = prop(emb)
        prop.residual = False
        assert torch.allclose(with_res, prop(emb) + emb)


def test_alpha_zero_ignores_neighbours():
    prop, emb = make(alpha=0.0, layers=2)
    w0, w1 = (lin.weight for lin in prop.layers)
    with torch.no_grad():
        got = prop(emb)
        expect = torch.relu(emb @ w0.t()) @ w1.t()
        assert torch.allclose(got, expect, atol=1e-6)
        emb2 = emb.clone()
        emb2[0] += 5.0  # a neighbour of node 1 changes
        assert torch.allclose(prop(emb2)[1], got[1], atol=1e-6)
    prop_on, _ = make(alpha=0.5, layers=2)
    with torch.no_grad():
        assert not torch.allclose(prop_on(emb2)[1], prop_on(emb)[1])


def test_gradients_reach_edge_weight_parameters():
    prop, emb = make(alpha=0.5)
    emb.requires_grad_(True)
    target = torch.randn(N, D)
    loss = ((prop(emb) - target) ** 2).sum()
    loss.backward()
    ew = prop.edge_weight
    for p in (ew.p.weight, ew.q.weight, ew.type_bias, ew.prior_coef):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert emb.grad.abs().sum() > 0
    # type 2 (po) has no edge here, so its bias cannot matter
    assert ew.type_bias.grad[2] == 0


def test_csr_matmul_gradcheck():
    prop, _ = make()
    t = prop.topo
    vals = torch.rand(t.n_directed, dtype=torch.double, requires_grad=True)
    x = torch.randn(N, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, y: _CSRMatmul.apply(v, y, t.crow, t.cols, t.twin), (vals, x))


def test_pair_dots_gradcheck_and_values():
    prop, _ = make()
    t = prop.topo
    for typ, (start, end) in enumerate(t.type_slices):
        if end == start:
            continue
        u = torch.randn(N, 3, dtype=torch.double, requires_grad=True)
        v = torch.randn(N, 3, dtype=torch.double, requires_grad=True)
        pat = t.type_pattern(typ)
        got = _PairDots.apply(u, v, *pat)
        want = (u[t.pair_lo[start:end]] * v[t.pair_hi[start:end]]).sum(-1)
        assert torch.allclose(got, want)
        assert torch.autograd.gradcheck(lambda a, b: _PairDots.apply(a, b, *pat), (u, v))


def test_messy_input_graph_one_direction_duplicates_self_loops():
    # (0,1) given once, (1,2) given twice in both directions, and a self loop on 3
    g = Data(edge_index=torch.tensor([[0, 1, 2, 1, 3], [1, 2, 1, 2, 3]]),
             edge_type=torch.tensor([0, 1, 1, 1, 2]), edge_weight=torch.ones(5), num_nodes=N)
    prop, emb = make(graph=g)
    assert prop.topo.n_pairs == 2 and prop.topo.n_directed == 4
    ex = prop.explain(emb)
    assert torch.isnan(ex["A"][4])  # the input self loop has no off-diagonal weight
    assert ex["A"][1] == ex["A"][2] == ex["A"][3]  # the same pair in either direction
    assert ex["self_A_prime"][3] == 1.0 and ex["self_A_prime"][0] == pytest.approx(0.8)


def test_explain_aligns_with_input_order():
    prop, emb = make()
    ex = prop.explain(emb)
    ei = ex["edge_index"]
    m = prop.matrices(emb)
    _, a1, ah = dense(prop, {k: v.detach() for k, v in m.items()})
    assert torch.allclose(ex["A_prime"], a1[ei[0], ei[1]])
    assert torch.allclose(ex["A_hat"], ah[ei[0], ei[1]])


def test_bad_graph_is_a_clear_error():
    g = Data(edge_index=torch.tensor([[0], [9]]), num_nodes=N)
    with pytest.raises(V2HTError, match="outside"):
        HashtagPropagation(D, N, g)
    g = Data(edge_index=torch.tensor([[0], [1]]), edge_type=torch.tensor([7]), num_nodes=N)
    with pytest.raises(V2HTError, match="edge_type"):
        HashtagPropagation(D, N, g)


def test_graph_size_must_match_but_is_not_inferred():
    # the last two hashtags are isolated: PyG would infer 3 nodes from edge_index
    g = Data(edge_index=torch.tensor([[0, 2], [2, 0]]), names=["a", "b", "c", "d", "e"])
    assert HashtagPropagation(D, N, g).topo.n == N
    g = Data(edge_index=torch.tensor([[0, 2], [2, 0]]), names=["a", "b", "c"])
    with pytest.raises(V2HTError, match="3 nodes"):
        HashtagPropagation(D, N, g)


def test_graph_without_edges():
    g = Data(edge_index=torch.zeros(2, 0, dtype=torch.long), num_nodes=N)
    prop, emb = make(graph=g, alpha=0.2, layers=1)
    with torch.no_grad():
        assert torch.allclose(prop(emb), emb @ prop.layers[0].weight.t())


def test_underflowing_edge_weights_stay_finite():
    """softplus of a very negative score is exactly 0 in float32; a node whose
    every edge underflowed used to divide 0 by 0 in Eq. 5 and turn the model NaN."""
    prop, emb = make(alpha=0.2, layers=2)
    with torch.no_grad():
        prop.edge_weight.type_bias.fill_(-300.0)
        prop.edge_weight.prior_coef.zero_()
    emb.requires_grad_(True)
    out = prop(emb)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(emb.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in prop.parameters() if p.grad is not None)
    _, a1, _ = dense(prop, prop.matrices(emb.detach()))
    assert torch.allclose(a1.sum(1), torch.ones(N))  # rows of A' still sum to 1


def _reference_forward(prop, emb):
    """Eq. 7 from the per-directed-edge A^ of ``matrices``, through the
    general (non-symmetric) CSR product: what forward computed before it
    used the factored form."""
    m = prop.matrices(emb)
    t = prop.topo
    y = emb
    for i, lin in enumerate(prop.layers):
        x = lin(y)
        z = _CSRMatmul.apply(m["A_hat"], x, t.crow, t.cols, t.twin) + m["A_hat_self"].unsqueeze(1) * x
        y = torch.relu(z) if i < len(prop.layers) - 1 else z
    return y


@pytest.mark.parametrize("alpha", [0.2, 0.7])
def test_factored_forward_equals_the_per_edge_formula_with_its_gradients(alpha):
    prop, emb = make(alpha=alpha, layers=2, seed=3)
    target = torch.randn(N, D)
    grads = []
    for fn in (prop.forward, lambda e: _reference_forward(prop, e)):
        prop.zero_grad()
        e = emb.clone().requires_grad_(True)
        out = fn(e)
        ((out - target) ** 2).sum().backward()
        grads.append((out.detach(), e.grad.clone(), [p.grad.clone() for p in prop.parameters()]))
    (o1, g1, p1), (o2, g2, p2) = grads
    assert torch.allclose(o1, o2, atol=1e-5)
    assert torch.allclose(g1, g2, atol=1e-5)
    for a, b in zip(p1, p2):
        assert torch.allclose(a, b, atol=1e-5)
    assert any(a.abs().sum() > 0 for a in p1[:2])  # the projections do get a gradient


def test_symmetric_csr_matmul_gradcheck():
    prop, _ = make()
    t = prop.topo
    pair = torch.rand(t.n_pairs, dtype=torch.double, requires_grad=True)
    x = torch.randn(N, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda v, y: _CSRMatmul.apply(v.index_select(0, t.pair_of), y, t.crow, t.cols, None), (pair, x))


def test_row_sums_along_csr_rows_equal_the_sums_over_each_pairs_two_ends_with_their_gradient():
    # node 7 of the star graph below has no pair: its sum is 0, not a neighbour's
    g = undirected([(0, 1), (0, 2), (1, 2), (2, 5), (3, 4), (0, 6)], [0, 1, 3, 3, 2, 3], [1.0] * 6, 8)
    t = HashtagPropagation(D, 8, g, edge_hidden=3).topo
    pair = torch.rand(t.n_pairs, dtype=torch.double, requires_grad=True)
    got = _RowSums.apply(pair, pair.detach().index_select(0, t.pair_of), t)
    want = torch.zeros(8, dtype=torch.double).index_add(0, t.pair_lo, pair).index_add(0, t.pair_hi, pair)
    at_0 = (t.pair_lo == 0) | (t.pair_hi == 0)
    assert int(at_0.sum()) == 3 and torch.allclose(got[0], pair[at_0].sum())
    assert torch.allclose(got, want) and got[7] == 0
    assert torch.autograd.gradcheck(lambda v: _RowSums.apply(v, v.detach().index_select(0, t.pair_of), t), (pair,))


def test_co_max_neighbours_keeps_each_ends_strongest_co_pairs_and_every_semantic_pair():
    # a star of co pairs around node 0 with rising priors, one co pair 5-6, and an ss pair 0-7
    pairs = [(0, j) for j in range(1, 5)] + [(5, 6), (0, 7)]
    types = [3, 3, 3, 3, 3, 1]  # RELATIONS: cp, ss, po, co
    priors = [0.1, 0.2, 0.3, 0.4, 0.05, 0.01]
    g = undirected(pairs, types, priors, 8)
    full = HashtagPropagation(D, 8, g, edge_hidden=3).topo
    cut = HashtagPropagation(D, 8, g, edge_hidden=3, co_max_neighbours=2).topo
    assert full.n_pairs == 6
    kept = {(int(a), int(b)) for a, b in zip(cut.pair_lo, cut.pair_hi)}
    # node 0 keeps its 2 strongest co pairs (0-4, 0-3); 0-1 and 0-2 survive because they
    # are among the 2 strongest of nodes 1 and 2 (their only pair); 5-6 likewise; ss is kept
    assert kept == set(pairs)
    cut1 = HashtagPropagation(D, 8, g, edge_hidden=3, co_max_neighbours=1).topo
    kept1 = {(int(a), int(b)) for a, b in zip(cut1.pair_lo, cut1.pair_hi)}
    assert kept1 == set(pairs)  # every leaf keeps its single pair
    # a second hub makes a pair that neither end ranks first
    pairs2 = [(0, 1), (0, 2), (1, 3), (1, 4)]
    g2 = undirected(pairs2, [3] * 4, [0.1, 0.9, 0.2, 0.8], 5)
    cut2 = HashtagPropagation(D, 5, g2, edge_hidden=3, co_max_neighbours=1)
    kept2 = {(int(a), int(b)) for a, b in zip(cut2.topo.pair_lo, cut2.topo.pair_hi)}
    # node 0 ranks 0-2 first and node 1 ranks 1-4 first, so 0-1 goes; 1-3 is node 3's only pair
    assert kept2 == {(0, 2), (1, 4), (1, 3)}
    ex = cut2.explain(torch.randn(5, D))
    ends = g2.edge_index.sort(0).values
    pruned = (ends[0] == 0) & (ends[1] == 1)  # both directions
    assert torch.isnan(ex["A"][pruned]).all() and not torch.isnan(ex["A"][~pruned]).any()
    out = cut2(torch.randn(5, D))
    assert out.shape == (5, D) and torch.isfinite(out).all()
