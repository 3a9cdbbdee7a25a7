"""Training speed at scale: seconds per optimiser step and the epoch it
implies, per (batch size, propagate-every) setting, through the trainer's
own step (gnn/stepper.py) and batch generator, on a built work dir.

    python bench/bench_epoch.py /path/to/insvideo-workdir --settings 64:1,256:1,256:4
    python bench/bench_epoch.py WORKDIR --settings 256:4 --full    # time one whole epoch
    python bench/bench_epoch.py WORKDIR --quality 40000            # and what each setting learns
    python bench/bench_epoch.py WORKDIR --co-max-neighbours 32 --settings 64:1 --quality 40000

Each setting starts from the same freshly initialised model and times
--steps steps after --warmup; the epoch figure is that rate times the
epoch's number of batches (batch building included). --full runs the whole
epoch instead. --quality N trains each setting on the same first N posts of
epoch 1 (the same shuffled order for every setting) and scores R@10 and
NDCG@10 by full ranking on a fixed seeded subset of the validation posts,
so settings are compared on equal data seen. Peak RSS is printed at the end.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from v2ht_kg.cli import openmp

openmp.apply()  # before torch loads OpenMP: the CLI's wait policy, so the figures are the CLI's

import torch

from v2ht_kg.cli import runtime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path, help="a work dir holding data/ and graph.pt")
    ap.add_argument("--settings", default="64:1,256:1,256:4",
                    help="BATCH:PROPAGATE_EVERY[:LR_SCALE[:SIDE_LR_SCALE]], comma-separated (lr 3e-3 x LR_SCALE; "
                         "the hashtag side's lr that x SIDE_LR_SCALE)")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per setting")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--full", action="store_true", help="time the whole epoch (one setting at a time)")
    ap.add_argument("--co-max-neighbours", type=int, help="every setting: at most this many co neighbours a hashtag")
    ap.add_argument("--quality", type=int, metavar="N", help="train each setting on N posts, then validate")
    ap.add_argument("--valid-posts", type=int, default=2000, help="--quality: validation posts scored")
    ap.add_argument("--cache", type=Path, help="a folder to keep Word2Vec in between calls")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    malloc = runtime.apply()  # as the CLI does; V2HT_MALLOC=0 / V2HT_GC=0 for the defaults

    from v2ht_kg.gnn import runs
    from v2ht_kg.gnn.data import TrainingData
    from v2ht_kg.gnn.stepper import Stepper
    from v2ht_kg.gnn.trainer import _model_config, seed_everything
    from v2ht_kg.kg.dataset import PreparedDataset

    ds = PreparedDataset(args.workdir / "data")
    cache = args.cache or Path(tempfile.mkdtemp(prefix="bench-epoch-"))
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seed_everything(args.seed)
    data = TrainingData.build(ds, cache, seed=args.seed)
    graph = runs.load_graph(args.workdir / "graph.pt", [h.name for h in ds.hashtags], ds.fingerprint)
    opts = {} if args.co_max_neighbours is None else {"co_max_neighbours": args.co_max_neighbours}
    cfg = _model_config(data, "full", opts, complete=True)
    print(f"data and Word2Vec: {time.perf_counter() - t0:.0f} s; {data.n_hashtags} hashtags, "
          f"{int(graph.edge_index.shape[1])} directed edges, {len(data.rows['train'])} training posts, "
          f"{args.threads} threads, co_max_neighbours {args.co_max_neighbours}, freed memory kept: {malloc}")
    val_rows = None
    if args.quality:
        import numpy as np

        from v2ht_kg.gnn.evaluate import evaluate_model

        val_rows = data.rows["valid"]
        if len(val_rows) > args.valid_posts:
            val_rows = np.sort(np.random.default_rng([args.seed, 1]).choice(val_rows, args.valid_posts, replace=False))
    print(f"{'setting':>12} {'s/step':>8} {'steps/epoch':>12} {'epoch min':>10}  how"
          + (f"  | after {args.quality} posts: valid R@10 NDCG@10" if args.quality else ""))
    for item in args.settings.split(","):
        bs, k, *scale = item.split(":")
        bs, k = int(bs), int(k)
        lr = 3e-3 * float(scale[0]) if scale else 3e-3
        side_lr = lr * float(scale[1]) if len(scale) > 1 else lr
        torch.manual_seed(args.seed)
        model = runs.default_model_factory(cfg, data.hashtag_init, graph).train()
        stepper = Stepper(model, lr=lr, propagate_every=k, side_lr=side_lr)
        if args.co_max_neighbours is not None and item == args.settings.split(",")[0]:
            print(f"  propagated directed edges: {model.propagation.topo.n_directed}")
        n_batches = data.n_train_batches(bs)
        gen = data.train_batches(1, bs)
        steps = n_batches if args.full else min(args.steps, n_batches - args.warmup)
        if args.quality:
            steps = min(n_batches, -(-args.quality // bs)) - args.warmup
        for _ in range(0 if args.full else args.warmup):
            stepper.step(next(gen))
        stepper.flush()
        t0 = time.perf_counter()
        for _ in range(steps):
            stepper.step(next(gen))
        stepper.flush()
        per = (time.perf_counter() - t0) / steps
        how = "one whole epoch" if args.full else f"{steps} steps after {args.warmup}, extrapolated"
        line = f"{item:>12} {per:>8.3f} {n_batches:>12} {per * n_batches / 60:>10.1f}  {how}"
        if args.quality:
            val = evaluate_model(model, data, "valid", rows=val_rows)["overall"]
            line += f"  | {val['recall@10']:.4f} {val['ndcg@10']:.4f}"
        print(line, flush=True)
        del model, stepper
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
