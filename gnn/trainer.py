"""Training loop: Adam, per-epoch full-ranking validation, early stopping on
validation NDCG@10, atomic checkpoints, exact resume, and the final test
evaluation (overall and long-tail) next to the baselines."""
from __future__ import annotations

import os
import random
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..kg.dataset import PreparedDataset
from ..kg.errors import DataError
from . import runs
from .data import NEGATIVES, TrainingData
from .evaluate import evaluate_model
from .stepper import Stepper

SELECT_METRIC = "ndcg@10"  # early stopping and best-model choice, on the validation split

Progress = Callable[[dict], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _busy_cores(window: float = 0.2) -> float:
    """Cores busy right now, from two reads of /proc/stat ``window`` s
    apart (the load average lags a new neighbour by a minute)."""
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + (v[4] if len(v) > 4 else 0)  # total, idle + iowait

    try:
        t0, i0 = read()
        time.sleep(window)
        t1, i1 = read()
        cores = os.cpu_count() or 1
        return cores * (1.0 - (i1 - i0) / max(t1 - t0, 1))
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0


def free_cores() -> int:
    """The cores this process may use that no other process is busy on.
    Threads beyond the free cores make torch's OpenMP barriers wait on
    descheduled threads: full rank fell 5-40x with every core asked for
    and one neighbour running."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, int(cores - _busy_cores() + 0.5)))


def set_threads(threads: int | None) -> int:
    """``threads``, or the free cores (free_cores) by default."""
    n = threads or free_cores()
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def _rng_state() -> dict:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "python": random.getstate(),
          "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                    "has_gauss": int(has_gauss), "cached": float(cached)}}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    n = st["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _model_config(data: TrainingData, variant: str, options: dict, complete: bool) -> dict:
    use_user, use_prop = runs.variant_flags(variant)
    d = int(options.get("d_hashtag", data.dim))
    cfg = {**options, "n_hashtags": data.n_hashtags, "d_hashtag": d, "d_user": d,
           "modalities": list(data.modalities), "input_dims": dict(data.input_dims),
           "d_user_in": data.d_user_in, "use_user": use_user, "use_propagation": use_prop}
    return runs.complete_model_config(cfg) if complete else cfg


def train(dataset_dir: Path | str, graph_path: Path | str | None, run_dir: Path | str, *,
          model_options: dict | None = None, variant: str = "full", modalities: Sequence[str] | None = None,
          epochs: int = 20, batch_size: int = 32, lr: float = 3e-3, weight_decay: float = 0.0,
          seed: int = 0, device: str = "cpu", resume: bool = False, patience: int = 3,
          max_text_tokens: int = 20, w2v_epochs: int = 5, eval_batch_size: int = 256,
          grad_clip: float | None = 5.0, valid_posts: int | None = None, threads: int | None = None,
          propagate_every: int = 1,
          baselines: bool = True, protocol: str = "deployed",
          progress: Progress | None = None, model_factory=None) -> dict:
    """Train (or resume) one run into ``run_dir``; returns the final metrics.json content.

    ``batch_size`` counts posts; each post brings all its true hashtags and
    6 sampled negatives per true hashtag. The defaults (32 posts, lr 3e-3) are
    sized for data sets of thousands of posts: at the paper's 256-2048 posts a
    run of 10 epochs makes only a few hundred Adam steps and the model stays at
    popularity level. ``valid_posts`` caps the per-epoch validation at a fixed
    seeded subset of that many posts (large data sets); the test evaluation
    always uses the whole split. ``propagate_every`` = k > 1 steps the
    hashtag side once per k steps (gnn/stepper.py). On ``resume`` the options recorded in
    config.json win, except ``epochs`` (to extend a run) and ``device``.
    """
    from .protocol import check_protocol

    check_protocol(protocol)
    run_dir = Path(run_dir)
    emit = progress or (lambda ev: None)
    set_threads(threads)
    cfg_path = run_dir / runs.CONFIG
    if resume:
        if not cfg_path.exists():
            raise DataError("nothing to resume: no run here", str(run_dir))
        cfg = runs.read_json(cfg_path, "run config")
        try:
            dataset_dir = dataset_dir or cfg["dataset_dir"]
            graph_path, variant, modalities = cfg["graph_path"], cfg["variant"], cfg["modalities"]
            batch_size, lr, weight_decay, seed = cfg["batch_size"], cfg["lr"], cfg["weight_decay"], cfg["seed"]
            patience, max_text_tokens, w2v_epochs = cfg["patience"], cfg["max_text_tokens"], cfg["w2v_epochs"]
            grad_clip, model_options = cfg["grad_clip"], cfg["model_options"]
            propagate_every = cfg.get("propagate_every", 1)
            valid_posts = cfg.get("valid_posts")
            protocol = cfg.get("protocol", protocol)
        except KeyError as e:
            raise DataError(f"run config lacks {e}", str(cfg_path)) from None
    elif cfg_path.exists():
        raise DataError(f"this folder already holds a run: continue it (`v2ht-kg train --run {run_dir.name} --resume`, "
                        "which also retries a run that failed before its first epoch), delete it, "
                        "or choose another --run", str(run_dir))
    if epochs < 1 or batch_size < 1 or lr <= 0 or patience < 1 or propagate_every < 1:
        raise DataError("epochs, batch size, patience and propagate-every must be positive and the learning "
                        "rate above zero")
    use_user, use_prop = runs.variant_flags(variant)
    model_options = dict(model_options or {})

    ds = PreparedDataset(Path(dataset_dir))
    ds.verify_checksums()  # a data set edited after preparation must not train silently
    if resume and ds.fingerprint != cfg["data_fingerprint"]:
        raise DataError(f"the data set changed since this run started (fingerprint {ds.fingerprint}, "
                        f"run {cfg['data_fingerprint']})", str(dataset_dir))
    graph, graph_fp = None, None
    if use_prop:
        if graph_path is None:
            raise DataError(f"variant {variant!r} propagates over the hashtag graph: give a graph snapshot "
                            "(graph.pt), or train a w/o P variant")
        graph = runs.load_graph(Path(graph_path), [h.name for h in ds.hashtags], ds.fingerprint)
        graph_fp = runs.graph_fingerprint(Path(graph_path))
        if resume and cfg.get("graph_fingerprint") not in (None, graph_fp):
            raise DataError("the graph snapshot changed since this run started", str(graph_path))

    seed_everything(seed)
    w2v_dim = int(model_options.get("d_hashtag", 64))
    run_dir.mkdir(parents=True, exist_ok=True)
    emit({"event": "data", "message": "preparing batches and Word2Vec"})
    data = TrainingData.build(ds, run_dir, modalities=modalities, max_text_tokens=max_text_tokens,
                              seed=seed, w2v_dim=w2v_dim, w2v_epochs=w2v_epochs)
    if not resume:
        mcfg = _model_config(data, variant, model_options, complete=model_factory is None)
        cfg = {"format": runs.RUN_FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "dataset_dir": str(Path(dataset_dir).resolve()), "data_fingerprint": ds.fingerprint,
               "graph_path": str(Path(graph_path).resolve()) if (graph_path and use_prop) else None,
               "graph_fingerprint": graph_fp, "variant": variant, "modalities": list(data.modalities),
               "epochs": epochs, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay, "seed": seed,
               "patience": patience, "select_metric": SELECT_METRIC,
               "negatives": int(mcfg.get("negatives", NEGATIVES)) if isinstance(mcfg, dict) else NEGATIVES,
               "max_text_tokens": max_text_tokens, "w2v_dim": w2v_dim, "w2v_epochs": w2v_epochs,
               "grad_clip": grad_clip, "propagate_every": propagate_every, "valid_posts": valid_posts,
               "device": device, "protocol": protocol,
               "model_options": model_options, "model": mcfg}
        runs.write_json(cfg_path, cfg)
    else:
        cfg["epochs"] = epochs
        cfg["device"] = device
        runs.write_json(cfg_path, cfg)

    data.negatives = int(cfg["model"].get("negatives", NEGATIVES))
    factory = model_factory or runs.default_model_factory
    torch.manual_seed(seed)  # the model's initial weights depend on the seed only
    model = factory(cfg["model"], data.hashtag_init, graph).to(device)
    stepper = Stepper(model, lr, weight_decay, grad_clip, propagate_every)

    start, history, best_epoch, best_value, bad, stopped = 1, [], 0, -1.0, 0, False
    if resume and (run_dir / runs.CHECKPOINT).exists():
        st = runs.load_torch(run_dir / runs.CHECKPOINT, "checkpoint")  # CPU: RNG states must stay there
        try:
            model.load_state_dict(st["model"])
            stepper.load_state_dict(st)
            start, history = st["epoch"] + 1, list(st["history"])
            best_epoch, best_value, bad, stopped = st["best_epoch"], st["best_value"], st["bad_epochs"], st["stopped"]
            _set_rng_state(st["rng"])
        except (KeyError, RuntimeError, TypeError, ValueError) as e:
            raise DataError(f"checkpoint does not fit this run ({type(e).__name__})",
                            str(run_dir / runs.CHECKPOINT)) from None
        emit({"event": "resume", "epoch": start - 1})

    n_batches = data.n_train_batches(batch_size)
    val_rows = data.rows["valid"]
    if valid_posts and len(val_rows) > valid_posts:
        # one subset for the whole run, so epochs stay comparable
        val_rows = np.sort(np.random.default_rng([seed, 1]).choice(val_rows, valid_posts, replace=False))
    for epoch in range(start, epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        model.train()
        total, weight, skipped = 0.0, 0, 0
        for i, batch in enumerate(data.train_batches(epoch, batch_size), 1):
            batch = batch.to(device)
            loss, ok = stepper.step(batch)
            if ok:
                n = int(batch.cand_mask.sum())
                total += float(loss.detach()) * n
                weight += n
            else:  # one non-finite step would turn every parameter into NaN for good
                skipped += 1
            emit({"event": "batch", "epoch": epoch, "batch": i, "batches": n_batches, "loss": float(loss.detach())})
        stepper.flush()  # an epoch ends every window: checkpoints hold no half window
        train_s = time.perf_counter() - t0
        if skipped > max(1, int(0.05 * n_batches)):
            # the parameters did not move on those steps: the run would report a model it never trained
            raise DataError(f"training stopped in epoch {epoch}: {skipped} of {n_batches} steps had a non-finite "
                            "loss or gradient; lower --lr or check the features for NaN/inf (the run folder keeps "
                            "the last good epoch: --resume continues it, or delete it to retry)", str(run_dir))
        val = evaluate_model(model, data, "valid", device=device, batch_size=eval_batch_size, rows=val_rows)
        value = val["overall"].get(SELECT_METRIC, 0.0)
        improved = value > best_value or not val_rows.size
        if improved:
            best_epoch, best_value, bad = epoch, value, 0
            runs.save_torch(run_dir / runs.BEST, {"model": model.state_dict(), "epoch": epoch})
        else:
            bad += 1
        stopped = bad >= patience
        history.append({"epoch": epoch, "loss": total / max(weight, 1), "skipped_steps": skipped,
                        "valid": val["overall"],
                        "valid_longtail": val["longtail"], "train_seconds": round(train_s, 3),
                        "seconds": round(time.perf_counter() - t0, 3)})
        runs.save_torch(run_dir / runs.CHECKPOINT, {
            "model": model.state_dict(), **stepper.state_dict(), "epoch": epoch, "history": history,
            "best_epoch": best_epoch, "best_value": best_value, "bad_epochs": bad, "stopped": stopped,
            "rng": _rng_state()})
        _write_metrics(run_dir, history, best_epoch, stopped, status="training")
        emit({"event": "epoch", "epoch": epoch, "epochs": epochs, "loss": history[-1]["loss"],
              "valid": val["overall"], "best_epoch": best_epoch, "improved": improved, "stopped": stopped,
              "seconds": history[-1]["seconds"]})

    if not history:
        raise DataError("no epoch was trained (epochs must exceed the checkpoint's epoch)", str(run_dir))
    best = runs.load_torch(run_dir / runs.BEST, "best model")
    model.load_state_dict(best["model"])
    emit({"event": "test", "message": "evaluating the best model on the test split"})
    test = evaluate_model(model, data, "test", device=device, batch_size=eval_batch_size)
    base = None
    if baselines:
        from .baselines import Baselines

        base = Baselines(data, protocol).evaluate("test")
    two = _two_stage_agreement(model, data, val_rows, device, eval_batch_size)
    return _write_metrics(run_dir, history, best_epoch, stopped, status="done", test=test, baselines=base,
                          two_stage=two)


def _two_stage_agreement(model, data, rows: np.ndarray, device: str, batch_size: int) -> dict | None:
    """How often two-stage ranking (what `recommend` serves) returns the exact top 10,
    on the validation posts: measured on each trained model, since the retrieval is
    a linearisation of it."""
    from .config import DEFAULT_CANDIDATES
    from .model import V2HT
    from .ranking import agreements

    if not isinstance(model, V2HT) or not len(rows):
        return None
    model.eval()
    ns = sorted({min(DEFAULT_CANDIDATES // 2, data.n_hashtags), min(DEFAULT_CANDIDATES, data.n_hashtags)})
    batches = (b.to(device) for b in data.eval_batches("valid", batch_size, rows))
    got = agreements(model, batches, ns)
    return {"k": 10, "posts": int(len(rows)), "hashtags": int(data.n_hashtags),
            "agreement": {str(n): round(v, 4) for n, v in got.items()}}


def _write_metrics(run_dir: Path, history: list[dict], best_epoch: int, stopped: bool, status: str,
                   test: dict | None = None, baselines: dict | None = None, two_stage: dict | None = None) -> dict:
    best = next((h for h in history if h["epoch"] == best_epoch), None)
    out = {"status": status, "select_metric": SELECT_METRIC, "best_epoch": best_epoch,
           "best_valid": best["valid"] if best else None, "stopped_early": stopped,
           "epochs_trained": len(history), "history": history}
    if test is not None:
        out["test"] = test
    if baselines is not None:
        out["baselines"] = baselines
    if two_stage is not None:
        out["two_stage"] = two_stage
    runs.write_json(run_dir / runs.METRICS, out)
    runs.save_curve(history, run_dir / runs.CURVE)
    return out
