"""The paper's tables on the work directory's data set: every variant (Table
2: full, w/o U, w/o P, w/o UP) or modality subset (Table 4) trained over
several seeds, with the baselines in the same evaluator, as mean ± std.

Runs land in ``<workdir>/runs/<table>/<name>-seed<S>``; a finished run
(metrics.json with status "done") is reused, so an interrupted table
resumes where it stopped.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

from ..kg.dataset import PreparedDataset
from ..kg.errors import DataError
from ..kg.fsio import named
from ..kg.workdir import Workdir

METRICS = ("recall@5", "ndcg@5", "hit@5", "recall@10", "ndcg@10", "hit@10")
VARIANT_ROWS = {"full": "V2HT", "wo_u": "V2HT w/o U", "wo_p": "V2HT w/o P", "wo_up": "V2HT w/o UP"}
MODALITY_ROWS = {"visual": "V", "acoustic": "A", "text": "T", "visual,acoustic": "V+A",
                 "visual,text": "V+T", "acoustic,text": "A+T", "visual,acoustic,text": "V+A+T"}


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def _configs(table: str, ds: PreparedDataset) -> list[tuple[str, str, list[str] | None]]:
    """(row label, variant, modalities) per row."""
    if table == "variants":
        return [(label, v, None) for v, label in VARIANT_ROWS.items()]
    if table == "modalities":
        have = set(ds.modalities)
        rows = [(f"V2HT {label}", "full", key.split(",")) for key, label in MODALITY_ROWS.items()
                if set(key.split(",")) <= have]
        if len(rows) < 2:
            raise DataError("this data set has one modality only: the modality table needs visual/acoustic features")
        return rows
    raise DataError(f"unknown table {table!r}; choose variants or modalities")


def run_table(wd: Workdir, table: str = "variants", seeds: Sequence[int] = (0, 1, 2), *, epochs: int = 20,
              batch_size: int = 32, lr: float = 3e-3, patience: int = 3, valid_posts: int | None = None,
              train_options: dict | None = None, progress: Callable[[str], None] | None = None) -> dict:
    from .trainer import train

    say = progress or (lambda msg: None)
    ds = PreparedDataset(wd.data)
    rows = _configs(table, ds)
    runs: dict[str, list[dict]] = {}
    base: dict | None = None
    seconds: dict[str, list[float]] = {}
    for i, (label, variant, mods) in enumerate(rows):
        for j, seed in enumerate(seeds):
            name = f"{variant}-{'+'.join(mods) if mods else 'all'}-seed{seed}"
            run_dir = wd.runs / table / name
            mpath = run_dir / "metrics.json"
            done = mpath.exists() and json.loads(mpath.read_text()).get("status") == "done"
            t0 = time.time()
            if not done:
                if run_dir.exists():
                    import shutil

                    shutil.rmtree(run_dir)  # an interrupted run restarts clean
                say(f"training {label} seed {seed}")
                train(wd.data, wd.graph if variant in ("full", "wo_u") else None, run_dir, variant=variant,
                      modalities=mods, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience,
                      valid_posts=valid_posts, baselines=(i, j) == (0, 0), **(train_options or {}))
            m = json.loads(mpath.read_text())
            runs.setdefault(label, []).append(m["test"])
            seconds.setdefault(label, []).append(sum(h.get("seconds", 0) for h in m.get("history", [])) or time.time() - t0)
            # the baselines are deterministic given the split: the first run evaluates them once
            base = base or m.get("baselines")
    table_rows = {}
    for part in ("overall", "longtail"):
        out = {}
        for b, bm in (base or {}).items():
            out[b] = {k: (bm[part][k], 0.0) for k in METRICS}
            out[b]["posts"] = bm[part].get("n_posts")
        for label, ms in runs.items():
            out[label] = {k: _mean_std([m[part][k] for m in ms]) for k in METRICS}
            out[label]["posts"] = ms[0][part].get("n_posts")
        table_rows[part] = out
    return {
        "table": table, "seeds": list(seeds), "epochs": epochs, "batch_size": batch_size, "lr": lr,
        "data": {"source": ds.manifest["source"].get("format"), "fingerprint": ds.fingerprint,
                 "counts": ds.manifest["counts"], "params": ds.params},
        "rows": table_rows,
        "train_seconds": {k: _mean_std(v) for k, v in seconds.items()},
    }


def to_markdown(result: dict, title: str = "") -> str:
    seeds = result["seeds"]
    c = result["data"]["counts"]
    lines = [f"### {title or result['table']}", "",
             f"Data: {result['data']['source']} — {c['posts']} posts ({c['posts_by_split']}), {c['users']} users, "
             f"{c['hashtags']} hashtags ({c['longtail_hashtags']} long-tail, threshold "
             f"{result['data']['params']['longtail_threshold']}); fingerprint `{result['data']['fingerprint']}`. "
             f"Seeds {', '.join(map(str, seeds))}; at most {result['epochs']} epochs, batch {result['batch_size']}, "
             f"lr {result['lr']}. Full ranking of every hashtag"
             + ("; mean ± std over seeds (baselines are deterministic)." if len(seeds) > 1 else "; one seed."), ""]
    for part, heading in (("overall", "overall"), ("longtail", "long-tail (§4.3.2: frequent tags dropped from the truth)")):
        rows = result["rows"][part]
        lines += [f"**{heading}**", "",
                  "| model | " + " | ".join(k.replace("recall", "Recall").replace("ndcg", "NDCG").replace("hit", "Hit") for k in METRICS) + " | posts |",
                  "|---|" + "---|" * (len(METRICS) + 1)]
        for name, m in rows.items():
            spread = name.startswith("V2HT") and len(seeds) > 1
            cells = [f"{m[k][0]:.4f} ± {m[k][1]:.4f}" if spread else f"{m[k][0]:.4f}" for k in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {m.get('posts', '')} |")
        lines.append("")
    ts = result["train_seconds"]
    lines.append("Training time per run (s): " + ", ".join(f"{k} {v[0]:.0f}" for k, v in ts.items()))
    return "\n".join(lines) + "\n"


def write_results(result: dict, out: Path, title: str = "", markdown: str | None = None) -> None:
    """``out`` (Markdown: ``markdown``, or this table's rendering) and the
    JSON beside it, each written whole or not at all."""
    import os

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text_md = to_markdown(result, title) if markdown is None else markdown
    for path, text in ((out, text_md), (out.with_suffix(".json"), json.dumps(result, indent=2))):
        tmp = path.with_name(path.name + ".tmp")
        with named(path):
            tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
