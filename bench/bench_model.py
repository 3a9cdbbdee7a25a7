"""Speed of the V2HT model on this machine, with random tensors (one run).

Prints: GEMM GFLOP/s (fp32, bf16) measured in the same run; training posts/s
and achieved GFLOP/s in an INSVIDEO-like setting (40 visual frames, 60
acoustic clips, 6 text tokens); the propagation step (forward + backward)
with learned edge weights against fixed weights on a random graph of 15.7k
hashtags / 300k edges; full-rank inference posts/s over all hashtags (fp32
and bf16); peak RSS.

    python bench/bench_model.py            # INSVIDEO sizes
    python bench/bench_model.py --quick    # small sizes, a few seconds
    python bench/bench_model.py --graph /work/exp/ins/graph.pt   # + propagation over a real graph
"""
from __future__ import annotations

import argparse
import resource
import time

from v2ht_kg.cli import openmp

openmp.apply()  # before torch loads OpenMP: the CLI's wait policy, so the figures are the CLI's

import torch
from torch_geometric.data import Data

from v2ht_kg.cli import runtime
from v2ht_kg.gnn import native, native_mlp, ranking
from v2ht_kg.gnn.batch import PostBatch
from v2ht_kg.gnn.config import V2HTConfig
from v2ht_kg.gnn.model import V2HT
from v2ht_kg.gnn.node_linear import node_linear
from v2ht_kg.gnn.propagation import HashtagPropagation, _CSRMatmul


def timed(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def median_time(fn, reps: int = 5) -> float:
    """Median seconds per call of ``reps`` calls after a warm-up: a measured
    rate, set against the bound's best rate (so its share errs low)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def best_time(fn, seconds: float = 1.0, block: int = 10) -> float:
    """Seconds per call of the fastest block of ``block`` calls within about
    ``seconds``: a bound wants the machine's best rate, and a millisecond
    GEMM timed ten times moved the bound by 2x between runs."""
    for _ in range(3):
        fn()
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        for _ in range(block):
            fn()
        best = min(best, (time.perf_counter() - t0) / block)
    return best


def gemm_gflops(n: int, dtype: torch.dtype, reps: int) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n ** 3 / timed(lambda: a @ b, reps) / 1e9


def shape_gemm_gflops(m: int, k: int, n: int, reps: int) -> dict[str, float]:
    """GFLOP/s of (m, k) @ (k, n) at the model's own shapes, per library:
    MKL (torch.mm fp32), oneDNN (mkldnn linear fp32) and bf16 (torch.mm),
    each its best over about a second."""
    from torch.utils import mkldnn

    flop = 2 * m * k * n
    x, lin = torch.randn(m, k), torch.nn.Linear(k, n, bias=False)
    w = lin.weight.t().contiguous()
    out = {"mkl fp32": flop / best_time(lambda: x @ w) / 1e9}
    try:
        lin_dnn, x_dnn = mkldnn.to_mkldnn(lin), x.to_mkldnn()
        out["onednn fp32"] = flop / best_time(lambda: lin_dnn(x_dnn)) / 1e9
    except (RuntimeError, AttributeError):  # a torch build without oneDNN
        pass
    xb, wb = x.bfloat16(), w.bfloat16()
    out["bf16"] = flop / best_time(lambda: xb @ wb) / 1e9
    return out


def flops_per_pair(cfg: V2HTConfig) -> tuple[float, float]:
    """(MLP GEMM FLOPs, element-wise FLOPs) of scoring one (post, hashtag)
    pair exactly (gnn/model.py score_all): Eq. 15-16's layers, and per
    modality the pooled-vector blend and the Bi-Interaction (about 4 d),
    plus e_h + e_u and e_h * e_u (2 d)."""
    d = cfg.d_hashtag
    width = len(cfg.modalities) * d
    gemm = 0.0
    for h in tuple(cfg.mlp_hidden) + (1,):
        gemm += 2 * width * h
        width = h
    return gemm, 4.0 * d * len(cfg.modalities) + 2.0 * d


def propagation_ratio(graph, n_tags: int, reps: int) -> str:
    """Learned weights (Eqs. 4-7) against a fixed, pre-normalised matrix, one
    forward + backward step each over ``graph``."""
    prop = HashtagPropagation(64, n_tags, graph)
    init = torch.randn(n_tags, 64)
    emb = init.clone().requires_grad_(True)

    def learned():
        prop.zero_grad()
        emb.grad = None
        prop(emb).square().mean().backward()

    with torch.no_grad():
        m = prop.matrices(init)
        fixed_vals, fixed_self = m["A_hat"].clone(), m["A_hat_self"].clone()
    t = prop.topo

    def fixed():
        prop.zero_grad()
        emb.grad = None
        y = emb
        for i, lin in enumerate(prop.layers):
            x = node_linear(y.contiguous(), lin.weight)  # as HashtagPropagation.forward
            z = _CSRMatmul.apply(fixed_vals, x, t.crow, t.cols, t.twin, t.crow32, t.cols32) + fixed_self[:, None] * x
            y = torch.relu(z) if i < len(prop.layers) - 1 else z
        y.square().mean().backward()

    learned(), fixed()
    runs: dict = {learned: [], fixed: []}
    for _ in range(7):  # alternated, so the machine's drift hits both alike
        for fn in runs:
            runs[fn].append(timed(fn, 1, warmup=0))
    tl, tf = (sorted(runs[fn])[3] for fn in (learned, fixed))
    return (f"propagation fwd+bwd (median of 7), {t.n_directed} directed edges: learned {tl * 1e3:.0f} ms, "
            f"fixed {tf * 1e3:.0f} ms, ratio {tl / tf:.2f}")


def _overlap(exact: torch.Tensor, other: torch.Tensor, k: int = 10) -> float:
    """Share of the exact top-k slots that ``other``'s top k also holds."""
    top = exact.topk(k).indices
    return sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(top, other.topk(k).indices)) / top.numel()


