"""Trainer, run folder, resume, load_run, evaluate and recommend, with the
contract's stand-in model (tests/gnn_fixtures.TinyModel); the real V2HT model
gets one short run when gnn/model.py is present."""
import json
import shutil

import pytest

from gnn_fixtures import TinyModel, write_graph, write_prepared
from v2ht_kg.gnn import runs
from v2ht_kg.gnn.evaluate import evaluate_model, evaluate_run, recommend
from v2ht_kg.gnn.trainer import train
from v2ht_kg.kg.errors import DataError

OPTS = {"d_hashtag": 12}
COMMON = dict(batch_size=16, model_factory=TinyModel, model_options=OPTS, patience=10, seed=7)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    write_prepared(root / "data", seed=2)
    graph = write_graph(root / "data", root / "graph.pt")
    events = []
    train(root / "data", graph, root / "run2", epochs=2, progress=events.append, **COMMON)
    return root, graph, events


def test_two_epochs_write_every_run_file(world):
    root, graph, events = world
    run = root / "run2"
    for f in ("config.json", "metrics.json", "curve.png", "word2vec.npz", "checkpoint.pt", "best.pt"):
        assert (run / f).stat().st_size > 0, f
    assert not list(run.glob("*.tmp"))
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["variant"] == "full" and cfg["epochs"] == 2 and cfg["seed"] == 7
    assert cfg["data_fingerprint"] and len(cfg["graph_fingerprint"]) == 32
    assert cfg["model"]["use_propagation"] and cfg["model"]["n_hashtags"] == 30
    m = json.loads((run / "metrics.json").read_text())
    assert m["status"] == "done" and [h["epoch"] for h in m["history"]] == [1, 2]
    assert m["best_epoch"] in (1, 2)
    for part in ("overall", "longtail"):
        assert 0.0 <= m["test"][part]["recall@10"] <= 1.0
    assert set(m["baselines"]) == {"popularity", "user_history", "history_cooc", "knn", "knn_history"}
    assert (run / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2]


def test_resume_continues_exactly(world, tmp_path):
    root, graph, _ = world
    run = tmp_path / "resumed"
    shutil.copytree(root / "run2", run)
    before = json.loads((run / "metrics.json").read_text())["history"]
    events = []
    out = train(None, None, run, epochs=3, resume=True, progress=events.append, model_factory=TinyModel)
    assert events[1] == {"event": "resume", "epoch": 2}
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [3]
    assert out["history"][:2] == before
    straight = train(root / "data", graph, tmp_path / "straight", epochs=3, **COMMON)
    # RNG, optimizer and per-epoch negatives restored: epoch 3 is the uninterrupted one
    assert out["history"][2]["loss"] == pytest.approx(straight["history"][2]["loss"], rel=1e-6)
    assert out["history"][2]["valid"] == pytest.approx(straight["history"][2]["valid"])


def test_existing_run_without_resume_is_refused(world):
    root, graph, _ = world
    with pytest.raises(DataError, match="already holds a run"):
        train(root / "data", graph, root / "run2", epochs=1, **COMMON)


def test_corrupt_checkpoint_is_a_data_error(world, tmp_path):
    root, _, _ = world
    run = tmp_path / "bad"
    shutil.copytree(root / "run2", run)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="corrupt or unsafe checkpoint"):
        train(None, None, run, epochs=3, resume=True, model_factory=TinyModel)
    (run / "best.pt").write_bytes((root / "run2" / "best.pt").read_bytes()[:100])
    with pytest.raises(DataError, match="corrupt or unsafe best model"):
        runs.load_run(run, model_factory=TinyModel)


def test_graph_must_match_the_prepared_hashtags(world, tmp_path):
    root, _, _ = world
    wrong = write_graph(root / "data", tmp_path / "g.pt", names=[f"other{i}" for i in range(30)])
    with pytest.raises(DataError, match="do not match"):
        train(root / "data", wrong, tmp_path / "r", epochs=1, **COMMON)
    with pytest.raises(DataError, match="graph snapshot"):
        train(root / "data", None, tmp_path / "r2", epochs=1, **COMMON)
    # a w/o P variant needs no graph
    out = train(root / "data", None, tmp_path / "r3", epochs=1, variant="wo_p", **COMMON)
    assert out["status"] == "done"


