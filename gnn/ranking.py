"""Ranking hashtags with a trained V2HT model: the exact full rank, exact
scores of given candidates, and two-stage recommendation for serving.

Exact scoring is per (post, hashtag) pair under the paper's
hashtag-conditioned attention (Eq. 9), so its cost is H pairs a post. Both
exact paths run the same per-tile kernel (``PairKernel``): the pooled vector
from the post's segment tables (encoders.py), the Bi-Interaction of Eq. 14
written in place (both by one C loop where native.py has one, by torch ops
otherwise, with the same bits), and the MLP of Eqs. 15-16, in buffers
allocated once per call. With AVX-512 the hidden layers of Eq. 15 run in
that C loop too (native_mlp.py: p0 never leaves a thread's cache), again
with torch's bits (bfloat16: on AMX tiles where the CPU has them, the same
bits as oneDNN's GEMMs there; elsewhere VDPBF16PS, but for rare
near-ties); the logit layer is torch's in float32 and the loop's in
bfloat16. p0 is float32 either way, rounded once for a bfloat16 MLP.
The full rank gives it tiles of hashtags shared by every post; the rerank
gives it each post's own candidates. Same arithmetic, so two stages with
N = H return the exact full rank's top k.

Two stages (``two_stage``), for serving:

1. Retrieval. The MLP is linearised per post: g = the mean gradient of the
   logit with respect to p0 over reference pairs (the post with a fixed
   sample of ``REFERENCE`` hashtags, the same for every post, so a post's
   result does not depend on its batch), and e~_m(h) is frozen at its mean
   over the same pairs. Eq. 14 then makes the logit, up to a constant,
   q . e'(h) with q = sum_m g_m * (mean e~_m + e(u)): one matrix product
   over all hashtags. With the user module, half the reference pairs are
   the author's most used tags, and those tags (up to N / ``HISTORY_SHARE``)
   are candidates too: on an INSVIDEO-sized model 80% of what the linear
   scores missed were the author's own tags, and a gradient taken at them
   lifted the top-10 agreement at N = 250 from 0.95 to 0.997. (A second
   pass linearised at the first pass's top hashtags was tried and lost
   agreement there.)
2. Rerank. The exact model scores only those N; the top k of them is the
   answer.

The linearisation is only a filter: every returned score is exact. How
often its top k equals the exact one is measured on each trained model
(``agreement``; the trainer records it in metrics.json), not assumed.
"""
from __future__ import annotations

import dataclasses
import math
from functools import cached_property, lru_cache

import torch
from torch import nn

from . import native, native_mlp
from .encoders import ModalityEncoder
from .native_mlp import _ONEDNN, onednn_linear  # noqa: F401  (tests and benches patch them here)

# (post, hashtag) pairs per tile; bounds the (pairs, d) temporaries and keeps
# them in cache (8k pairs: 1.5x faster than 128k here)
PAIRS_PER_STEP = 1 << 13
# ... and with the hidden layers fused in (native_mlp), where p0 never leaves a
# thread's cache: larger tiles only save calls (8k -> 32k pairs: 67% -> 79% of
# the fp32 FLOP bound, 39% -> 71% of the bf16 one, bench_model)
MLP_PAIRS_PER_STEP = 1 << 15
# ... and for torch's bfloat16 GEMMs on AMX, for widths the loop's AMX tiles
# do not take (native_mlp.wanted): 8k -> 32k pairs 489 -> 712 posts/s, 128k 431
# (bench_model's full rank)
BF16_PAIRS_PER_STEP = 1 << 15
FUSED_PAIRS = 1 << 14  # the compiled kernel's best tile here
REFERENCE = 32  # pairs the first pass linearises at
HISTORY_SHARE = 5  # at most N / 5 candidates are the author's own most used tags
_REF_SEED = 0


