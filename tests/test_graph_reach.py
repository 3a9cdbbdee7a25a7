"""The graph-reach count (gnn/graph_reach.py) on a hand-made case."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from v2ht_kg.gnn.graph_reach import reach_counts, within_two_hops


def test_misses_are_reachable_only_through_a_typed_neighbour_a_source_points_at():
    H = 6
    longtail = np.array([False, True, True, True, True, False])
    # typed edges: 1-0, 2-5, 3 isolated, 4-5
    e = [(1, 0), (2, 5), (4, 5)]
    r = [a for a, b in e] + [b for a, b in e]
    c = [b for a, b in e] + [a for a, b in e]
    typed = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(H, H))
    truth = [[1, 0], [2, 3], [4], [5]]  # post 3 has no long-tail use
    top = np.array([[0, 5], [1, 0], [4, 1], [0, 1]])
    hist = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0],   # post 0: tag 0, the neighbour of missed 1
                                   [0, 0, 0, 0, 0, 0],
                                   [0, 0, 0, 0, 0, 0],
                                   [0, 0, 0, 0, 0, 1]], dtype=float))
    knn = sp.csr_matrix((4, H))
    out = reach_counts(truth, longtail, top, {"history": hist, "knn": knn}, typed)
    assert out["positives"] == 4  # 1, 2, 3, 4
    assert out["hits"] == 1  # tag 4 in post 2's top
    assert out["misses"] == 3
    assert out["misses_with_typed_edge"] == 2  # 1 and 2; 3 is isolated
    # 1: neighbour 0 in post 0's history and top; 2: neighbour 5 nowhere for post 1
    assert out["misses_reachable"] == {"history": 1, "knn": 0, "top": 1, "any": 1}
    assert out["longtail_tags"] == 4 and out["longtail_tags_with_typed_edge"] == 3
    assert out["hits_the_bar_adds"] == 1 and out["share_of_reachable_misses_needed"] == 1.0


def test_two_hops_reach_a_miss_whose_neighbour_nothing_points_at():
    """Missed tag 2's only neighbour, 5, is pointed at by nothing; 5's other
    neighbour, 4, is in the post's history: two hops reach 2, one does not."""
    H = 6
    longtail = np.array([False, True, True, True, True, False])
    e = [(2, 5), (4, 5)]
    r = [a for a, b in e] + [b for a, b in e]
    c = [b for a, b in e] + [a for a, b in e]
    typed = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(H, H))
    two = within_two_hops(typed)
    assert sorted(two[2].indices.tolist()) == [4, 5] and two.diagonal().sum() == 0
    assert sorted(two[3].indices.tolist()) == []
    truth, top = [[2]], np.array([[0, 1]])
    hist = sp.csr_matrix(np.array([[0, 0, 0, 0, 1, 0]], dtype=float))
    one_hop = reach_counts(truth, longtail, top, {"history": hist}, typed)
    two_hop = reach_counts(truth, longtail, top, {"history": hist}, two)
    assert one_hop["misses_reachable"]["any"] == 0 and two_hop["misses_reachable"]["any"] == 1