def test_load_run_evaluate_and_recommend(world, tmp_path):
    root, _, _ = world
    run = runs.load_run(root / "run2", model_factory=TinyModel)
    assert not run.model.training
    m = json.loads((root / "run2" / "metrics.json").read_text())
    again = evaluate_model(run.model, run.data, "test")
    assert again["overall"] == pytest.approx(m["test"]["overall"])
    recs = recommend(run, post_rows=[0, 1], k=4)
    assert len(recs) == 2 and len(recs[0]) == 4
    assert [s for _, s in recs[0]] == sorted((s for _, s in recs[0]), reverse=True)
    new = recommend(run, tokens=["w1", "w4"], user="nobody", k=3)
    assert len(new) == 3 and all(isinstance(t, str) and 0 <= s <= 1 for t, s in new)
    with pytest.raises(DataError):
        recommend(run, post_rows=[10_000])


def test_run_from_another_data_set_is_refused(world, tmp_path):
    root, _, _ = world
    other = write_prepared(tmp_path / "other", seed=99)
    with pytest.raises(DataError, match="another data set"):
        runs.load_run(root / "run2", dataset_dir=other, model_factory=TinyModel)


def test_real_v2ht_model_trains_one_epoch(tmp_path):
    pytest.importorskip("v2ht_kg.gnn.model", reason="gnn/model.py not written yet")
    write_prepared(tmp_path / "d", seed=5, n_users=4, posts_per_user=12)
    g = write_graph(tmp_path / "d", tmp_path / "g.pt")
    opts = {"d_hashtag": 16, "d_common": 16, "lstm_hidden": {"visual": 8, "acoustic": 8, "text": 8},
            "mlp_hidden": [16], "user_hidden": 16}
    out = train(tmp_path / "d", g, tmp_path / "run", epochs=1, batch_size=16, model_options=opts)
    assert out["status"] == "done" and out["history"][0]["loss"] > 0
    assert evaluate_run(tmp_path / "run")["overall"] == pytest.approx(out["test"]["overall"])



class _OneNaNStep(TinyModel):
    """TinyModel whose loss is NaN on the third training batch only."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.calls = 0

    def loss(self, batch):
        self.calls += 1
        out = super().loss(batch)
        return out * float("nan") if self.calls == 3 else out


def test_a_non_finite_step_is_skipped_not_applied(tmp_path):
    write_prepared(tmp_path / "d", seed=4)
    g = write_graph(tmp_path / "d", tmp_path / "g.pt")
    out = train(tmp_path / "d", g, tmp_path / "run", epochs=2, **{**COMMON, "model_factory": _OneNaNStep})
    assert [h["skipped_steps"] for h in out["history"]] == [1, 0]
    state = runs.load_torch(tmp_path / "run" / runs.CHECKPOINT)["model"]
    assert all(bool(v.isfinite().all()) for v in state.values() if v.is_floating_point())
    assert all(h["loss"] == h["loss"] for h in out["history"])  # not NaN


class _NaNAfterEpochOne(TinyModel):
    """Trains normally in epoch 1, then every loss is NaN (as with a diverging lr)."""

    validated = False

    def score_all(self, batch, chunk: int = 4096):
        _NaNAfterEpochOne.validated = True  # the end of epoch 1
        return super().score_all(batch, chunk)

    def loss(self, batch):
        loss = super().loss(batch)
        return loss * float("nan") if _NaNAfterEpochOne.validated else loss


def test_non_finite_training_stops_with_an_error_and_stays_resumable(world, tmp_path):
    root, graph, _ = world
    _NaNAfterEpochOne.validated = False
    opts = dict(COMMON, model_factory=_NaNAfterEpochOne)
    with pytest.raises(DataError, match="non-finite loss"):
        train(root / "data", graph, tmp_path / "nan", epochs=3, **opts)
    # the last good epoch is kept: resume continues from it
    st = runs.load_torch(tmp_path / "nan" / runs.CHECKPOINT, "checkpoint")
    assert st["epoch"] == 1
    opts["model_factory"] = TinyModel
    m = train(root / "data", graph, tmp_path / "nan", epochs=3, resume=True, **opts)
    assert m["status"] == "done" and [h["epoch"] for h in m["history"]] == [1, 2, 3]
