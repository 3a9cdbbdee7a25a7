"""Hashtag embedding propagation over the typed hashtag graph (paper §3.2, Eqs. 3-7).

Design decisions (the paper leaves them open):

* Learned weight, Eq. 4: per relation type t,
  ``A_ab = softplus((<P_t e_a, Q_t e_b> + <Q_t e_a, P_t e_b>) / sqrt(k) + b_t + c_t * prior_ab)``
  with P_t, Q_t: d_D -> k (``edge_hidden``) and ``prior_ab`` the edge's prior
  strength (``graph.edge_weight``). The bilinear form is symmetrised, so A is
  symmetric like the undirected graph it weights; it is computed once per
  undirected pair and read by both directions. The factored form costs small
  per-node projections plus one sampled dense-dense product (SDDMM) per type
  over the pairs of that type, not an MLP per edge and no (pairs, k) gathered
  copies. softplus, plus a floor of 1e-12 (``A_FLOOR``) against float32
  underflow, keeps every weight positive, so the row sums of Eq. 5 never
  vanish. A depends on the initial embeddings e(h) (Eq. 4), so it
  is computed once per forward pass and shared by all layers.
* Eq. 5 re-weighting: A'_ab = alpha * A_ab / sum_b A_ab, A'_aa = 1 - alpha.
  A node without neighbours keeps A'_aa = 1: its row then sums to 1 like
  every other row. Because every row of A' sums to 1, D~ of Eq. 7 is the
  identity and the symmetric normalisation changes nothing; it is still
  computed (it costs one scatter over the edges) so the code follows Eq. 7
  literally and stays right if Eq. 5 is ever changed.
* Eq. 7 layers: Y^{l+1} = h(A^ Y^l W^l) without bias; ReLU on hidden layers,
  no activation on the last one (e'(h) feeds element-wise products and a
  dot product, so it must be able to take negative values).
  ``gcn_residual`` optionally adds e(h) to the output (off by default).
  W^l starts Gaussian (paper §4.3) with variance 1/d, which preserves the
  embeddings' scale through the layers.
* Speed: A^ Y is a CSR sparse-dense product. Its backward pass uses the
  transposed matrix (the pattern is symmetric, so only the values are
  permuted) and a sampled dense-dense product (SDDMM) for the gradient of the
  edge values, instead of autograd through sparse values (slow on CPU).
  Both products run as C loops (native.py, csr.c) where a probe finds
  them bit-identical to torch's, which they replace: the same sums in the
  same order, with the randomly gathered rows prefetched (propagation
  forward and backward 1.3-1.5x at INSVIDEO size).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..kg.errors import V2HTError
from . import native
from .node_linear import node_linear

A_FLOOR = 1e-12  # added to every learned edge weight A (see EdgeWeight.forward)


def _spmm(crow32: torch.Tensor, col32: torch.Tensor, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # The C loop where native.py found it bit-identical to torch's (2.2x here),
    # else torch with int32 indices: with int64 ones the CPU kernel converts both
    # index arrays on every call (two copies of the 3.6M columns at INSVIDEO size,
    # 1.4x the product's time).
    out = native.csr_spmm(crow32, col32, values, x)
    return out if out is not None else native.torch_spmm(crow32, col32, values, x)


def _sddmm(crow: torch.Tensor, col: torch.Tensor, crow32: torch.Tensor, col32: torch.Tensor, u: torch.Tensor,
           v: torch.Tensor) -> torch.Tensor:
    """<u[row_k], v[col_k]> at every entry k of the pattern: the C loop where
    native.py found it bit-identical to torch's (2x here), else torch's with
    int64 indices, its faster form."""
    out = native.csr_sddmm(crow32, col32, u, v)
    return out if out is not None else native.torch_sddmm(crow, col, u, v)


class _CSRMatmul(torch.autograd.Function):
    """out = S @ x for S given by CSR (crow, col, values), differentiable in
    values and x; crow32/col32 are the same indices as int32. ``twin`` (entry
    k of S^T is entry twin[k] of S) serves the backward product; None says S
    is symmetric (values[k] == values[twin[k]]), so S^T = S and the backward
    pass needs no permuted copy of the values."""

    @staticmethod
    def forward(ctx, values, x, crow, col, twin, crow32=None, col32=None):
        if crow32 is None:
            crow32, col32 = crow.int(), col.int()
        ctx.save_for_backward(values, x, crow, col, twin, crow32, col32)
        return _spmm(crow32, col32, values, x)

    @staticmethod
    def backward(ctx, grad):
        values, x, crow, col, twin, crow32, col32 = ctx.saved_tensors
        grad = grad.contiguous()
        g_values = g_x = None
        if ctx.needs_input_grad[0]:
            g_values = _sddmm(crow, col, crow32, col32, grad, x)
        if ctx.needs_input_grad[1]:
            # S^T has the same (symmetric) pattern; entry k of S^T is entry twin[k] of S.
            g_x = _spmm(crow32, col32, values if twin is None else values[twin], grad)
        return g_values, g_x, None, None, None, None, None


class _RowSums(torch.autograd.Function):
    """sum_b A_ab for every node a, A per unordered pair (``a_dir``: its
    directed CSR copy, without gradient): one sequential pass along the CSR
    rows (segment sums) instead of two scattered index_add over the pairs'
    two ends (2.1 against 10.9 ms at INSVIDEO size). A row's sum runs in
    CSR order, by column. The gradient goes straight to the pairs."""

    @staticmethod
    def forward(ctx, a_pair, a_dir, topo):
        ctx.topo = topo
        return torch.segment_reduce(a_dir, "sum", offsets=topo.crow)

    @staticmethod
    def backward(ctx, grad):
        topo = ctx.topo
        return grad.index_select(0, topo.pair_lo) + grad.index_select(0, topo.pair_hi), None, None


class _PairDots(torch.autograd.Function):
    """s_k = <u[row_k], v[col_k]> over a CSR pattern (SDDMM), without materialising
    the (pairs, k) gathered rows; the backward pass is two sparse-dense products."""

    @staticmethod
    def forward(ctx, u, v, crow, col, crow_t, col_t, perm_t, idx32=None):
        """``idx32``: (crow, col, crow_t, col_t) as int32 for the backward products."""
        if idx32 is None:
            idx32 = tuple(t.int() for t in (crow, col, crow_t, col_t))
        ctx.save_for_backward(u, v, crow, col, crow_t, col_t, perm_t, *idx32)
        return _sddmm(crow, col, idx32[0], idx32[1], u, v)

    @staticmethod
    def backward(ctx, grad):
        u, v, crow, col, crow_t, col_t, perm_t, crow32, col32, crow_t32, col_t32 = ctx.saved_tensors
        g_u = _spmm(crow32, col32, grad, v) if ctx.needs_input_grad[0] else None
        # index_select, not grad[perm_t]: the same gather, 3x faster for 1.75M entries here
        g_v = _spmm(crow_t32, col_t32, grad.index_select(0, perm_t), u) if ctx.needs_input_grad[1] else None
        return g_u, g_v, None, None, None, None, None, None


class GraphTopology(nn.Module):
    """The hashtag graph in the index forms propagation needs (buffers, not saved)."""

    def __init__(self, graph, n_nodes: int, n_edge_types: int, co_max_neighbours: int | None = None):
        super().__init__()
        ei = getattr(graph, "edge_index", None)
        if ei is None or ei.dim() != 2 or ei.shape[0] != 2:
            raise V2HTError("the hashtag graph has no edge_index of shape (2, E)")
        ei = ei.long()
        n_e = ei.shape[1]
        et = getattr(graph, "edge_type", None)
        et = torch.zeros(n_e, dtype=torch.long) if et is None else et.long().reshape(-1)
        ew = getattr(graph, "edge_weight", None)
        ew = torch.ones(n_e) if ew is None else ew.float().reshape(-1)
        if et.numel() != n_e or ew.numel() != n_e:
            raise V2HTError(f"graph edge_type/edge_weight length differ from its {n_e} edges")
        if n_e and (ei.min() < 0 or ei.max() >= n_nodes):
            raise V2HTError(f"graph edge_index refers to nodes outside 0..{n_nodes - 1}")
        if n_e and (et.min() < 0 or et.max() >= n_edge_types):
            raise V2HTError(f"graph edge_type outside 0..{n_edge_types - 1}")
        # PyG infers num_nodes from edge_index when it is not stored (wrong when the
        # last hashtags are isolated), so only stored counts and names are checked
        stored = {k: graph[k] for k in ("num_nodes", "names") if k in graph}
        g_nodes = stored.get("num_nodes", len(stored["names"]) if "names" in stored else None)
        if g_nodes is not None and int(g_nodes) != n_nodes:
            raise V2HTError(f"the graph has {g_nodes} nodes but the model {n_nodes} hashtags; "
                            "build the graph from the same prepared data set")
        self.n = n_nodes
        src, dst = ei[0], ei[1]
        lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
        keep = lo != hi  # self loops come from Eq. 5, not from the graph
        key = lo[keep] * n_nodes + hi[keep]
        pair_key, inverse = torch.unique(key, return_inverse=True)
        n_pairs = pair_key.numel()
        # one type/prior per unordered pair (the export writes both directions alike)
        p_type = torch.zeros(n_pairs, dtype=torch.long).scatter_(0, inverse, et[keep])
        p_prior = torch.zeros(n_pairs).scatter_(0, inverse, ew[keep])
        p_lo, p_hi = pair_key // n_nodes, pair_key % n_nodes
        if co_max_neighbours is not None:
            keep_p = self._strongest_co(p_lo, p_hi, p_type, p_prior, n_nodes, int(co_max_neighbours))
            p_lo, p_hi, p_type, p_prior = p_lo[keep_p], p_hi[keep_p], p_type[keep_p], p_prior[keep_p]
            n_pairs = int(keep_p.sum())
        # pairs grouped by type, each group in CSR order (by lo, then hi), for _PairDots
        by_type = torch.sort(p_type, stable=True).indices
        p_lo, p_hi, p_type, p_prior = p_lo[by_type], p_hi[by_type], p_type[by_type], p_prior[by_type]
        type_counts = torch.bincount(p_type, minlength=n_edge_types)
        self.type_slices = []
        start = 0
        for t in range(n_edge_types):
            end = start + int(type_counts[t])
            self.type_slices.append((start, end))
            lo_t, hi_t = p_lo[start:end], p_hi[start:end]
            perm_t = torch.argsort(hi_t * n_nodes + lo_t)
            idx = dict(crow=self._crow(lo_t, n_nodes), col=hi_t, crow_t=self._crow(hi_t, n_nodes),
                       col_t=lo_t[perm_t])
            for name, tensor in (*idx.items(), *((f"{k}32", v.int()) for k, v in idx.items()),
                                 ("perm_t", perm_t)):
                self.register_buffer(f"t{t}_{name}", tensor.contiguous(), persistent=False)
            start = end
        # directed edges in CSR (row-major) order, each pointing at its pair
        rows = torch.cat([p_lo, p_hi])
        cols = torch.cat([p_hi, p_lo])
        pair_of = torch.cat([torch.arange(n_pairs), torch.arange(n_pairs)])
        dkey = rows * n_nodes + cols
        dkey, order = torch.sort(dkey)
        rows, cols, pair_of = rows[order], cols[order], pair_of[order]
        twin = torch.searchsorted(dkey, cols * n_nodes + rows)
        counts = torch.bincount(rows, minlength=n_nodes)
        crow = self._crow(rows, n_nodes)
        # position of every input edge in CSR order (-1 for input self loops)
        in_pos = torch.full((n_e,), -1, dtype=torch.long)
        if n_e:
            nz = src != dst
            want = src[nz] * n_nodes + dst[nz]
            pos = torch.searchsorted(dkey, want).clamp_max(max(dkey.numel() - 1, 0))
            found = dkey[pos] == want if dkey.numel() else torch.zeros_like(want, dtype=torch.bool)
            in_pos[nz] = torch.where(found, pos, torch.full_like(pos, -1))  # -1: pruned by co_max_neighbours
        for name, t in dict(pair_lo=p_lo, pair_hi=p_hi, pair_type=p_type, pair_prior=p_prior,
                            rows=rows, cols=cols, pair_of=pair_of, twin=twin, crow=crow,
                            crow32=crow.int(), cols32=cols.int(),
                            has_neighbours=counts > 0, input_pos=in_pos,
                            input_edge_index=ei).items():
            self.register_buffer(name, t, persistent=False)

    @staticmethod
    def _strongest_co(lo, hi, typ, prior, n: int, m: int) -> torch.Tensor:
        """Pairs to keep: every non-co pair, and a co pair when it is among the
        ``m`` strongest co pairs (by prior) of either end; ties by pair order."""
        from ..kg.schema import RELATIONS

        is_co = typ == RELATIONS.index("co")
        keep = ~is_co
        ids = torch.nonzero(is_co).squeeze(1)
        node = torch.cat([lo[ids], hi[ids]])
        pid = torch.cat([ids, ids])
        o1 = torch.argsort(-prior[pid], stable=True)
        order = o1[torch.argsort(node[o1], stable=True)]  # by node, then strongest first
        sn = node[order]
        rank = torch.arange(sn.numel()) - GraphTopology._crow(sn, n)[sn]  # position inside the node's run
        keep[pid[order][rank < m]] = True
        return keep

    @staticmethod
    def _crow(sorted_rows: torch.Tensor, n: int) -> torch.Tensor:
        crow = torch.zeros(n + 1, dtype=torch.long)
        crow[1:] = torch.cumsum(torch.bincount(sorted_rows, minlength=n), 0)
        return crow

    def type_pattern(self, t: int) -> tuple:
        """_PairDots' pattern arguments for type t: the int64 indices, perm_t, their int32 copies."""
        get = lambda x: getattr(self, f"t{t}_{x}")  # noqa: E731
        return (*(get(x) for x in ("crow", "col", "crow_t", "col_t", "perm_t")),
                tuple(get(x + "32") for x in ("crow", "col", "crow_t", "col_t")))

    @property
    def n_pairs(self) -> int:
        return int(self.pair_lo.numel())

    @property
    def n_directed(self) -> int:
        return int(self.rows.numel())


