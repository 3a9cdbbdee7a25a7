"""Ranking metrics against rankings worked out by hand (docs/metrics.md)."""
import math

import pytest
import torch

from v2ht_kg.gnn.metrics import MetricAccumulator, longtail_truth, ranking_metrics, topk_ids

# post 0 ranks 1, 3, 5, 2, 4, 0; post 1 ranks 0, 4, 5, 2, 1, 3
SCORES = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.2, 0.5],
                       [0.7, 0.1, 0.2, 0.0, 0.6, 0.3]])
TRUTH = [[3, 0], [0]]


def test_topk_order():
    assert topk_ids(SCORES, 3).tolist() == [[1, 3, 5], [0, 4, 5]]


def test_hand_computed_k1_k3():
    m = ranking_metrics(SCORES, TRUTH, ks=(1, 3))
    # K=1: post 0 misses, post 1 hits at rank 1
    assert m["recall@1"] == pytest.approx(0.5)
    assert m["hit@1"] == pytest.approx(0.5)
    assert m["ndcg@1"] == pytest.approx(0.5)
    # K=3: post 0 finds tag 3 at rank 2 of its 2 true tags; post 1 is perfect
    dcg0 = 1 / math.log2(3)
    idcg0 = 1 + 1 / math.log2(3)
    assert m["recall@3"] == pytest.approx((0.5 + 1) / 2)
    assert m["hit@3"] == pytest.approx(1.0)
    assert m["ndcg@3"] == pytest.approx((dcg0 / idcg0 + 1) / 2)
    assert m["n_posts"] == 2


def test_recall_differs_from_hit_rate():
    scores = torch.arange(20, 0, -1).float()[None, :]  # ranks ids 0..19 in order
    m = ranking_metrics(scores, [[0, 15, 16]], ks=(5, 10))
    assert m["hit@5"] == 1.0
    assert m["recall@5"] == pytest.approx(1 / 3)
    # IDCG over min(|truth|, K) = 3 ideal hits
    assert m["ndcg@5"] == pytest.approx(1 / (1 + 1 / math.log2(3) + 1 / math.log2(4)))


def test_ndcg_ideal_is_one_and_idcg_caps_at_k():
    scores = torch.arange(12, 0, -1).float()[None, :]
    m = ranking_metrics(scores, [list(range(12))], ks=(5, 10))  # more true tags than K
    assert m["ndcg@5"] == pytest.approx(1.0)
    assert m["ndcg@10"] == pytest.approx(1.0)
    assert m["recall@10"] == pytest.approx(10 / 12)


def test_ties_break_by_lower_id():
    assert topk_ids(torch.zeros(1, 5), 3).tolist() == [[0, 1, 2]]


def test_top_ids_input_and_k_beyond_h():
    top = torch.tensor([[2, 0, 1]])
    m = ranking_metrics(top, [[1]], ks=(5,), is_top=True)
    assert m["recall@5"] == 1.0
    assert m["ndcg@5"] == pytest.approx(1 / math.log2(4))


def test_longtail_protocol_drops_frequent_tags_and_empty_posts():
    longtail = torch.tensor([False, False, False, True, False, False])
    lt = longtail_truth(TRUTH, longtail)
    assert lt == [[3], []]
    m = ranking_metrics(SCORES, lt, ks=(3,))
    assert m["n_posts"] == 1  # post 1 keeps no long-tail tag
    assert m["recall@3"] == 1.0
    assert m["ndcg@3"] == pytest.approx(1 / math.log2(3))  # found at rank 2, one ideal hit


def test_accumulator_over_batches_equals_one_shot():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(9, 40, generator=g)
    truth = [torch.randperm(40, generator=g)[: 1 + i % 4].tolist() for i in range(9)]
    whole = ranking_metrics(scores, truth)
    acc = MetricAccumulator()
    for i in range(0, 9, 4):
        acc.add(topk_ids(scores[i:i + 4], 10), truth[i:i + 4])
    parts = acc.result()
    for k, v in whole.items():
        assert parts[k] == pytest.approx(v)