def _tile_math(yds: list, rows: list, lams: list, e_h: torch.Tensor, e_u: torch.Tensor | None,
               weights: list) -> torch.Tensor:
    """PairKernel.logits' arithmetic as one function of tensors, for torch.compile:
    the gathers, blends and Bi-Interaction fuse into one loop that writes p0."""
    d = e_h.shape[-1]
    parts = []
    for yd, r, lam in zip(yds, rows, lams):
        y = yd[r]
        et = y[..., :d] + lam.unsqueeze(-1) * y[..., d:]
        parts.append(et * e_h if e_u is None else et * (e_h + e_u) + e_h * e_u)
    x = torch.cat(parts, -1).flatten(0, 1).to(weights[0][0].dtype)
    for w, bias in weights[:-1]:
        x = torch.relu(x @ w if bias is None else torch.addmm(bias, x, w))
    w, bias = weights[-1]
    logit = (x @ w).view(rows[0].shape)
    return logit if bias is None else logit + bias


_FUSED: dict = {}
def compile_wanted() -> bool:
    """V2HT_COMPILE=1 asks evaluations to use the compiled kernel. Off by default:
    it was 1.1-1.6x faster than the torch-ops kernel for a three-modality
    model and 4x slower for a text-only one, after a compile of 5-30 s; the
    eager kernel with the C tile input (native.py) runs the bench's
    three-modality model about 2x faster than it (docs/benchmarks.md)."""
    import os

    return os.environ.get("V2HT_COMPILE", "0") == "1"


def _fused():
    """The compiled tile function, or None where torch.compile is unavailable."""
    if "fn" not in _FUSED:
        on = hasattr(torch, "compile")
        _FUSED["fn"] = torch.compile(_tile_math, dynamic=False) if on else None
    return _FUSED["fn"]


def _n_posts(post) -> int:
    return post.user.shape[0] if post.user is not None else next(iter(post.modalities.values())).a.shape[0]


