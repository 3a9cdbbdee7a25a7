"""Full-ranking metrics (definitions in docs/metrics.md).

Every hashtag is ranked for every evaluated post; nothing is excluded, since a
test post has no already-known hashtags. Recall@K is the standard
|top-K ∩ truth| / |truth|; HitRate@K is 1 when any true hashtag is in the
top K (the paper's literal wording); NDCG@K uses binary relevance with the
ideal DCG over min(|truth|, K) hits. All are averaged over posts.
"""
from __future__ import annotations

from typing import Sequence

import torch

KS = (5, 10)


def topk_ids(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(P, k) hashtag ids by descending score; ties go to the lower id so the
    ranking is deterministic (torch.topk alone does not promise an order)."""
    k = min(k, scores.shape[1])
    # a stable descending sort breaks ties by position, i.e. by hashtag id
    return torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]


def _pad_truth(truth: Sequence[Sequence[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    L = max([len(t) for t in truth] + [1])
    out = torch.full((len(truth), L), -1, dtype=torch.long)
    for i, t in enumerate(truth):
        if len(t):
            out[i, :len(t)] = torch.as_tensor(list(t), dtype=torch.long)
    n = torch.tensor([len(t) for t in truth], dtype=torch.long)
    return out.to(device), n.to(device)


def metric_sums(top: torch.Tensor, truth: Sequence[Sequence[int]], ks: Sequence[int] = KS,
                extra: Sequence[int] | None = None) -> dict[str, float]:
    """Sums over posts (not means) of every metric, plus ``n`` the number of posts.
    ``top``: (P, >=max(ks)) ranked ids; ``truth``: P lists of distinct true ids;
    ``extra``: per post, true tags outside the vocabulary (never ranked, so
    always misses: they add to |truth| in Recall and to the ideal DCG).
    Posts with no true tag at all are skipped."""
    extra = [0] * len(truth) if extra is None else [int(x) for x in extra]
    keep = [i for i, t in enumerate(truth) if len(t) + extra[i]]
    if len(keep) < len(truth):
        top = top[keep]
        truth = [truth[i] for i in keep]
        extra = [extra[i] for i in keep]
    out: dict[str, float] = {"n": float(len(truth))}
    if not truth:
        for k in ks:
            out[f"recall@{k}"] = out[f"hit@{k}"] = out[f"ndcg@{k}"] = 0.0
        return out
    tr, n = _pad_truth(truth, top.device)
    n = n + torch.tensor(extra, dtype=torch.long, device=top.device)
    hits = (top[:, :, None] == tr[:, None, :]).any(dim=2).double()  # (P, K) -1 never matches an id
    disc = 1.0 / torch.log2(torch.arange(top.shape[1], device=top.device, dtype=torch.double) + 2.0)
    for k in ks:
        h = hits[:, :k]
        out[f"recall@{k}"] = float((h.sum(1) / n.double()).sum())
        out[f"hit@{k}"] = float((h.sum(1) > 0).double().sum())
        dcg = (h * disc[: h.shape[1]]).sum(1)
        ideal_n = torch.clamp(n, max=k)
        cum = torch.cat([torch.zeros(1, device=top.device, dtype=torch.double), disc[:k].cumsum(0)])
        # when fewer than k hashtags exist, the ideal list is also cut at the list length
        idcg = cum[torch.clamp(ideal_n, max=h.shape[1])]
        out[f"ndcg@{k}"] = float((dcg / idcg).sum())
    return out


def ranking_metrics(scores_or_top: torch.Tensor, truth: Sequence[Sequence[int]], ks: Sequence[int] = KS,
                    is_top: bool = False, extra: Sequence[int] | None = None) -> dict[str, float]:
    """Means over posts. Pass a (P, H) score matrix, or (P, K) ranked ids with ``is_top=True``."""
    top = scores_or_top if is_top else topk_ids(scores_or_top, max(ks))
    return MetricAccumulator(ks).add(top, truth, extra).result()


def longtail_truth(truth: Sequence[Sequence[int]], longtail: torch.Tensor) -> list[list[int]]:
    """The long-tail protocol (§4.3.2): frequent tags removed from each truth;
    posts left with none drop out (metric_sums skips empty truths). Tags outside
    the vocabulary are rarer than any long-tail tag, so their ``extra`` count
    stays as it is (see PairedAccumulator)."""
    lt = longtail.tolist()
    return [[t for t in ts if lt[t]] for ts in truth]


class MetricAccumulator:
    """Streams batches: the evaluator never holds the (P, H) matrix of a whole split."""

    def __init__(self, ks: Sequence[int] = KS):
        self.ks = tuple(ks)
        self.sums: dict[str, float] = {}

    def add(self, top: torch.Tensor, truth: Sequence[Sequence[int]],
            extra: Sequence[int] | None = None) -> "MetricAccumulator":
        for key, v in metric_sums(top, truth, self.ks, extra).items():
            self.sums[key] = self.sums.get(key, 0.0) + v
        return self

    def result(self) -> dict[str, float]:
        n = self.sums.get("n", 0.0)
        out = {key: (v / n if n else 0.0) for key, v in self.sums.items() if key != "n"}
        out["n_posts"] = int(n)
        return dict(sorted(out.items()))


class PairedAccumulator:
    """Overall and long-tail metrics of one ranking, side by side; ``extra`` is
    each post's count of out-of-vocabulary true tags (misses in both)."""

    def __init__(self, longtail: torch.Tensor, ks: Sequence[int] = KS):
        self.longtail = longtail
        self.overall, self.tail = MetricAccumulator(ks), MetricAccumulator(ks)
        self.k = max(ks)

    def add_scores(self, scores: torch.Tensor, truth, extra=None) -> "PairedAccumulator":
        return self.add(topk_ids(scores, self.k), truth, extra)

    def add(self, top: torch.Tensor, truth, extra=None) -> "PairedAccumulator":
        self.overall.add(top, truth, extra)
        self.tail.add(top, longtail_truth(truth, self.longtail), extra)
        return self

    def result(self) -> dict[str, dict]:
        return {"overall": self.overall.result(), "longtail": self.tail.result()}
