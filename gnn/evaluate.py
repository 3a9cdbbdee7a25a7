"""Evaluation of a model or a finished run, and recommendations from a run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from ..kg.errors import DataError
from .data import TrainingData
from .metrics import KS, MetricAccumulator, longtail_truth, topk_ids


class Run(NamedTuple):
    model: torch.nn.Module
    cfg: dict
    data: TrainingData


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, data: TrainingData, split: str = "test", *, device: str = "cpu",
                   batch_size: int = 256, chunk: int = 4096, ks: Sequence[int] = KS,
                   rows: np.ndarray | None = None) -> dict[str, dict]:
    """{"overall": metrics, "longtail": metrics}: full ranking of every hashtag."""
    was_training = model.training
    model.eval()
    acc, acc_lt = MetricAccumulator(ks), MetricAccumulator(ks)
    try:
        for batch in data.eval_batches(split, batch_size, rows):
            scores = model.score_all(batch.to(device), chunk=chunk).float().cpu()
            top = topk_ids(scores, max(ks))
            truth = data.truth(batch.rows.tolist())
            acc.add(top, truth)
            acc_lt.add(top, longtail_truth(truth, data.longtail))
    finally:
        model.train(was_training)
    return {"overall": acc.result(), "longtail": acc_lt.result()}


def evaluate_run(run_dir: Path, split: str = "test", *, device: str = "cpu", batch_size: int = 256,
                 dataset_dir: Path | None = None, baselines: bool = False) -> dict:
    """Reopen a run's best model and evaluate it on ``split``."""
    from .runs import load_run

    if split not in ("train", "valid", "test"):
        raise DataError(f"split must be train, valid or test, not {split!r}")
    run = load_run(run_dir, dataset_dir=dataset_dir, device=device)
    out: dict[str, Any] = {"split": split, "variant": run.cfg.get("variant"),
                           **evaluate_model(run.model, run.data, split, device=device, batch_size=batch_size)}
    if baselines:
        from .baselines import Baselines

        out["baselines"] = Baselines(run.data).evaluate(split)
    return out


@torch.no_grad()
def _top(run: Run, batch, k: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    scores = run.model.score_all(batch.to(device)).float().cpu()
    ids = topk_ids(scores, k)
    return torch.sigmoid(scores.gather(1, ids)), ids


def recommend(run: Run, post_rows: Sequence[int] | None = None, *, text: str | None = None,
              tokens: Sequence[str] | None = None, user: str | int | None = None, k: int = 10,
              features: dict[str, np.ndarray] | None = None, device: str = "cpu"):
    """Top-k (hashtag name, probability).

    With ``post_rows``: one list per row of the prepared data set. Otherwise a
    new post from ``text`` (normalised like the data) or ``tokens``, by
    ``user`` (a user name or index; an unknown user gets the no-history
    features, as at training time). Returns one list for a new post.
    """
    data, names = run.data, [h.name for h in run.data.ds.hashtags]
    if k < 1:
        raise DataError(f"k must be at least 1, not {k}")
    run.model.eval()
    if post_rows is not None:
        rows = np.asarray(list(post_rows), dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= data.n_posts):
            raise DataError(f"post rows must lie in 0..{data.n_posts - 1}")
        out = []
        for i in range(0, len(rows), 256):
            p, ids = _top(run, data.batch(rows[i:i + 256]), k, device)
            out.extend([[(names[j], float(s)) for j, s in zip(r_ids.tolist(), r_p.tolist())]
                        for r_ids, r_p in zip(ids, p)])
        return out
    if tokens is None:
        if text is None:
            raise DataError("give post rows, a text or tokens")
        from ..kg.normalize import Normalizer

        tokens = Normalizer().tokens(text)
    uid: int | None
    if user is None or isinstance(user, int):
        uid = user
    else:
        uid = data.ds.user_index.get(str(user))
    p, ids = _top(run, data.new_post_batch(list(tokens), uid, features), k, device)
    return [(names[j], float(s)) for j, s in zip(ids[0].tolist(), p[0].tolist())]