class EdgeWeight(nn.Module):
    """f_weight of Eq. 4 in factored form; returns A for every unordered pair."""

    def __init__(self, d: int, n_types: int, hidden: int):
        super().__init__()
        self.n_types, self.hidden = n_types, hidden
        self.p = nn.Linear(d, n_types * hidden, bias=False)
        self.q = nn.Linear(d, n_types * hidden, bias=False)
        self.type_bias = nn.Parameter(torch.zeros(n_types))
        self.prior_coef = nn.Parameter(torch.ones(n_types))

    def forward(self, emb: torch.Tensor, topo: GraphTopology) -> torch.Tensor:
        k, n_t = self.hidden, self.n_types
        # [P|Q]_a . [Q|P]_b = <P e_a, Q e_b> + <Q e_a, P e_b>, one SDDMM per type. Every
        # type's P e and Q e come from ONE product (rows P_0, Q_0, P_1, Q_1, ...): 16 small
        # products a step (forward and backward) were a third of a learned step on a
        # sparse graph. split's backward is one cat and cat's are views, so no
        # full-size zero fill per slice.
        w = torch.stack([self.p.weight.view(n_t, k, -1), self.q.weight.view(n_t, k, -1)], 1).reshape(2 * n_t * k, -1)
        chunks = node_linear(emb.contiguous(), w.contiguous()).split(k, dim=1)
        parts = []
        for t, (start, end) in enumerate(topo.type_slices):
            if end > start:
                p_t, q_t = chunks[2 * t], chunks[2 * t + 1]
                s = _PairDots.apply(torch.cat([p_t, q_t], 1), torch.cat([q_t, p_t], 1), *topo.type_pattern(t))
                # the type's bias and prior coefficient as scalars on its slice of pairs: a
                # (pairs, types) one-hot matrix times them (the same values) cost four
                # matrix-vector products over every pair a step, 13% of an INSVIDEO step
                parts.append(s / math.sqrt(k) + self.type_bias[t] + self.prior_coef[t] * topo.pair_prior[start:end])
        a = F.softplus(torch.cat(parts) if parts else emb.new_zeros(0))
        # softplus underflows to exactly 0 below about -100 in float32; a node whose every
        # edge did so divided 0 by 0 in Eq. 5 (seen after 3 epochs on twitter-2013)
        return a + A_FLOOR