class PairKernel:
    """Exact logits of tiles of (post, hashtag) pairs for one batch of encoded posts."""

    def __init__(self, model, post, side, tile: int, *, bf16: bool = False, c_order: dict | None = None):
        emb, c = side
        self.c_order = c_order or {}  # argsort of each c_m, where the caller keeps it
        # the MLP's dtype; p0 is built in float32 either way and, for
        # bfloat16, rounded once (closer to float32 than bfloat16 op by op,
        # and faster: no rounding per op)
        self.dt = dt = torch.bfloat16 if bf16 else torch.float32
        self.mods = model.cfg.modalities
        self.d = d = model.cfg.d_hashtag
        self.c = c
        self.emb = emb.float()
        b = self.b = _n_posts(post)
        tables = {m: ModalityEncoder.segment_tables(post.modalities[m]) for m in self.mods}
        self.tables = {m: dataclasses.replace(t, yd=t.yd.float()) for m, t in tables.items()}
        self.e_u = post.user.float().unsqueeze(1) if post.user is not None else None
        linears = [mod for mod in model.mlp if isinstance(mod, nn.Linear)]
        self.weights = [(lin.weight.to(dt).t(), None if lin.bias is None else lin.bias.to(dt)) for lin in linears]
        self.weights_oi = [w.t() for w, _ in self.weights]  # (out, in), contiguous: onednn_linear's layout
        dev = emb.device

        def buffer(*tail: int, dtype=torch.float32) -> torch.Tensor:
            return torch.empty(b * tile * math.prod(tail), dtype=dtype, device=dev)

        self.bufs = {"g": buffer(d), "hu": buffer(d), "yd": buffer(2 * d), "e": buffer(d),
                     "eh": buffer(d), "p0": buffer(len(self.mods) * d), "logit": buffer()}
        if dt != torch.float32:
            self.bufs["p0_mlp"] = buffer(len(self.mods) * d, dtype=dt)
        self.hidden = [buffer(w.shape[1], dtype=dt) for w, _ in self.weights[:-1]]
        # the hidden layers fused with p0 (pair_mlp.c), where it reproduces these ops
        fused = dev.type == "cpu" and _fuses(model, dt)
        self.packed = native_mlp.layers(self.weights[:-1], dt) if fused else None
        # bfloat16: the logit layer too, its weights packed once for every tile
        self.logit = native_mlp.logit_layer(*self.weights[-1]) if fused and dt == torch.bfloat16 else None

    def _view(self, name: str, n: int, *tail: int) -> torch.Tensor:
        return self.bufs[name][:self.b * n * math.prod(tail)].view(self.b, n, *tail)

    def _buf(self, name: str, *shape: int) -> torch.Tensor:
        return self.bufs[name][:math.prod(shape)].view(shape)

    @cached_property
    def step_counts(self) -> list | None:
        """Each modality's native.step_counts over every hashtag, for tiles of
        shared hashtags (the full rank); None where the C loop will not run."""
        if self.emb.device.type != "cpu" or not native.available():
            return None
        return [native.step_counts(self.tables[m], self.c[m].float(), self.c_order.get(m)) for m in self.mods]

    def logits(self, ids: slice | torch.Tensor, into: torch.Tensor | None = None) -> torch.Tensor:
        """(B, n) logits for a slice of hashtags shared by every post, or ids (B, n) per post;
        written into ``into`` (B, n) where the kernel can write there in place (then
        ``into`` is returned), else into a buffer of the kernel's, which the next
        call overwrites."""
        b, d = self.b, self.d
        if isinstance(ids, slice):
            e_h = self.emb[ids].unsqueeze(0)  # a view: no copy
            n = e_h.shape[1]
        else:
            n = ids.shape[1]
            e_h = torch.index_select(self.emb, 0, ids.reshape(-1),
                                     out=self.bufs["eh"][:b * n * d].view(-1, d)).view(b, n, d)
        tables, cs = [self.tables[m] for m in self.mods], [self.c[m][ids] for m in self.mods]
        ks = self.step_counts if isinstance(ids, slice) else None
        ks = None if ks is None else [k[:, ids] for k in ks]
        if self.packed is not None:  # p0 and Eq. 15 in one C loop (bfloat16: Eq. 16 too)
            if self.logit is not None:
                out = into if into is not None else self.bufs["logit"][:b * n].view(b, n)
                if native_mlp.pair_mlp(tables, cs, e_h, self.e_u, self.packed, out, ks, self.logit) is not None:
                    return out
            width = self.weights[-2][0].shape[1]
            x = self.hidden[-1][:b * n * width].view(b, n, width)
            if native_mlp.pair_mlp(tables, cs, e_h, self.e_u, self.packed, x, ks) is not None:
                return self._logit(x.view(b * n, width), b, n)
        width0 = len(self.mods) * d
        x = None
        if self.dt != torch.float32:  # the C loop rounds p0 as it writes it
            x = native.pair_input(tables, cs, e_h, self.e_u, self._buf("p0_mlp", b, n, width0), ks)
        if x is None:
            p0 = self._view("p0", n, width0)
            if native.pair_input(tables, cs, e_h, self.e_u, p0, ks) is None:  # the C loop, else torch ops
                native.eager_input(tables, cs, e_h, self.e_u, p0, buf=self._buf)
            x = p0 if self.dt == torch.float32 else self._buf("p0_mlp", b, n, width0).copy_(p0)
        x = x.view(b * n, -1)
        for (w, bias), w_oi, hb in zip(self.weights[:-1], self.weights_oi, self.hidden):  # Eq. 15
            y = onednn_linear(x, w_oi, bias, relu=True)
            if y is None:
                y = hb[:b * n * w.shape[1]].view(b * n, w.shape[1])
                if bias is None:
                    torch.mm(x, w, out=y)
                else:
                    torch.addmm(bias, x, w, out=y)
                y.relu_()
            x = y
        return self._logit(x, b, n)

    def _logit(self, x: torch.Tensor, b: int, n: int) -> torch.Tensor:
        return native_mlp.torch_logit(x, *self.weights[-1]).view(b, n)  # Eq. 16

    def fused_logits(self, ids: slice | torch.Tensor) -> torch.Tensor | None:
        """logits(ids) through the compiled kernel; None if it cannot compile here
        (no C++ compiler, say): the caller falls back to ``logits``, for good."""
        fn = _fused()
        if fn is None:
            return None
        lookups = [ModalityEncoder.segment_lookup(self.tables[m], self.c[m][ids]) for m in self.mods]
        e_h = self.emb[ids].unsqueeze(0) if isinstance(ids, slice) else self.emb[ids]
        try:
            yds = [t.yd.reshape(-1, 2 * self.d) for t in self.tables.values()]
            out = fn(yds, [r for r, _ in lookups], [lam for _, lam in lookups], e_h, self.e_u,
                     self.weights)
        except Exception as e:  # torch's compile errors have no common base class
            import warnings

            warnings.warn(f"torch.compile of the ranking kernel failed ({type(e).__name__}); "
                          "ranking without it", RuntimeWarning, stacklevel=2)
            _FUSED["fn"] = None
            return None
        return out.float()