def random_graph(n: int, pairs: int, seed: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, n, (pairs,), generator=g)
    b = torch.randint(0, n, (pairs,), generator=g)
    t = torch.randint(0, 4, (pairs,), generator=g)
    w = torch.rand(pairs, generator=g)
    return Data(edge_index=torch.stack([torch.cat([a, b]), torch.cat([b, a])]), edge_type=t.repeat(2),
                edge_weight=w.repeat(2), num_nodes=n)


def make_batch(b: int, k: int, n_tags: int, dims: dict, steps: dict, d_user: int, seed: int) -> PostBatch:
    g = torch.Generator().manual_seed(seed)
    seqs = {m: torch.randn(b, steps[m], dims[m], generator=g) for m in dims}
    lengths = {m: torch.full((b,), steps[m]) for m in dims}
    lengths["text"] = torch.randint(1, steps["text"] + 1, (b,), generator=g)
    for i, ln in enumerate(lengths["text"].tolist()):
        seqs["text"][i, ln:] = 0
    return PostBatch(rows=torch.arange(b), seqs=seqs, lengths=lengths, users=torch.zeros(b, dtype=torch.long),
                     user_feats=torch.randn(b, d_user, generator=g), cand=torch.randint(0, n_tags, (b, k), generator=g),
                     labels=(torch.rand(b, k, generator=g) < 1 / 7).float(),
                     cand_mask=torch.ones(b, k, dtype=torch.bool))