class HashtagPropagation(nn.Module):
    """Maps initial hashtag embeddings e(h) (H, d) to e'(h) (H, d) by Eqs. 4-7."""

    def __init__(self, d: int, n_nodes: int, graph, *, alpha: float = 0.2, layers: int = 2,
                 n_edge_types: int = 4, edge_hidden: int = 16, residual: bool = False,
                 co_max_neighbours: int | None = None):
        super().__init__()
        self.alpha = float(alpha)
        self.residual = residual
        self.topo = GraphTopology(graph, n_nodes, n_edge_types, co_max_neighbours)
        self.edge_weight = EdgeWeight(d, n_edge_types, edge_hidden)
        self.layers = nn.ModuleList(nn.Linear(d, d, bias=False) for _ in range(layers))
        for lin in self.layers:
            # Gaussian with variance 1/d keeps e'(h) at the scale of e(h); torch's default
            # (uniform, variance 1/(3d)) shrank it about 4x over two layers, which starved
            # the Bi-Interaction products of signal and slowed early training.
            nn.init.normal_(lin.weight, 0.0, d ** -0.5)

    def factors(self, emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Eqs. 4-7 as per-pair A and per-node vectors: (A, A's directed CSR
        copy, scale, A'_self, D~^-1/2) with A'_ab = scale_a * A_ab (scale = alpha / rowsum(A)) and
        A^_ab = D~^-1/2_a A'_ab D~^-1/2_b. Nothing per directed edge is built:
        forward applies A^ in this factored form, ``matrices`` expands it."""
        topo = self.topo
        a_pair = self.edge_weight(emb, topo)
        n = topo.n
        a_dir = a_pair.index_select(0, topo.pair_of)
        row_sum = _RowSums.apply(a_pair, a_dir.detach(), topo)
        has = topo.has_neighbours
        ones = torch.ones(n, dtype=a_pair.dtype, device=a_pair.device)
        scale = torch.where(has, self.alpha / torch.where(has, row_sum, ones), torch.zeros_like(ones))
        a1_self = torch.where(has, ones * (1.0 - self.alpha), ones)
        # D~_ii of Eq. 7. Every row of A' sums to 1 whatever A is, so D~ = I and its
        # derivative in A is exactly 0: it is computed without autograd.
        with torch.no_grad():
            d_is = (a1_self + scale * row_sum).clamp_min(1e-12).rsqrt()
        return a_pair, a_dir, scale, a1_self, d_is

    def matrices(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """A (per pair), A' and A^ (per directed edge in CSR order, and per node for the diagonal)."""
        topo = self.topo
        a_pair, a_dir, scale, a1_self, d_is = self.factors(emb)
        a1_off = scale.index_select(0, topo.rows) * a_dir
        hat_off = d_is.index_select(0, topo.rows) * a1_off * d_is.index_select(0, topo.cols)
        return dict(A=a_pair, A_prime=a1_off, A_prime_self=a1_self, A_hat=hat_off, A_hat_self=d_is * a1_self * d_is)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        topo = self.topo
        a_pair, a_dir, scale, a1_self, d_is = self.factors(emb)
        # A^ x = left * (A (right * x)) + diag * x, A symmetric (entry k = entry twin[k])
        left, right, diag = d_is * scale, d_is, d_is * a1_self * d_is
        y = emb
        for i, lin in enumerate(self.layers):
            x = node_linear(y.contiguous(), lin.weight)
            if topo.n_directed:
                z = left.unsqueeze(1) * _CSRMatmul.apply(a_dir, right.unsqueeze(1) * x, topo.crow, topo.cols, None,
                                                         topo.crow32, topo.cols32)
                z = z + diag.unsqueeze(1) * x
            else:
                z = diag.unsqueeze(1) * x
            y = torch.relu(z) if i < len(self.layers) - 1 else z
        return y + emb if self.residual else y

    @torch.no_grad()
    def explain(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weights per edge of the input graph (its edge_index order) and per node."""
        m = self.matrices(emb)
        topo = self.topo
        pos = topo.input_pos
        valid = pos >= 0
        safe = pos.clamp_min(0)

        def per_input(v: torch.Tensor) -> torch.Tensor:
            return torch.where(valid, v[safe], torch.full_like(v[safe], float("nan")))

        return {
            "edge_index": topo.input_edge_index,
            "A": per_input(m["A"][topo.pair_of]),
            "A_prime": per_input(m["A_prime"]),
            "A_hat": per_input(m["A_hat"]),
            "self_A_prime": m["A_prime_self"],
            "self_A_hat": m["A_hat_self"],
        }
