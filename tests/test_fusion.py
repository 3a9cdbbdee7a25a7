"""The fusion head's features: a tag without any use becomes rankable
through its typed-graph neighbours, and the head trains and ranks."""
import numpy as np
import pytest
import torch

from handmade import CAT_POSTS, CAT_TAGS, graph, write_dataset
from v2ht_kg.gnn.data import TrainingData
from v2ht_kg.gnn.fusion import (FusionHead, SplitFeatures, evaluate_head, feature_names, fit_fusion, two_hop,
                                type_adjacency)
from v2ht_kg.gnn.history import History
from v2ht_kg.gnn.protocol import known_rows

TAGS = ["etsy", "handweavers of etsy", "knit", "car", "race"]
# 'handweavers of etsy' has no training use at all; it is a cp neighbour of 'etsy'
POSTS = ([("train", 0, ["etsy"], "my shop"), ("train", 0, ["etsy", "knit"], "my shop wool"),
          ("train", 1, ["car"], "fast"), ("train", 1, ["car", "race"], "fast track")]
         + [("valid", i % 2, [["etsy"], ["car"]][i % 2], "new") for i in range(8)]
         + [("test", 0, ["handweavers of etsy"], "loom"), ("test", 1, ["race"], "lap")])
EDGES = [("etsy", "handweavers of etsy", "cp"), ("car", "race", "co")]


@pytest.fixture()
def data(tmp_path):
    write_dataset(tmp_path / "d", TAGS, POSTS)
    return TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)


def test_zero_shot_tag_is_rankable_only_through_the_graph(data):
    adj = type_adjacency(graph(TAGS, EDGES), len(TAGS))
    hist = History(data, known_rows(data, "test", "strict"))
    row = np.array([data.rows["test"][0]])
    zs = TAGS.index("handweavers of etsy")
    no_graph = SplitFeatures(hist, row, feature_names(["memory", "copy", "zeroshot"]), adj)
    x = no_graph.block(np.array([0]))[0]
    assert torch.count_nonzero(x[zs]) == 0  # nothing tells it from any unused tag
    with_graph = SplitFeatures(hist, row, feature_names(["memory", "copy", "zeroshot", "graph"]), adj)
    x = with_graph.block(np.array([0]))[0]
    g = with_graph.names.index("g_cp_hist")
    assert x[zs, g] > 0 and x[TAGS.index("car"), g] == 0
    # a head that weighs the propagated memory ranks it right after the user's own tags
    head = FusionHead(len(with_graph.names))
    with torch.no_grad():
        for p in head.parameters():
            p.zero_()
        head.linear.weight[0, with_graph.names.index("hist_share")] = 2.0
        head.linear.weight[0, g] = 1.5
    # etsy 2·2/3; the zero-shot tag 1.5 · (its one cp neighbour's share 2/3); knit 2·1/3
    order = torch.argsort(head(with_graph.block(np.array([0])))[0], descending=True).tolist()
    assert order[:3] == [TAGS.index("etsy"), zs, TAGS.index("knit")]
    res = evaluate_head(head, with_graph, data)
    assert res["overall"]["recall@5"] == 1.0


def test_fit_learns_the_history_signal(data):
    adj = type_adjacency(graph(TAGS, EDGES), len(TAGS))
    names = feature_names(["memory", "copy", "zeroshot", "graph", "pop"])
    valid = SplitFeatures(History(data, known_rows(data, "valid", "deployed")), data.rows["valid"], names, adj)
    head, fit = fit_fusion(valid, data, seed=0, max_epochs=30, patience=None)
    assert fit["epochs"] >= 1 and len(fit["holdout_curve"]) == 30
    res = evaluate_head(head, valid, data)
    assert res["overall"]["recall@5"] == 1.0  # every valid post repeats its author's tag
    sub = valid.subset(names[:3])
    assert sub.block(np.array([0])).shape[-1] == 3
    assert torch.equal(sub.block(np.array([1])), valid.block(np.array([1]))[..., :3])


def test_patience_stops_after_epochs_without_a_better_holdout(data):
    names = feature_names(["memory", "copy", "zeroshot", "pop"])
    valid = SplitFeatures(History(data, known_rows(data, "valid", "deployed")), data.rows["valid"], names, None)
    _, fit = fit_fusion(valid, data, seed=0, max_epochs=30, patience=2)
    curve = fit["holdout_curve"]
    assert len(curve) == fit["epochs"] + 2 < 30
    assert max(curve[fit["epochs"]:]) <= curve[fit["epochs"] - 1]