def train_flops_per_post(cfg: V2HTConfig, steps: dict, k: int) -> float:
    """Analytic multiply-adds x 2 of the dense layers, x 3 for forward + backward."""
    f = 0.0
    for m in cfg.modalities:
        h, d = cfg.lstm_hidden[m], cfg.input_dims[m]
        f += steps[m] * (4 * h * (d + h) + h * cfg.d_common + cfg.d_common * cfg.d_hashtag * (cfg.d_common != cfg.d_hashtag))
        f += k * steps[m] * cfg.d_hashtag  # attention pooling per candidate
    width = len(cfg.modalities) * cfg.d_hashtag
    for hdim in cfg.mlp_hidden:
        f += k * width * hdim
        width = hdim
    return 2 * 3 * f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--visual-dim", type=int, default=None, help="visual feature width (default 2048; quick 256)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--graph", default=None, help="also time propagation over this graph.pt (e.g. the INSVIDEO build's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    malloc = runtime.apply()  # as the CLI does; V2HT_MALLOC=0 / V2HT_GC=0 for the defaults
    torch.manual_seed(args.seed)
    q = args.quick
    n_tags, n_pairs = (2000, 40_000) if q else (15_751, 300_000)
    vis = args.visual_dim or (256 if q else 2048)
    dims = {"visual": vis, "acoustic": 128, "text": 100}
    steps = {"visual": 40, "acoustic": 60, "text": 6}
    b_train, k_train = (16, 94) if q else (64, 94)  # 13.4 tags/post x (1 + 6 negatives)
    b_inf = 32 if q else 128
    reps = 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{n_tags} hashtags, {n_pairs} edges, visual dim {vis}, freed memory kept: {malloc}")

    fp32 = gemm_gflops(1024 if q else 2048, torch.float32, reps)
    bf16 = gemm_gflops(1024 if q else 2048, torch.bfloat16, reps)
    print(f"GEMM: fp32 {fp32:.0f} GFLOP/s, bf16 {bf16:.0f} GFLOP/s")
    cfg = V2HTConfig(n_hashtags=n_tags, input_dims=dims, d_user_in=vis + 64 + 1)
    f_gemm, f_elem = flops_per_pair(cfg)
    rates = shape_gemm_gflops(8192, len(cfg.modalities) * cfg.d_hashtag, cfg.mlp_hidden[0], reps)
    best32 = max(v for k_, v in rates.items() if "fp32" in k_)
    print(f"exact scoring: {f_gemm + f_elem:,.0f} FLOP per (post, hashtag) pair ({f_gemm:,.0f} in MLP GEMMs, "
          f"{f_gemm / (f_gemm + f_elem):.0%}); GEMM at the first layer's shape (8192 x "
          f"{len(cfg.modalities) * cfg.d_hashtag} x {cfg.mlp_hidden[0]}): "
          + ", ".join(f"{k_} {v:.0f}" for k_, v in rates.items()) + " GFLOP/s")
    bound = {False: best32 * 1e9 / (f_gemm + f_elem) / n_tags, True: rates["bf16"] * 1e9 / (f_gemm + f_elem) / n_tags}
    print(f"FLOP bound over {n_tags} hashtags: fp32 {bound[False]:.0f} posts/s, bf16 {bound[True]:.0f} posts/s")
    best_any = max(best32, fp32)
    print(f"training yardstick: the best fp32 GEMM of this run, {best_any:.0f} GFLOP/s")

    graph = random_graph(n_tags, n_pairs, args.seed)
    init = torch.randn(n_tags, 64)

    print(propagation_ratio(graph, n_tags, reps))
    if args.graph:
        from v2ht_kg.kg.export import load_pyg_graph

        real = load_pyg_graph(args.graph)
        print(f"{args.graph}: " + propagation_ratio(real, int(real.num_nodes), reps))

    # training steps (fp32), encoder-dominated (wo_p) and full (with propagation every step)
    for variant in ("wo_p", "full"):
        cfg = V2HTConfig(n_hashtags=n_tags, input_dims=dims, d_user_in=vis + 64 + 1).variant(variant)
        m = V2HT(cfg, init, graph if cfg.use_propagation else None)
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        bt = make_batch(b_train, k_train, n_tags, dims, steps, cfg.d_user_in, args.seed)

        def step():
            opt.zero_grad()
            m.loss(bt).backward()
            opt.step()

        dt = timed(step, reps)
        gf = train_flops_per_post(cfg, steps, k_train) * b_train / dt / 1e9
        print(f"train {variant:5s}: batch {b_train} x {k_train} candidates, {dt * 1e3:.0f} ms/step, "
              f"{b_train / dt:.0f} posts/s, {gf:.1f} GFLOP/s achieved (dense-layer count), "
              f"{gf / best_any:.0%} of the yardstick")

    # full-rank inference, against the FLOP bound at the model's own shapes: the
    # scoring of posts encoded once, timed on its own (median of 5)
    cfg = V2HTConfig(n_hashtags=n_tags, input_dims=dims, d_user_in=vis + 64 + 1)
    m = V2HT(cfg, init, graph).eval()
    bt = make_batch(b_inf, 1, n_tags, dims, steps, cfg.d_user_in, args.seed + 1)
    with torch.no_grad():
        side = m._hashtag_side()  # propagate once; cached for every batch after
        t_enc = median_time(lambda: m.encode_posts(bt, side))
        post = m.encode_posts(bt, side)

        def rank(bf: bool, fused: bool = False) -> tuple[torch.Tensor, float]:
            out = ranking._score_encoded(m, post, side, bf16=bf, fused=fused)  # the compile, if any, not timed
            return out, median_time(lambda: ranking._score_encoded(m, post, side, bf16=bf, fused=fused))

        def line(dt: float, bf: bool) -> str:
            rate = b_inf / dt
            return (f"{rate:.0f} posts/s ({b_inf * n_tags / dt / 1e6:.2f}M pairs/s, {dt * 1e3:.0f} ms; "
                    f"{b_inf / (dt + t_enc):.0f} posts/s with the {t_enc * 1e3:.0f} ms of LSTM encoding): "
                    f"{rate / bound[bf]:.0%} of the {'bf16' if bf else 'fp32'} FLOP bound")

        scores = {}
        for bf in (False, True):
            scores[bf], dt = rank(bf)
            path = "C tile with fused hidden layers" if native_mlp.wanted(
                torch.bfloat16 if bf else torch.float32) else "C tile input" if native.available() else "torch ops"
            print(f"full rank {'bf16' if bf else 'fp32'} ({path}), {b_inf} posts x {n_tags} hashtags: {line(dt, bf)}")
        # the same without the C loops (gnn/native.py): torch ops, as where no compiler is found
        if native.available():
            for bf in (False, True):
                with native.off():
                    plain, dt = rank(bf)
                # bf16: near-ties in the GEMMs may round the other way (native_mlp.matches)
                same = (f"same scores: {torch.equal(plain, scores[bf])}" if not bf else
                        f"scores differing {(plain != scores[bf]).float().mean():.1e}, top-10 overlap "
                        f"{_overlap(plain, scores[bf]):.3f}")
                print(f"full rank {'bf16' if bf else 'fp32'}, torch ops (no C loop): {line(dt, bf)}; {same}")
        else:
            print("full rank: no C tile-input loop on this machine (no compiler, or it did not match torch)")
        # the compiled tile kernel (V2HT_COMPILE=1); its compile is not timed
        fused, dt = rank(False, fused=True)
        print(f"full rank fp32, compiled tile kernel: {line(dt, False)}; max |diff| to eager "
              f"{(fused - scores[False]).abs().max():.2g}")
        fused_bf, dt = rank(True, fused=True)  # its own compile (another dtype)
        print(f"full rank bf16, compiled tile kernel: {line(dt, True)}; top-10 overlap with fp32 "
              f"{_overlap(scores[False], fused_bf):.3f}")
    exact, fast = scores[False], scores[True]
    print(f"bf16 vs fp32: max |diff| {(fast - exact).abs().max():.3g}, top-10 overlap "
          f"{_overlap(exact, fast):.3f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