def _fuses(model, dtype: torch.dtype) -> bool:
    """Do the model's hidden layers run fused with p0 in pair_mlp.c for this
    dtype (native_mlp.wanted, at their widths)?"""
    linears = [lin for lin in model.mlp if isinstance(lin, nn.Linear)]
    return len(linears) > 1 and native_mlp.wanted(dtype, [(lin.weight.t(), None) for lin in linears[:-1]])


@dataclasses.dataclass(frozen=True)
class TileOrder:
    """The order the full rank takes the hashtags in: sorted by their
    attention score c under one modality, so that, for every post, that
    modality's step count k (and so the segment-table row each pair reads)
    only rises from one hashtag to the next, and a tile's pairs read a few
    neighbouring rows, not rows all over the post's table (bench_model's
    bfloat16 full rank: about 10% faster). Each pair's arithmetic is the same
    whatever its place, and so are its scores, but for the float32 logit
    layer: torch's one-column product sums a row by its place in the tile,
    which moves a few scores by their last bit (as the tile size always
    has)."""

    modality: str
    order: torch.Tensor  # (H,): the hashtag at each place
    place: torch.Tensor  # (1, H): each hashtag's place
    side: tuple  # (e'(h)[order], {m: c_m[order]})
    c_order: dict  # {m: argsort of side's c_m}, for native.step_counts


_ORDERS: dict = {}  # id(e'(h)) -> (what the order was made from, {modality: TileOrder}); a few sides
_MAX_ORDERS = 4


def _made_from(side) -> tuple:
    """What a TileOrder depends on: each tensor of the side, by identity and
    in-place version (a model without propagation hands out its embedding
    parameter itself, which training updates in place)."""
    import weakref

    emb, c = side
    return tuple((weakref.ref(t), t._version) for t in (emb, *c.values()))


def _still(made: tuple, side) -> bool:
    emb, c = side
    ts = (emb, *c.values())
    return len(made) == len(ts) and all(ref() is t and v == t._version for (ref, v), t in zip(made, ts))


def tile_order(post, side) -> TileOrder | None:
    """The full rank's TileOrder for these posts and this hashtag side (kept
    while the side's tensors live unchanged: the model caches its side
    across batches), sorted by the modality whose segment tables are
    longest; None without modalities."""
    emb, c = side
    mods = [m for m in c if m in post.modalities]
    if not mods:
        return None
    key = max(mods, key=lambda m: post.modalities[m].a.shape[1])
    made, by = _ORDERS.get(id(emb), (None, None))
    if made is None or not _still(made, side):
        _ORDERS.pop(id(emb), None)
        while len(_ORDERS) >= _MAX_ORDERS:
            _ORDERS.pop(next(iter(_ORDERS)))
        by = {}
        _ORDERS[id(emb)] = (_made_from(side), by)
    if key not in by:
        order = torch.argsort(c[key].float())
        cs = {m: v[order].contiguous() for m, v in c.items()}
        by[key] = TileOrder(key, order, torch.argsort(order).unsqueeze(0), (emb[order].contiguous(), cs),
                            {m: torch.argsort(v.float()) for m, v in cs.items()})
    return by[key]