def test_the_head_kept_averages_the_best_epochs(data):
    from v2ht_kg.gnn.fusion import _train

    names = feature_names(["memory", "copy", "zeroshot", "pop"])
    valid = SplitFeatures(History(data, known_rows(data, "valid", "deployed")), data.rows["valid"], names, None)
    head, fit = fit_fusion(valid, data, seed=3, max_epochs=6, patience=None, average=3)
    curve = fit["holdout_curve"]
    assert len(fit["averaged_epochs"]) == 3 and fit["epochs"] in fit["averaged_epochs"]
    assert min(curve[e - 1] for e in fit["averaged_epochs"]) >= max(
        [c for e, c in enumerate(curve, 1) if e not in fit["averaged_epochs"]])
    # the same seed replays the same epochs: the kept head is their mean
    states = []
    cut = int(round(len(valid.rows) * 0.8))
    _train([(valid, data.truth(valid.rows), np.arange(cut))], 6, 3,
           on_epoch=lambda ep, h: states.append({k: v.clone() for k, v in h.state_dict().items()}))
    for k, v in head.state_dict().items():
        mean = sum(states[e - 1][k] for e in fit["averaged_epochs"]) / 3
        assert torch.allclose(v, mean, atol=1e-6), k
    one, fit1 = fit_fusion(valid, data, seed=3, max_epochs=6, patience=None, average=1)
    assert fit1["averaged_epochs"] == [fit1["epochs"]] == [int(np.argmax(curve)) + 1]
    assert not torch.equal(one.mlp[0].weight, head.mlp[0].weight)


def test_training_window_knows_only_the_training_posts_before_it(data):
    from v2ht_kg.gnn.hybrid import HybridContext

    groups = ["memory", "copy", "zeroshot", "graph", "pop"]
    ctx = HybridContext(data, graph(TAGS, EDGES))
    window = ctx.window(groups)
    # at most half the 4 training posts: the last two, user 1's car posts
    assert window.rows.tolist() == [2, 3]
    car, share = TAGS.index("car"), window.names.index("hist_share")
    # user 1 has no earlier post, so the window's own tags are not in its memory
    assert window.block(np.array([0, 1]))[:, car, share].tolist() == [0.0, 0.0]
    valid = ctx.features("valid", "deployed", groups)
    user1 = int(np.flatnonzero(data.users[valid.rows] == 1)[0])
    assert valid.block(np.array([user1]))[0, car, share] > 0
    head, fit = fit_fusion(valid, data, extra=window, seed=0, max_epochs=3, patience=None)
    assert fit["window_posts"] == 2
    assert ctx.window(groups + ["neural"]).names == window.names  # never V2HT's in-sample score


def test_latest_last_orders_by_time_then_row():
    from types import SimpleNamespace

    from v2ht_kg.gnn.hybrid import latest_last

    times = ["2011-02-03", None, "2011-01-30", "2011-02-03", "2011-01-01"]
    data = SimpleNamespace(ds=SimpleNamespace(posts=[SimpleNamespace(time=t) for t in times]))
    assert latest_last(data, np.array([3, 0, 2, 1, 4])).tolist() == [1, 4, 2, 0, 3]
    untimed = SimpleNamespace(ds=SimpleNamespace(posts=[SimpleNamespace(time=None)] * 3))
    assert latest_last(untimed, np.array([2, 0, 1])).tolist() == [0, 1, 2]


def test_graph_semantics_give_an_unused_tag_its_neighbours_meaning(data):
    """graphsem: a tag with no use has no centroid of its own; through its cp
    neighbour it takes that neighbour's, so a post like the neighbour's
    posts scores it, and a tag without typed neighbours stays at zero."""
    adj = type_adjacency(graph(TAGS, EDGES), len(TAGS))
    hist = History(data, known_rows(data, "test", "strict"))
    n = len(data.ds.posts)
    emb = np.zeros((n, 4), dtype=np.float32)
    for p in data.ds.posts:  # the etsy posts point one way, the car posts another
        emb[p.row] = [1, 0, 0, 0] if {"etsy", "handweavers of etsy"} & {TAGS[t] for t in p.tags} else [0, 1, 0, 0]
    tag_emb = np.eye(len(TAGS), 4, dtype=np.float32)
    row = np.array([data.rows["test"][0]])  # an etsy-like post
    names = feature_names(["tagsem", "graphsem"])
    f = SplitFeatures(hist, row, names, adj, emb=emb, tag_emb=tag_emb)
    x = f.block(np.array([0]))[0]
    zs, etsy, car = TAGS.index("handweavers of etsy"), TAGS.index("etsy"), TAGS.index("car")
    assert x[zs, names.index("sem_proto")] == 0  # no known use: no centroid
    assert x[zs, names.index("g_cp_proto")] == pytest.approx(1.0)  # etsy's centroid, through cp
    assert x[etsy, names.index("g_cp_proto")] == pytest.approx(0.0)  # etsy's neighbour has no use either
    assert x[car, names.index("g_cp_proto")] == 0 and x[car, names.index("g_ss_proto")] == 0  # co is not typed
    assert x[zs, names.index("g_cp_tag")] == pytest.approx(float(tag_emb[etsy] @ emb[row[0]]))
    with pytest.raises(Exception, match="sentence embeddings"):
        SplitFeatures(hist, row, names, adj, emb=emb)  # the tags' word embeddings are missing


