"""The run folder: every file a training run writes, each written atomically
(temporary name in the same folder, then os.replace), so an interrupted run
never leaves a half-written file behind.

    config.json     every option, data fingerprint, graph fingerprint, model config
    metrics.json    per-epoch history, best epoch, test metrics, baselines
    curve.png       training loss and validation metrics per epoch
    word2vec.npz    Word2Vec cache (trained once per run)
    checkpoint.pt   last epoch: model, optimizer, RNG states, history
    best.pt         model state of the best validation epoch
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..kg.errors import DataError
from ..kg.fsio import named
from ..kg.prepare import sha256_file

CONFIG = "config.json"
METRICS = "metrics.json"
CURVE = "curve.png"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
RUN_FORMAT = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; run files are ordinary files
        with named(path), os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    _atomic(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8")))


def read_json(path: Path, what: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} missing; is this a run folder?", str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"corrupt {what} ({getattr(e, 'msg', type(e).__name__)})", str(path)) from None


def save_torch(path: Path, obj: Any) -> None:
    _atomic(path, lambda f: torch.save(obj, f))


def load_torch(path: Path, what: str = "checkpoint", map_location="cpu") -> Any:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} missing", str(path))
    try:
        # Checkpoints hold only tensors and plain values (RNG states included):
        # the weights-only unpickler refuses any other global, so a crafted
        # file is rejected before any of its code could run.
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, forbidden global, wrong magic number, ...
        raise DataError(f"corrupt or unsafe {what} ({_first_line(e)}); delete it and train again",
                        str(path)) from None


def save_curve(history: list[dict], path: Path, title: str = "") -> None:
    """Paper Fig. 5 style: loss on the left axis, validation metrics on the right."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    ax.plot(ep, [h["loss"] for h in history], "o-", color="tab:red", label="training loss")
    ax.set_xlabel("epoch")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss", color="tab:red")
    ax2 = ax.twinx()
    for key, style in (("recall@10", "s-"), ("ndcg@10", "^-")):
        ax2.plot(ep, [h["valid"][key] for h in history], style, label=f"valid {key}")
    ax2.set_ylabel("validation metric")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _atomic(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


# -- inputs of a run: graph snapshot, model, and reopening a finished run -----
VARIANTS = {"full": (True, True), "wo_u": (False, True), "wo_p": (True, False), "wo_up": (False, False)}


def variant_flags(variant: str) -> tuple[bool, bool]:
    """(use_user, use_propagation) of a paper variant."""
    try:
        return VARIANTS[variant]
    except KeyError:
        raise DataError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}") from None


def _first_line(e: Exception) -> str:
    """One line about a failed load. torch's refusal of a forbidden global is
    a paragraph advising weights_only=False: keep only what was refused."""
    import pickle

    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    if isinstance(e, pickle.UnpicklingError):
        refused = [l for l in lines if "GLOBAL" in l or "Unsupported" in l]
        return f"refused to unpickle: {refused[0][:160]}" if refused else "refused to unpickle"
    return lines[0][:160] if lines else type(e).__name__


class _Pickled:
    """Stands in for a PyG class inside a graph snapshot: the weights-only
    unpickler builds it and hands it its state; nothing of PyG is imported
    (torch_geometric pulls torch._dynamo: about a second a process)."""

    def __setstate__(self, state) -> None:
        self.__dict__["_state"] = state


class GraphSnapshot(_Pickled):
    """A torch_geometric ``Data`` read back without PyG: its attributes
    (kg/schema.py: names, edge_index, edge_type, ...) by name or key."""

    def __setstate__(self, state) -> None:
        store = state.get("_store") if isinstance(state, dict) else None
        m = getattr(store, "__dict__", {}).get("_state", {}).get("_mapping") if store is not None else None
        self.__dict__["_mapping"] = m if isinstance(m, dict) else {}

    def __getattr__(self, name: str):
        m = self.__dict__.get("_mapping", {})
        if name in m:
            return m[name]
        raise AttributeError(name)

    def __getitem__(self, name: str):
        return self._mapping[name]

    def __contains__(self, name: str) -> bool:
        return name in self._mapping

    def keys(self) -> list[str]:
        return list(self._mapping)


class _Storage(_Pickled):
    pass


def _pyg_safe_globals() -> list:
    """The PyG classes a pickled ``Data`` names (no callables beyond these
    data containers): PyG's own when this process has imported it already
    (it then allow-lists them itself, and a mix of real and stand-in
    classes would not fit together), else stand-ins."""
    import sys

    if "torch_geometric" in sys.modules:
        from torch_geometric.data import data as data_mod, storage

        names = [(data_mod, "Data"), (data_mod, "DataEdgeAttr"), (data_mod, "DataTensorAttr"), (storage, "GlobalStorage")]
        return [getattr(m, n) for m, n in names if hasattr(m, n)]
    return [(GraphSnapshot, "torch_geometric.data.data.Data"), (_Pickled, "torch_geometric.data.data.DataEdgeAttr"),
            (_Pickled, "torch_geometric.data.data.DataTensorAttr"), (_Storage, "torch_geometric.data.storage.GlobalStorage")]