def _tile(b: int, limit: int, chunk: int, per_step: int) -> int:
    return max(1, min(chunk, limit, per_step // max(b, 1)))


def _run_tiles(model, post, side, n: int, ids_of, *, chunk: int, bf16: bool, fused: bool,
               c_order: dict | None = None) -> torch.Tensor:
    """(B, n) logits, tile by tile; ``ids_of(start, stop)`` names the tile's
    hashtags (a slice shared by every post, or per-post ids). With ``fused``
    every tile has the same shape (the last one overlaps the one before), so
    one compile serves them all; a failed compile falls back to eager.
    ``c_order``: PairKernel's."""
    b = _n_posts(post)
    mlp = side[0].device.type == "cpu" and _fuses(model, torch.bfloat16 if bf16 else torch.float32)
    per_step = MLP_PAIRS_PER_STEP if mlp else BF16_PAIRS_PER_STEP if bf16 else PAIRS_PER_STEP
    step = max(1, min(n, FUSED_PAIRS // max(b, 1))) if fused else _tile(b, n, chunk, per_step)
    kernel = PairKernel(model, post, side, step, bf16=bf16, c_order=c_order)
    out = torch.empty(b, n, device=side[0].device)
    for s in range(0, n, step):
        if fused:
            start = min(s, n - step)
            got = kernel.fused_logits(ids_of(start, start + step))
            if got is not None:
                out[:, start:start + step] = got
                continue
            fused = False
        stop = min(s + step, n)
        got = kernel.logits(ids_of(s, stop), into=out[:, s:stop])
        if got.data_ptr() != out[:, s:stop].data_ptr():
            out[:, s:stop] = got
    return out


@torch.no_grad()
def score_all(model, batch, chunk: int = 4096, *, bf16: bool = False, fused: bool = False) -> torch.Tensor:
    """Logits (B, H) over every hashtag, in tiles of at most ``chunk`` hashtags.

    ``fused``: tiles through the torch.compile'd kernel (faster for some models,
    after a compile of seconds to half a minute per batch shape: worth it for a
    whole evaluation, not for one post)."""
    side = model._hashtag_side()
    post = model.encode_posts(batch, side)
    return _score_encoded(model, post, side, chunk=chunk, bf16=bf16, fused=fused)


def _score_encoded(model, post, side, *, chunk: int = 4096, bf16: bool = False, fused: bool = False) -> torch.Tensor:
    order = tile_order(post, side)
    if order is None:
        return _run_tiles(model, post, side, model.cfg.n_hashtags, slice, chunk=chunk, bf16=bf16, fused=fused)
    placed = _run_tiles(model, post, order.side, model.cfg.n_hashtags, slice, chunk=chunk, bf16=bf16,
                        fused=fused, c_order=order.c_order)
    return torch.gather(placed, 1, order.place.expand(placed.shape[0], -1))  # back to the hashtags' columns


@torch.no_grad()
def score_pairs(model, post, side, cand: torch.Tensor, *, bf16: bool = False, chunk: int = 4096,
                fused: bool = False) -> torch.Tensor:
    """Exact logits (B, N) of each post's own candidates cand (B, N); ``fused``
    as in score_all (for a long-lived server: the compile costs seconds)."""
    return _run_tiles(model, post, side, cand.shape[1], lambda a, z: cand[:, a:z].contiguous(),
                      chunk=chunk, bf16=bf16, fused=fused)


def _mlp_gradient(model, p0: torch.Tensor) -> torch.Tensor:
    """Mean over the S pairs of d logit / d p0: (B, S, W) -> (B, W). ReLU MLP, eval mode."""
    linears = [mod for mod in model.mlp if isinstance(mod, nn.Linear)]
    masks, x = [], p0
    for lin in linears[:-1]:
        z = lin(x)
        masks.append(z > 0)
        x = z.clamp_min(0)
    g = linears[-1].weight.expand(*x.shape[:-1], -1)
    for lin, mask in zip(reversed(linears[:-1]), reversed(masks)):
        g = (g * mask) @ lin.weight
    return g.mean(1)


def _linear_scores(model, post, side, ref: torch.Tensor) -> torch.Tensor:
    """Retrieval scores (B, H): the logit linearised at the pairs (post, ref[i])."""
    emb, c = side
    e_h = emb[ref]  # (B, S, d)
    e_u = post.user.unsqueeze(1) if post.user is not None else None
    tilde = [ModalityEncoder.pool(post.modalities[m], c[m][ref]) for m in model.cfg.modalities]
    if e_u is None:
        p0 = torch.cat([t * e_h for t in tilde], -1)
    else:
        p0 = torch.cat([t * (e_h + e_u) + e_h * e_u for t in tilde], -1)
    g = _mlp_gradient(model, p0)
    d = model.cfg.d_hashtag
    q = 0
    for i, t in enumerate(tilde):
        base = t.mean(1) if e_u is None else t.mean(1) + post.user
        q = q + g[:, i * d:(i + 1) * d] * base
    return q @ emb.T


@lru_cache(maxsize=8)
def _reference_cpu(h: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(_REF_SEED)
    return torch.randperm(h, generator=gen)[:min(REFERENCE, h)]


def _reference(h: int, device) -> torch.Tensor:
    return _reference_cpu(h).to(device)


@torch.no_grad()
def retrieve(model, post, side, n: int, exclude: torch.Tensor | None = None,
             history: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Candidate ids (B, n) of stage one, distinct per post: the author's
    ``history`` tags (ids, weights (B, L)) with the largest weights, up to
    n / HISTORY_SHARE of them, then the best of the linearised scores."""
    h = side[0].shape[0]
    ref = _reference(h, side[0].device).expand(_n_posts(post), -1)
    has_history = history is not None and history[0] is not None and history[0].numel() > 0
    if has_history:
        ids, w = history
        # half the reference pairs at the author's most used tags (random ones where
        # the history is shorter): the gradient is then taken where the top is.
        # Two top-k calls, not one prefix: with tied weights the two pick different
        # tags, and the measured agreement is this choice's.
        half = min(REFERENCE // 2, w.shape[1], ref.shape[1] // 2)
        own = w.topk(half, dim=1)
        rest = ref.shape[1] - half  # a post without history keeps the plain reference
        ref = torch.cat([ref[:, :rest], torch.where(own.values > 0, ids.gather(1, own.indices).long(), ref[:, rest:])], 1)
    scores = _linear_scores(model, post, side, ref)
    if has_history:
        top = w.topk(min(max(1, n // HISTORY_SHARE), w.shape[1]), dim=1)
        hit = torch.zeros_like(scores).scatter_add_(1, ids.gather(1, top.indices).long(), (top.values > 0).to(scores.dtype))
        scores = scores.masked_fill(hit > 0, float("inf"))
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("-inf"))
    return scores.topk(n, dim=1).indices


@torch.no_grad()
def two_stage(model, batch, k: int, n: int, *, exclude: torch.Tensor | None = None,
              bf16: bool = False, fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k (exact logits (B, k), ids (B, k)) among the n retrieved candidates;
    the exact full rank when n covers every hashtag."""
    side = model._hashtag_side()
    post = model.encode_posts(batch, side)
    return _two_stage_encoded(model, batch, post, side, k, n, exclude=exclude, bf16=bf16, fused=fused)


def _two_stage_encoded(model, batch, post, side, k: int, n: int, *, exclude: torch.Tensor | None = None,
                       bf16: bool = False, fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    h = model.cfg.n_hashtags
    k = min(k, h)
    ex = exclude.bool() if exclude is not None else None
    if n >= h:
        scores = _score_encoded(model, post, side, bf16=bf16, fused=fused)
        if ex is not None:
            scores = scores.masked_fill(ex, float("-inf"))
        return torch.topk(scores, k, dim=1)
    history = (batch.hist_ids, batch.hist_weights) if post.user is not None else None
    cand = retrieve(model, post, side, max(n, k), ex, history)
    exact = score_pairs(model, post, side, cand, bf16=bf16, fused=fused)
    if ex is not None:
        exact = exact.masked_fill(ex.gather(1, cand), float("-inf"))
    top, pos = torch.topk(exact, k, dim=1)
    return top, cand.gather(1, pos)


@torch.no_grad()
def agreements(model, batches, ns, k: int = 10) -> dict[int, float]:
    """{n: share of the exact full rank's top-k slots that two stages with n
    candidates return}, the exact rank computed once per batch."""
    hit = {n: 0 for n in ns}
    total = 0
    side = model._hashtag_side()
    for batch in batches:
        post = model.encode_posts(batch, side)
        exact = torch.topk(_score_encoded(model, post, side), min(k, model.cfg.n_hashtags), dim=1).indices.tolist()
        total += sum(len(a) for a in exact)
        for n in ns:
            _, fast = _two_stage_encoded(model, batch, post, side, k, n)
            hit[n] += sum(len(set(a) & set(b)) for a, b in zip(exact, fast.tolist()))
    return {n: hit[n] / total if total else 1.0 for n in ns}


def agreement(model, batches, n: int, k: int = 10) -> float:
    """agreements() for one n."""
    return agreements(model, batches, [n], k)[n]