def test_two_hops_reach_a_tag_one_hop_cannot(tmp_path):
    """graph2: knit is two typed hops from etsy (cp, then ss, through the
    unused 'handweavers of etsy'): the author's etsy reaches it there and
    not in the one-hop group; a co edge is no hop, and a tag is not its
    own two-hop neighbour."""
    edges = EDGES + [("handweavers of etsy", "knit", "ss")]
    posts = POSTS[:4] + [("valid", 0, ["etsy"], "my shop"), ("test", 0, ["knit"], "loom")]
    write_dataset(tmp_path / "d", TAGS, posts)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    adj = type_adjacency(graph(TAGS, edges), len(TAGS))
    a2 = two_hop(adj).T.toarray()  # row h: h's two-hop neighbours
    etsy, zs, knit, car, race = (TAGS.index(t) for t in TAGS)
    assert a2[knit, etsy] == pytest.approx(1.0) and a2[etsy, knit] == pytest.approx(1.0)
    assert np.diag(a2).sum() == 0 and a2[race].sum() == 0 and a2[car].sum() == 0
    hist = History(data, known_rows(data, "test", "strict"))
    user0 = data.rows["test"][:1]
    names = feature_names(["memory", "graph", "graph2"])
    emb = np.zeros((len(data.ds.posts), 4), dtype=np.float32)
    x = SplitFeatures(hist, user0, names, adj, emb=emb).block(np.array([0]))[0]
    share = x[:, names.index("hist_share")]
    assert x[knit, names.index("g2_hist")] == pytest.approx(float(share[etsy]))  # through the unused tag
    assert all(x[knit, names.index(f"g_{t}_hist")] == 0 for t in ("cp", "ss", "po"))  # one hop: only the unused tag
    assert x[race, names.index("g2_hist")] == 0


def test_results_measure_graph_semantics_where_the_minilm_groups_are_on(tmp_path, monkeypatch):
    """`results --table headline` fits the opt-in graphsem row beside the
    default where MiniLM's groups are in the default, and not elsewhere."""
    from v2ht_kg.gnn import benchmark, hybrid
    from v2ht_kg.kg.dataset import PreparedDataset

    ds = PreparedDataset(write_dataset(tmp_path / "d", TAGS, POSTS))
    for base, expect in ((("memory", "graph", "semantic", "tagsem"), True), (("memory", "graph"), False)):
        monkeypatch.setattr(hybrid, "dataset_default_groups", lambda _ds, note=None, _b=base: _b)
        rows = benchmark.ablations(ds, neural_row=False)
        assert (benchmark.GRAPHSEM_ROW in rows) == expect
        if expect:
            assert rows[benchmark.GRAPHSEM_ROW] == base + ("graphsem",)
        assert rows["V2HT-KG (default)"] == base and all("graphsem" not in g for k, g in rows.items()
                                                          if k != benchmark.GRAPHSEM_ROW)


def test_category_group_reads_the_lift_and_a_new_post_has_none(tmp_path):
    write_dataset(tmp_path / "d", CAT_TAGS, CAT_POSTS)
    data = TrainingData.build(tmp_path / "d", None, seed=0, w2v_dim=8)
    hist = History(data, known_rows(data, "test", "deployed"))
    rows = data.rows["test"]
    names = feature_names(["pop", "category"])
    assert names[-3:] == ["cat_1", "cat_2", "cat_3"]
    f = SplitFeatures(hist, rows, names, None)
    lift = hist.category_lift([data.categories[r] for r in rows])
    for i, name in enumerate(names[-3:]):
        col = f.block(np.arange(len(rows)))[..., names.index(name)].numpy()
        assert np.allclose(col, lift[i].toarray(), atol=2e-3)  # float16 storage
    assert f.block(np.arange(1))[0, :, names.index("cat_1")].argmax() == 0  # soup leads food > cooking
    new = SplitFeatures(hist, None, names, None, query=([["hot", "bowl"]], np.array([0])))
    assert not new.block(np.arange(1))[..., -3:].any()
    # ... unless it names its path (recommend --category): then the same lift as a known post's
    named = SplitFeatures(hist, None, names, None, query=([["hot", "bowl"]], np.array([0])),
                          categories=[["food", "cooking"]])
    assert torch.equal(named.block(np.arange(1))[..., -3:], f.block(np.arange(1))[..., -3:])