def load_graph(path: Path, hashtag_names: list[str], data_fingerprint: str | None = None):
    """The PyG snapshot (kg/schema.py) as a GraphSnapshot, checked against
    the prepared hashtags: node i must be hashtag id i, or every learned edge
    weight would attach to the wrong tag."""
    path = Path(path)
    if not path.exists():
        raise DataError("graph snapshot missing; export the graph first (graph.pt)", str(path))
    try:
        # The weights-only unpickler: tensors, plain containers and numbers,
        # plus the few PyG classes of a Data object, allow-listed by name. Any
        # other global in the file (os.system, a crafted __reduce__) is
        # refused before it is called: loading a snapshot never runs code.
        with torch.serialization.safe_globals(_pyg_safe_globals()):
            g = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError (forbidden global), truncated zip, ...
        raise DataError(f"not a readable graph snapshot ({_first_line(e)}); rebuild it with `v2ht-kg build`",
                        str(path)) from None
    names = getattr(g, "names", None)
    if names is None or getattr(g, "edge_index", None) is None:
        raise DataError("not a graph snapshot (no names or edge_index)", str(path))
    if list(names) != list(hashtag_names):
        n_diff = sum(1 for a, b in zip(names, hashtag_names) if a != b) + abs(len(names) - len(hashtag_names))
        raise DataError(f"graph nodes do not match the prepared hashtags ({len(names)} nodes vs "
                        f"{len(hashtag_names)} hashtags, {n_diff} differ); export the graph from this data set",
                        str(path))
    fp = getattr(g, "fingerprint", None)
    if data_fingerprint is not None and fp is not None and fp != data_fingerprint:
        raise DataError(f"graph was built from another data set (fingerprint {fp} vs {data_fingerprint})", str(path))
    return g


def graph_fingerprint(path: Path) -> str:
    return sha256_file(path)[:32]


def default_model_factory(cfg: dict, init_emb: torch.Tensor, graph):
    from .config import V2HTConfig
    from .model import V2HT

    return V2HT(V2HTConfig.from_dict(cfg), init_emb, graph)


def complete_model_config(cfg: dict) -> dict:
    """Fill the model's own defaults in, so config.json records every value."""
    try:
        from .config import V2HTConfig
    except ImportError:  # the model package is absent: keep the options as given
        return cfg
    return V2HTConfig.from_dict(cfg).to_dict()


def load_run(run_dir: Path, *, dataset_dir: Path | None = None, device: str = "cpu",
             model_factory=None, which: str = "best"):
    """Reopen a run: returns Run(model, cfg, data), the model in eval mode.

    ``dataset_dir`` overrides the recorded path (a moved work dir); the data
    fingerprint must still match. ``which`` is "best" or "last"."""
    from ..kg.dataset import PreparedDataset
    from .data import TrainingData
    from .evaluate import Run

    run_dir = Path(run_dir)
    cfg = read_json(run_dir / CONFIG, "run config")
    try:
        ddir = Path(dataset_dir or cfg["dataset_dir"])
        fp = cfg["data_fingerprint"]
        mcfg = cfg["model"]
        data_options = {k: cfg[k] for k in ("modalities", "max_text_tokens", "seed", "w2v_dim", "w2v_epochs")}
    except KeyError as e:
        raise DataError(f"run config lacks {e}", str(run_dir / CONFIG)) from None
    except TypeError:
        raise DataError("run config is not a JSON object", str(run_dir / CONFIG)) from None
    if not isinstance(mcfg, dict):
        raise DataError("run config: 'model' is not an object", str(run_dir / CONFIG))
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', not {which!r}")
    mpath = run_dir / METRICS
    metrics = read_json(mpath, "run metrics") if mpath.exists() else {}
    status = metrics.get("status") if isinstance(metrics, dict) else "unreadable"
    if status not in (None, "done"):
        # a killed or failed train, or one still running: its best.pt is not
        # the model the run would select, and it has no test metrics
        raise DataError(f"the run is unfinished (status {status!r}: interrupted, failed or still training); "
                        f"finish it with `v2ht-kg train --run {run_dir.name} --resume` or train it again", str(run_dir))
    path = run_dir / (BEST if which == "best" else CHECKPOINT)
    if not path.exists():
        # Never fall back to the last checkpoint in silence: it is not the
        # model the run selected on validation.
        what = "best model" if which == "best" else "last checkpoint"
        raise DataError(f"missing: the run's {what} (the run was interrupted before its first validation, or the "
                        f"file was removed); finish it with `v2ht-kg train --run {run_dir.name} --resume` "
                        "or train it again", str(path))
    ds = PreparedDataset(ddir)
    if ds.fingerprint != fp:
        raise DataError(f"this run was trained on another data set (fingerprint {fp}, "
                        f"data set {ds.fingerprint})", str(ddir))
    data = TrainingData.build(ds, run_dir, **data_options)
    graph = None
    if mcfg.get("use_propagation"):
        if not cfg.get("graph_path"):
            raise DataError("this run's variant needs the graph, but none is recorded", str(run_dir / CONFIG))
        graph = load_graph(Path(cfg["graph_path"]), [h.name for h in ds.hashtags], ds.fingerprint)
    model = (model_factory or default_model_factory)(mcfg, data.hashtag_init, graph)
    state = load_torch(path, "best model" if path.name == BEST else "checkpoint")
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError, TypeError) as e:
        raise DataError(f"checkpoint does not fit the model ({type(e).__name__})", str(path)) from None
    model.to(device).eval()
    return Run(model, cfg, data)
