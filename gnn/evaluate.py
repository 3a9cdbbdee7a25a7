"""Evaluation of a model or a finished run, and recommendations from a run."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch

from ..kg.errors import DataError
from .data import TrainingData
from .metrics import KS, PairedAccumulator, topk_ids


# pairs an evaluation must score before the compiled kernel (a compile of up to
# half a minute, about 1.6x faster after) is used: about a minute of eager work
FUSE_PAIRS = 50_000_000


class Run(NamedTuple):
    model: torch.nn.Module
    cfg: dict
    data: TrainingData


def check_tail_boost(boost: float) -> float:
    import math

    if not (isinstance(boost, (int, float)) and math.isfinite(boost) and boost >= 0):
        raise DataError(f"--tail-boost must be a number at least 0, not {boost!r}")
    return float(boost)


def tail_offset(hist, boost: float) -> torch.Tensor | None:
    """boost · log(1 + n(h)) per hashtag, n(h) its uses in the posts ``hist``
    (gnn.history.History) knows; subtracted from a post's scores it ranks
    rarer tags higher (logit adjustment, Menon et al., ICLR'21). None for 0."""
    if check_tail_boost(boost) == 0:
        return None
    return boost * torch.from_numpy(hist.pop()).float()


def known_history(data: TrainingData, split: str, protocol: str, hybrid=None):
    """The History of the posts known when ``split``'s posts are ranked (the
    fusion head's own, cached, where there is one)."""
    if hybrid is not None:
        return hybrid.ctx.history(split, protocol)
    from .history import History
    from .protocol import known_rows

    return History(data, known_rows(data, split, protocol))


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, data: TrainingData, split: str = "test", *, device: str = "cpu",
                   batch_size: int = 256, chunk: int = 4096, ks: Sequence[int] = KS,
                   rows: np.ndarray | None = None, offset: torch.Tensor | None = None) -> dict[str, dict]:
    """{"overall": metrics, "longtail": metrics}: full ranking of every hashtag
    (by score − ``offset``, when given: tail_offset).
    With V2HT_COMPILE=1, above FUSE_PAIRS (post, hashtag) pairs, the V2HT model
    scores through its compiled kernel (ranking.compile_wanted)."""
    from .model import V2HT

    was_training = model.training
    model.eval()
    acc = PairedAccumulator(data.longtail, ks)
    n_rows = len(data.rows[split]) if rows is None else len(rows)
    from .ranking import compile_wanted

    big = n_rows * data.n_hashtags >= FUSE_PAIRS
    fuse = {"fused": True} if isinstance(model, V2HT) and big and compile_wanted() else {}
    try:
        for batch in data.eval_batches(split, batch_size, rows):
            scores = model.score_all(batch.to(device), chunk=chunk, **fuse).float().cpu()
            if offset is not None:
                scores -= offset
            r = batch.rows.numpy()
            acc.add_scores(scores, data.truth(r.tolist()), data.oov[r])
    finally:
        model.train(was_training)
    return acc.result()


def evaluate_run(run_dir: Path, split: str = "test", *, device: str = "cpu", batch_size: int = 256,
                 dataset_dir: Path | None = None, baselines: bool = False, protocol: str | None = None,
                 sampling_seeds: Sequence[int] = (0, 1, 2, 3, 4), tail_boost: float = 0.0) -> dict:
    """Reopen a run's best model (and fusion head, if any) and evaluate it.
    ``tail_boost``: rank by score − tail_boost · log(1 + known uses) (the
    baselines keep their own ranking).

    ``protocol``: None = the run's own; "deployed"/"strict" must match it
    (the head and the history it scores with were fitted under it);
    "new-to-user" ranks per user the test tags new to that user against
    frozen random negatives (gnn/newuser.py), over ``sampling_seeds``."""
    from .hybrid import HybridScorer, load_hybrid, run_protocol
    from .protocol import PROTOCOLS
    from .runs import load_run

    if split not in ("train", "valid", "test"):
        raise DataError(f"split must be train, valid or test, not {split!r}")
    if protocol is not None and protocol not in PROTOCOLS + ("new-to-user",):
        raise DataError(f"unknown protocol {protocol!r}; choose deployed, strict or new-to-user")
    check_tail_boost(tail_boost)
    run_dir = Path(run_dir)
    run = load_run(run_dir, dataset_dir=dataset_dir, device=device)
    trained = run_protocol(run_dir, run.cfg)
    if protocol in PROTOCOLS and protocol != trained:
        raise DataError(f"this run was trained under the {trained} protocol; evaluate it with --protocol {trained} "
                        f"or train another run with --protocol {protocol}", str(run_dir))
    hybrid = HybridScorer(run, run_dir, device) if load_hybrid(run_dir) is not None else None
    model_name = "hybrid" if hybrid is not None else run.cfg.get("variant")
    ranked = "test" if protocol == "new-to-user" else split
    offset = tail_offset(known_history(run.data, ranked, trained, hybrid), tail_boost) if tail_boost else None
    boost = {"tail_boost": tail_boost} if tail_boost else {}
    if protocol == "new-to-user":
        from .newuser import evaluate_new_to_user

        if hybrid is not None:
            scores = hybrid.split_scores("test")
        else:
            from .hybrid import neural_scores

            scores = neural_scores(run.model, run.data, run.data.rows["test"], device=device)
        if offset is not None:
            scores = scores - offset
        res = evaluate_new_to_user(run.data, scores, trained, Path(run.cfg["dataset_dir"]).parent / "eval",
                                   seeds=sampling_seeds)
        return {"protocol": "new-to-user", "history_protocol": trained, "variant": model_name,
                "sampling_seeds": list(sampling_seeds), **boost, **res}
    if hybrid is not None and split != "train":
        metrics = hybrid.evaluate(split, offset=offset)
    else:
        metrics = evaluate_model(run.model, run.data, split, device=device, batch_size=batch_size, offset=offset)
    out: dict[str, Any] = {"split": split, "protocol": trained, "variant": model_name, **boost, **metrics}
    if baselines and split != "train":
        from .baselines import Baselines

        out["baselines"] = Baselines(run.data, trained).evaluate(split)
    return out


