"""The new-to-user protocol (#HowYouTagTweets): candidate lists on a tiny
hand-made set, their freezing on disk, and RankLib's list metrics."""
import json

import numpy as np
import pytest
import torch

from handmade import write_dataset
from v2ht_kg.gnn.data import TrainingData
from v2ht_kg.gnn.newuser import NEGATIVES, build_lists, evaluate_new_to_user, frozen_lists, list_metrics

TAGS = ["old", "fresh", "rare", "other", "pool"]
# user 0 used 'old' before the test period and uses 'old' + 'fresh' in it;
# 'fresh' has 5 context posts (3 known, 2 other users' test posts), 'rare' only 2.
POSTS = ([("train", 0, ["old"], "a"), ("train", 1, ["fresh"], "b"), ("train", 1, ["fresh", "pool"], "b"),
          ("valid", 2, ["fresh", "pool"], "c"), ("train", 2, ["pool", "other"], "c"), ("train", 1, ["pool", "other"], "d"),
          ("train", 2, ["other"], "d"), ("train", 2, ["other"], "e"), ("train", 1, ["rare"], "e")]
         + [("test", 0, ["old", "fresh"], "a b"), ("test", 0, ["rare"], "e"), ("test", 1, ["fresh", "pool"], "b"),
            ("test", 2, ["fresh", "other"], "c"), ("test", 1, ["other"], "x")])


@pytest.fixture()
def data(tmp_path):
    write_dataset(tmp_path / "data", TAGS, POSTS)
    return TrainingData.build(tmp_path / "data", None, seed=0, w2v_dim=8)


def test_candidate_lists(data):
    lists = {x["user"]: x for x in build_lists(data, "deployed", seed=0)}
    fresh, pool, other = (TAGS.index(t) for t in ("fresh", "pool", "other"))
    # user 0: 'old' is not new, 'rare' lacks context; 'fresh' is the one positive
    assert lists[0]["pos"] == [fresh]
    assert len(lists[0]["neg"]) == NEGATIVES
    # negatives: test-period tags user 0 never used, with enough context
    assert set(lists[0]["neg"]) <= {pool, other}
    # user 1 used 'fresh' and 'pool' before: nothing new with context except none
    assert 1 not in lists or all(t not in (fresh, pool) for t in lists[1]["pos"])
    # deterministic per seed
    assert build_lists(data, "deployed", seed=0) == build_lists(data, "deployed", seed=0)
    assert build_lists(data, "deployed", seed=0) != build_lists(data, "deployed", seed=1)


def test_lists_are_frozen_on_disk(data, tmp_path):
    a = frozen_lists(data, "deployed", 3, tmp_path / "eval")
    path = tmp_path / "eval" / "new-to-user-deployed-seed3.json"
    d = json.loads(path.read_text())
    assert d["lists"] == a and d["fingerprint"] == data.ds.fingerprint
    d["lists"][0]["neg"] = d["lists"][0]["neg"][:1]  # what is on disk is what is used
    path.write_text(json.dumps(d))
    assert frozen_lists(data, "deployed", 3, tmp_path / "eval")[0]["neg"] == d["lists"][0]["neg"]


def test_ranklib_metrics_by_hand():
    # ranked: pos, neg, pos, neg, neg, neg
    scores = np.array([6.0, 4.0, 5.0, 3.0, 2.0, 1.0])
    rel = np.array([1.0, 1.0, 0, 0, 0, 0])
    ap, p5, n5 = list_metrics(scores, rel)
    assert ap == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert p5 == pytest.approx(2 / 5)
    dcg = 1 + 1 / np.log2(4)
    assert n5 == pytest.approx(dcg / (1 + 1 / np.log2(3)))
    assert list_metrics(np.array([1.0, 2.0]), np.array([0.0, 1.0]))[1] == pytest.approx(1 / 2)  # P@5 over 2 items


def test_model_scores_per_user_max(data, tmp_path):
    test = data.rows["test"]
    fresh = TAGS.index("fresh")
    s = torch.zeros(len(test), data.n_hashtags)
    s[1, fresh] = 9.0  # user 0's second test post: the best over the user's posts counts
    out = evaluate_new_to_user(data, s, "deployed", tmp_path / "eval", seeds=(0, 1))
    assert out["model"]["map"]["mean"] == pytest.approx(1.0)
    assert out["random"]["map"]["mean"] < 1.0 and len(out["model"]["map"]["per_seed"]) == 2
