"""Serving speed of a trained V2HT model: exact full rank against two-stage
ranking (gnn/ranking.py), with the two-stage top 10's agreement with the
exact top 10, on the test posts of the model's own data set (one run).

    # a trained run (e.g. the twitter-2013 runs of scripts/results.sh)
    python bench/bench_serving.py --run v2ht-results/twitter/runs/headline/v2ht-full-seed0
    # an INSVIDEO-sized model trained here first, for --steps Adam steps
    python bench/bench_serving.py --train /path/to/insvideo-workdir --steps 400
    # the whole test split through `evaluate`'s own function, eager and compiled
    python bench/bench_serving.py --train ... --evaluate

Prints, per setting: posts/s with and without the LSTM encoding of the posts
(the same for every ranking), and the share of the exact top-10 slots that
two stages return. Tile sizes (pairs per kernel call) can be swept with
--tiles.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from v2ht_kg.cli import openmp

openmp.apply()  # before torch loads OpenMP: the CLI's wait policy, so the figures are the CLI's

import torch

from v2ht_kg.cli import runtime
from v2ht_kg.gnn import native, ranking


def trained_here(workdir: Path, steps: int, batch_size: int, seed: int, lr: float,
                 cache: Path | None = None, weights: Path | None = None):
    """A full V2HT trained for ``steps`` steps on a work dir's data (no run folder).
    ``cache``: where Word2Vec is kept between calls; ``weights``: a state dict
    saved by an earlier call (loaded if the file exists, else written)."""
    from v2ht_kg.gnn import runs
    from v2ht_kg.gnn.data import TrainingData
    from v2ht_kg.gnn.stepper import Stepper
    from v2ht_kg.gnn.trainer import _model_config, seed_everything
    from v2ht_kg.kg.dataset import PreparedDataset

    ds = PreparedDataset(workdir / "data")
    seed_everything(seed)
    cache = cache or Path(tempfile.mkdtemp(prefix="bench-serving-"))
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    data = TrainingData.build(ds, cache, seed=seed)
    graph = runs.load_graph(workdir / "graph.pt", [h.name for h in ds.hashtags], ds.fingerprint)
    cfg = _model_config(data, "full", {}, complete=True)
    torch.manual_seed(seed)
    model = runs.default_model_factory(cfg, data.hashtag_init, graph)
    stepper = Stepper(model, lr=lr)
    print(f"data and Word2Vec: {time.perf_counter() - t0:.0f} s; {data.n_hashtags} hashtags, "
          f"modalities {', '.join(data.modalities)}")
    if weights is not None and weights.exists():
        model.load_state_dict(torch.load(weights, weights_only=True))
        print(f"weights from {weights}")
        return model.eval(), data
    t0 = time.perf_counter()
    model.train()
    done, losses = 0, []
    while done < steps:
        for batch in data.train_batches(done + 1, batch_size):
            loss, _ = stepper.step(batch)
            losses.append(float(loss.detach()))
            done += 1
            if done % 50 == 0:
                print(f"  step {done}: loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
            if done >= steps:
                break
    print(f"trained {done} steps of {batch_size} posts in {time.perf_counter() - t0:.0f} s "
          f"(loss {np.mean(losses[:20]):.4f} -> {np.mean(losses[-20:]):.4f})")
    if weights is not None:
        torch.save(model.state_dict(), weights)
    return model.eval(), data


def from_run(run_dir: Path):
    from v2ht_kg.gnn.runs import load_run

    r = load_run(run_dir)
    return r.model.eval(), r.data


def on_off(value: str, flag: str) -> list[str]:
    got = value.split(",")
    if not got or any(v not in ("on", "off") for v in got):
        raise SystemExit(f"{flag}: on, off or on,off, not {value!r}")
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="a trained V2HT run folder")
    src.add_argument("--train", type=Path, help="a work dir whose data and graph.pt to train a model on here")
    ap.add_argument("--steps", type=int, default=400, help="--train: Adam steps")
    ap.add_argument("--batch-size", type=int, default=64, help="--train: posts per step")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--cache", type=Path, help="--train: a folder to keep Word2Vec in between calls")
    ap.add_argument("--weights", type=Path, help="--train: load the model from this file, or save it there")
    ap.add_argument("--posts", type=int, default=1024, help="test posts to rank")
    ap.add_argument("--batch", type=int, default=256, help="posts per ranking call")
    ap.add_argument("--candidates", default="250,500,1000")
    ap.add_argument("--tiles", default=str(ranking.MLP_PAIRS_PER_STEP),
                    help="pairs per kernel call, comma-separated (with or without the fused hidden layers)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-fused", action="store_true", help="skip the torch.compile'd kernel")
    ap.add_argument("--evaluate", action="store_true",
                    help="instead: time gnn.evaluate.evaluate_model over the whole test split (what `evaluate` "
                         "runs), eager and with the compiled kernel unless --no-fused")
    ap.add_argument("--onednn", default="on",
                    help="--evaluate: the tile kernel's hidden layers through oneDNN's linear (on), torch.addmm "
                         "(off), or both in turn (on,off): the two paths' times in one run")
    ap.add_argument("--native", default="on",
                    help="--evaluate: the tile input through the C loop (gnn/native.py; on), torch ops (off), "
                         "or both in turn (on,off)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    malloc = runtime.apply()  # as the CLI does; V2HT_MALLOC=0 / V2HT_GC=0 for the defaults
    model, data = (from_run(args.run) if args.run else
                   trained_here(args.train, args.steps, args.batch_size, args.seed, args.lr,
                                args.cache, args.weights))
    if args.evaluate:
        import os

        from v2ht_kg.gnn.evaluate import evaluate_model

        n = len(data.rows["test"])
        runs = [(dnn, nat, "0") for dnn in on_off(args.onednn, "--onednn") for nat in on_off(args.native, "--native")]
        runs += [] if args.no_fused else [("on", "off", "1")]
        for dnn, nat, mode in runs:
            ranking._ONEDNN["ok"] = None if dnn == "on" else False
            if nat == "on" and not native.available():
                print("evaluate: no C tile-input loop on this machine (no compiler, or it did not match torch)")
                continue
            os.environ["V2HT_COMPILE"] = mode
            t0 = time.perf_counter()
            with native.off() if nat == "off" else nullcontext():
                res = evaluate_model(model, data, "test")
            dt = time.perf_counter() - t0
            kind = "compiled kernel" if mode == "1" else f"eager, oneDNN MLP {dnn}, C tile input {nat}"
            print(f"evaluate, {kind}: {n} test posts x {data.n_hashtags} hashtags in {dt:.0f} s "
                  f"({n / dt:.0f} posts/s, compile included); R@10 {res['overall']['recall@10']:.4f}, "
                  f"long-tail R@10 {res['longtail']['recall@10']:.4f}", flush=True)
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        return
    rows = data.rows["test"][:args.posts]
    batches = [data.batch(rows[i:i + args.batch]) for i in range(0, len(rows), args.batch)]
    n_posts, h = len(rows), data.n_hashtags
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {n_posts} test posts x {h} hashtags, "
          f"batches of {args.batch}, freed memory kept: {malloc}")
    with torch.no_grad():
        side = model._hashtag_side()  # propagation once, cached
        for b in batches[:1]:
            model.encode_posts(b, side)
        t0 = time.perf_counter()
        for b in batches:
            model.encode_posts(b, side)
        t_enc = time.perf_counter() - t0
        print(f"encoding (LSTMs, user tower): {t_enc * 1e3:.0f} ms = {n_posts / t_enc:.0f} posts/s")

        def rate(fn) -> tuple[float, list]:
            fn(batches[0])  # warm-up
            t0 = time.perf_counter()
            out = [fn(b) for b in batches]
            dt = time.perf_counter() - t0
            return dt, out

        for tile in [int(x) for x in args.tiles.split(",")]:
            ranking.PAIRS_PER_STEP = ranking.MLP_PAIRS_PER_STEP = tile
            dt, tops = rate(lambda b: torch.topk(model.score_all(b), 10, dim=1).indices)
            exact = [t.tolist() for t in tops]
            print(f"tile {tile} pairs: exact full rank {n_posts / dt:.0f} posts/s "
                  f"({n_posts / (dt - t_enc):.0f} without encoding; {n_posts * h / (dt - t_enc) / 1e6:.2f}M pairs/s)")
            for n in [int(x) for x in args.candidates.split(",")]:
                if n >= h:
                    continue
                dt, got = rate(lambda b: model.recommend(b, 10, candidates=n)[1])
                hit = sum(len(set(a) & set(g)) for e, gg in zip(exact, got) for a, g in zip(e, gg.tolist()))
                total = sum(len(a) for e in exact for a in e)
                print(f"  two stages, N = {n}: {n_posts / dt:.0f} posts/s ({n_posts / (dt - t_enc):.0f} without "
                      f"encoding), top-10 agreement with exact {hit / total:.4f}")
        if not args.no_fused:
            dt, tops = rate(lambda b: torch.topk(model.score_all(b, fused=True), 10, dim=1).indices)
            print(f"compiled tile kernel (compile not timed): exact full rank {n_posts / dt:.0f} posts/s "
                  f"({n_posts / (dt - t_enc):.0f} without encoding)")
            for n in [int(x) for x in args.candidates.split(",")]:
                if n < h:
                    dt, _ = rate(lambda b: model.recommend(b, 10, candidates=n, fused=True))
                    print(f"  two stages, N = {n}: {n_posts / dt:.0f} posts/s ({n_posts / (dt - t_enc):.0f} "
                          "without encoding)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