def _top_scores(scores: torch.Tensor, k: int, offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    ids = topk_ids(scores if offset is None else scores - offset, k)
    return torch.softmax(scores.float(), dim=1).gather(1, ids), ids


@torch.no_grad()
def _top(run: Run, batch, k: int, device: str, candidates: int | None = None,
         offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    from .model import V2HT

    if candidates and offset is None and isinstance(run.model, V2HT):
        scores, ids = run.model.recommend(batch.to(device), k, candidates=candidates)
        return torch.sigmoid(scores.float().cpu()), ids.cpu()
    scores = run.model.score_all(batch.to(device)).float().cpu()
    ids = topk_ids(scores if offset is None else scores - offset, k)
    return torch.sigmoid(scores.gather(1, ids)), ids


def recommend(run: Run, post_rows: Sequence[int] | None = None, *, text: str | None = None,
              tokens: Sequence[str] | None = None, user: str | int | None = None, k: int = 10,
              features: dict[str, np.ndarray] | None = None, device: str = "cpu", hybrid=None,
              candidates: int | None = None, categories: Sequence[str] = (), tail_boost: float = 0.0):
    """Top-k (hashtag name, probability).

    With ``post_rows``: one list per row of the prepared data set. Otherwise a
    new post from ``text`` (normalised like the data) or ``tokens``, by
    ``user`` (a user name or index; an unknown user gets the no-history
    features, as at training time). Returns one list for a new post.
    ``hybrid``: a gnn.hybrid.HybridScorer, to rank with the fusion head
    (probabilities are then the head's softmax over all hashtags).
    ``candidates`` = N: the V2HT network ranks in two stages (retrieve N,
    rerank them exactly; gnn/ranking.py); None: the exact full rank. The
    fusion head always scores every hashtag. ``categories``: a new post's
    category path, general first (the fusion head's category group).
    ``tail_boost``: rank by score − tail_boost · log(1 + the tag's known
    uses) (tail_offset; the V2HT network then ranks every hashtag exactly);
    the probabilities returned stay the model's.
    """
    data, names = run.data, [h.name for h in run.data.ds.hashtags]
    if k < 1:
        raise DataError(f"k must be at least 1, not {k}")
    run.model.eval()
    offset = None
    if tail_boost:  # tail_offset checks the value
        protocol = hybrid.protocol if hybrid is not None else str(run.cfg.get("protocol", "deployed"))
        offset = tail_offset(known_history(data, "test", protocol, hybrid), tail_boost)
    if post_rows is not None:
        rows = np.asarray(list(post_rows), dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= data.n_posts):
            raise DataError(f"post rows must lie in 0..{data.n_posts - 1}")
        out = []
        for i in range(0, len(rows), 256):
            if hybrid is not None:
                p, ids = _top_scores(hybrid.score_rows(rows[i:i + 256]), k, offset)
            else:
                p, ids = _top(run, data.batch(rows[i:i + 256]), k, device, candidates, offset)
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
    # the fusion head reads the V2HT network's batch only through its neural feature
    needs_batch = hybrid is None or hybrid.ctx.model is not None
    batch = data.new_post_batch(list(tokens), uid, features) if needs_batch else None
    if hybrid is not None:
        p, ids = _top_scores(hybrid.score_new(list(tokens), uid, batch, text=text, categories=categories), k, offset)
    else:
        p, ids = _top(run, batch, k, device, candidates, offset)
    return [(names[j], float(s)) for j, s in zip(ids[0].tolist(), p[0].tolist())]
