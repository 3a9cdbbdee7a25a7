"""The headline benchmark of one work directory (``v2ht-kg results --table
headline``): every simple baseline, the paper's V2HT and the default model
(V2HT-KG) with one ablation row per fusion group, under both protocols,
overall and long-tail, mean ± std over training seeds; plus the
new-to-user protocol over several sampling seeds.

Runs land in ``<workdir>/runs/headline/``; a finished piece (the V2HT run,
each fusion fit's report) is reused, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..kg.dataset import PreparedDataset
from ..kg.records import UNKNOWN_USER
from ..kg.workdir import Workdir
from .fusion import GROUPS
from .protocol import PROTOCOLS

METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")
BASELINE_LABELS = {"popularity": "Popularity", "user_history": "User history",
                   "history_cooc": "History + co-occurrence", "knn": "Text kNN (TF-IDF)",
                   "knn_history": "kNN + history blend", "category": "Category popularity",
                   "knn_category": "kNN + category blend"}
NO_WINDOW = "− training window (head fit on valid only)"
NO_AVERAGE = "− epoch averaging (best epoch's head only)"
# ablation rows that keep the default groups and change how the head is fitted: fit_on's options
FIT_ABLATIONS = {NO_WINDOW: {"extra": None}, NO_AVERAGE: {"average": 1}}
GRAPHSEM_ROW = "+ graph semantics (graphsem, opt-in)"


def ablations(ds: PreparedDataset, neural_row: bool) -> dict[str, tuple[str, ...]]:
    from .hybrid import dataset_default_groups

    base = dataset_default_groups(ds)
    rows = {"V2HT-KG (default)": base}
    names = {"memory": "− user memory", "copy": "− copy path (kNN, word→tag)", "zeroshot": "− zero-shot words",
             "graph": "− graph (typed-graph features)", "semantic": "− semantic neighbours (MiniLM)",
             "tagsem": "− tag semantics (MiniLM: tag words, tag centroids)",
             "cf": "− user CF (like-minded users' tags)", "recent": "− recency (recent tags, trending)",
             "category": "− category (tags of the same category)"}
    for g in base:
        if g in names:
            rows[names[g]] = tuple(x for x in base if x != g)
    rows.update({label: base for label in FIT_ABLATIONS})
    if "tagsem" in base:  # where the MiniLM groups are on: the opt-in graph semantics, measured
        rows[GRAPHSEM_ROW] = base + ("graphsem",)
    if neural_row:
        rows["+ V2HT network score"] = ("neural",) + base
    return rows


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def _key(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()


def run_headline(wd: Workdir, seeds: Sequence[int] = (0, 1, 2), *, epochs: int = 6, valid_posts: int | None = 1000,
                 sampling_seeds: Sequence[int] = (0, 1, 2, 3, 4), neural_row: bool = True, threads: int | None = None,
                 neural_seeds: Sequence[int] | None = None, ablation_seeds: Sequence[int] | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """``neural_seeds``: the training seeds that also fit the "+ V2HT network
    score" row (it scores every valid and test post with V2HT; default: all);
    ``ablation_seeds``: those that fit the other ablation rows (default: all).
    Rows fitted on fewer seeds say which in their label."""
    import torch

    from .baselines import Baselines
    from .hybrid import HybridContext, fit_on, neural_scores
    from .newuser import evaluate_new_to_user
    from .runs import load_graph, load_run, read_json, write_json
    from .trainer import set_threads, train

    say = progress or (lambda m: None)
    set_threads(threads)
    ds = PreparedDataset(wd.data)
    root = wd.runs / "headline"
    root.mkdir(parents=True, exist_ok=True)
    has_users = any(u["name"] != UNKNOWN_USER for u in ds.users)
    variant = "full" if has_users else "wo_u"
    rows = ablations(ds, neural_row)
    t_all = time.time()
    res: dict = {"rows": {p: {} for p in PROTOCOLS}, "per_seed": {}, "seconds": {}}
    paper_runs, fits = [], {label: [] for label in rows}
    newuser_model: dict | None = None
    baselines_out: dict = {}
    for si, seed in enumerate(seeds):
        run_dir = root / f"v2ht-{variant}-seed{seed}"
        mpath = run_dir / "metrics.json"
        if not (mpath.exists() and json.loads(mpath.read_text()).get("status") == "done"):
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            say(f"training V2HT ({variant}) seed {seed}")
            t0 = time.time()
            train(wd.data, wd.graph, run_dir, variant=variant, epochs=epochs,
                  seed=seed, valid_posts=valid_posts, baselines=False, threads=threads)
            res["seconds"][f"v2ht seed {seed}"] = round(time.time() - t0, 1)
        m = read_json(mpath, "run metrics")
        paper_runs.append(m["test"])
        run = load_run(run_dir)
        data = run.data
        if si == 0:
            res["oracle"] = oracle_metrics(data)
            for p in PROTOCOLS:
                say(f"baselines ({p})")
                b = Baselines(data, p)
                baselines_out[p] = b.evaluate("test")  # b.names: those the set supports
                if p == "deployed":
                    baselines_obj = b
        graph = load_graph(wd.graph, [h.name for h in ds.hashtags], ds.fingerprint)
        ctx = HybridContext(data, graph, run.model, "cpu", note=say)
        def wanted(label: str, groups) -> bool:
            if "neural" in groups:
                return neural_seeds is None or seed in neural_seeds
            return label == "V2HT-KG (default)" or ablation_seeds is None or seed in ablation_seeds

        seed_rows = {label: groups for label, groups in rows.items() if wanted(label, groups)}
        all_groups = tuple(g for g in GROUPS if any(g in grp for grp in seed_rows.values()))
        feats = None
        for label, groups in seed_rows.items():
            path = run_dir / f"fusion-{_key(label)}.json"
            if path.exists():
                fits[label].append(read_json(path, "fusion report"))
                continue
            if feats is None:
                say(f"seed {seed}: computing features")
                t0 = time.time()
                feats = (ctx.features("valid", "deployed", all_groups),
                         {p: ctx.features("test", p, all_groups) for p in PROTOCOLS},
                         ctx.window(all_groups))
                res["seconds"][f"features seed {seed}"] = round(time.time() - t0, 1)
            say(f"seed {seed}: fitting {label}")
            t0 = time.time()
            opts = {"extra": feats[2], **FIT_ABLATIONS.get(label, {})}
            head, names, rep = fit_on(feats[0], feats[1], data, groups, seed=seed, **opts)
            rep["seconds"] = round(time.time() - t0, 1)
            if si == 0 and label == "V2HT-KG (default)" and has_users:
                from .fusion import score_block

                test = feats[1]["deployed"].subset(names)
                scores = torch.cat([score_block(head, test, np.arange(i, min(i + 256, test.n)))
                                    for i in range(0, test.n, 256)])
                rep["new_to_user"] = evaluate_new_to_user(data, scores, "deployed", wd.root / "eval",
                                                          seeds=sampling_seeds)
            write_json(path, rep)
            fits[label].append(rep)
        if si == 0 and has_users:
            nu_path = run_dir / "new-to-user-reference.json"
            if nu_path.exists():
                newuser_model = read_json(nu_path, "new-to-user report")
            else:
                say("new-to-user: V2HT and baselines")
                ref = {}
                ref["v2ht"] = evaluate_new_to_user(data, neural_scores(run.model, data, data.rows["test"]), "deployed",
                                                   wd.root / "eval", seeds=sampling_seeds, reference=False)["model"]
                for name in ("user_history", "knn_history", "knn"):
                    sc = baselines_obj.scores(name, "test")
                    ref[name] = evaluate_new_to_user(data, sc, "deployed", wd.root / "eval", seeds=sampling_seeds,
                                                     reference=name == "knn")
                newuser_model = ref
                write_json(nu_path, ref)
        del feats, ctx, run
    # -- aggregate --------------------------------------------------------------
    for p in PROTOCOLS:
        out = res["rows"][p]
        for name, bm in baselines_out[p].items():
            out[BASELINE_LABELS[name]] = {part: {k: (bm[part][k], 0.0) for k in METRICS} for part in ("overall", "longtail")}
            out[BASELINE_LABELS[name]]["params"] = bm.get("params")
        label = "V2HT (paper, §3)" if has_users else "V2HT w/o U (paper, §3; no users)"
        out[label] = {part: {k: _mean_std([r[part][k] for r in paper_runs]) for k in METRICS}
                      for part in ("overall", "longtail")}
        for lab, reps in fits.items():
            if not reps:
                continue
            if len(reps) < len(seeds):
                lab = f"{lab} (seed{'s' if len(reps) > 1 else ''} {', '.join(str(r['seed']) for r in reps)} only)"
            out[lab] = {part: {k: _mean_std([r["test"][p][part][k] for r in reps]) for k in METRICS}
                        for part in ("overall", "longtail")}
    # the graph's lift compares the default and "− graph" on the seeds both have
    g_label = next((lab for lab in fits if lab.startswith("− graph")), None)
    if g_label:
        with_g = {r["seed"]: r for r in fits["V2HT-KG (default)"]}
        res["graph_pairs"] = [
            [with_g[r["seed"]]["test"]["deployed"]["longtail"]["recall@10"], r["test"]["deployed"]["longtail"]["recall@10"]]
            for r in fits[g_label] if r["seed"] in with_g]
    c = ds.manifest["counts"]
    res.update({
        "data": {"source": ds.manifest["source"].get("format"), "fingerprint": ds.fingerprint, "counts": c,
                 "params": ds.params},
        "seeds": list(seeds), "epochs": epochs, "valid_posts": valid_posts, "has_users": has_users,
        "fusion_epochs": {lab: [r["fit"]["epochs"] for r in reps] for lab, reps in fits.items()},
        "fusion_seconds": {lab: [r.get("seconds") for r in reps] for lab, reps in fits.items()},
        "v2ht_train_seconds": [sum(h.get("seconds", 0) for h in read_json(root / f"v2ht-{variant}-seed{s}" / "metrics.json", "m")["history"]) for s in seeds],
        "total_seconds": round(time.time() - t_all, 1),
    })
    if has_users:
        nu = dict(fits["V2HT-KG (default)"][0].get("new_to_user", {}))
        res["new_to_user"] = {"sampling_seeds": list(sampling_seeds), "V2HT-KG (default)": nu.get("model"),
                              "random": nu.get("random"), "popularity": nu.get("popularity")}
        for name, m in (newuser_model or {}).items():
            res["new_to_user"][{"v2ht": "V2HT (paper, §3)", **BASELINE_LABELS}[name]] = m.get("model", m)
        res["targets"] = targets(res)
    else:
        res["targets"] = targets(res)
    return res


def oracle_metrics(data) -> dict:
    """The best any model can score on the test split: every true
    in-vocabulary tag ranked first. Out-of-vocabulary test tags stay misses,
    so this is the ceiling each bar must fit under."""
    import torch

    from .metrics import PairedAccumulator

    rows = data.rows["test"]
    truth = data.truth(rows)
    acc = PairedAccumulator(data.longtail)
    for i in range(0, len(rows), 512):
        part = truth[i:i + 512]
        s = torch.zeros(len(part), data.n_hashtags)
        for j, t in enumerate(part):
            s[j, list(t)] = 1.0
        acc.add_scores(s, part, data.oov[rows[i:i + 512]])
    r = acc.result()
    return {part: {k: r[part][k] for k in METRICS} for part in ("overall", "longtail")}


def targets(res: dict) -> dict:
    """The issue's bars on the deployed protocol: the default against the
    strongest baseline per metric (+10% R@10 and NDCG@10, +20% long-tail R@10),
    and the graph ablation (long-tail R@10 +20% with the graph). ``need`` is
    the score a bar asks for, ``ceiling`` the oracle's (None when unknown)."""
    rows = res["rows"]["deployed"]
    oracle = res.get("oracle")
    base = {k: v for k, v in rows.items() if k in BASELINE_LABELS.values()}
    d = rows["V2HT-KG (default)"]
    out = {}
    for part, metric, bar in (("overall", "recall@10", 0.10), ("overall", "ndcg@10", 0.10), ("longtail", "recall@10", 0.20)):
        best_name, best = max(((n, v[part][metric][0]) for n, v in base.items()), key=lambda x: x[1])
        got = d[part][metric][0]
        out[f"{part} {metric}"] = {"model": got, "best_baseline": best_name, "baseline": best,
                                   "lift": (got / best - 1) if best else None, "bar": bar,
                                   "met": bool(best and got / best - 1 >= bar), "need": best * (1 + bar),
                                   "ceiling": oracle[part][metric] if oracle else None}
    pairs = res.get("graph_pairs")
    if pairs:
        a, b = sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs)
        out["graph lift, longtail recall@10"] = {"with": a, "without": b, "lift": (a / b - 1) if b else None,
                                                 "bar": 0.20, "met": bool(b and a / b - 1 >= 0.20), "need": b * 1.20,
                                                 "seeds": len(pairs)}
    return out


PUBLISHED = [("PTA (published, EMNLP'21)", 0.311, 0.115, 0.326), ("LSTM-Att (published)", 0.277, 0.104, 0.287),
             ("PTA (independent replication)", 0.255, 0.0975, 0.264)]


def to_markdown(res: dict, title: str) -> str:
    c = res["data"]["counts"]
    lines = [f"### {title}", "",
             f"Data: {res['data']['source']}: {c['posts']} posts ({c['posts_by_split']}), {c['users']} users, "
             f"{c['hashtags']} hashtags ({c['longtail_hashtags']} long-tail). Test tag uses outside the vocabulary: "
             f"{c.get('test_oov_uses', 0)} of {c.get('test_tag_uses', 0)} (misses for every model; recall ceiling "
             f"{1 - c.get('test_oov_uses', 0) / max(c.get('test_tag_uses', 1), 1):.3f} of uses). "
             f"Training seeds {', '.join(map(str, res['seeds']))}: mean ± std (baselines are deterministic). "
             f"V2HT: at most {res['epochs']} epochs. Full ranking of every hashtag; definitions in docs/metrics.md.", ""]
    for p in PROTOCOLS:
        for part, heading in (("overall", "overall"), ("longtail", "long-tail")):
            lines += [f"**{p} protocol, {heading}**", "",
                      "| model | " + " | ".join(k.replace("recall", "R").replace("ndcg", "NDCG") for k in METRICS) + " |",
                      "|---|" + "---|" * len(METRICS)]
            for name, m in res["rows"][p].items():
                spread = name not in BASELINE_LABELS.values() and len(res["seeds"]) > 1
                cells = [f"{m[part][k][0]:.4f} ± {m[part][k][1]:.4f}" if spread else f"{m[part][k][0]:.4f}" for k in METRICS]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
            lines.append("")
    lines += ["**Targets (deployed protocol)**", "",
              "| bar | model | strongest baseline | lift | needed | score needed | ceiling (oracle) | met |",
              "|---|---|---|---|---|---|---|---|"]
    for k, t in res["targets"].items():
        if "with" in t:
            lines.append(f"| {k} | {t['with']:.4f} | without graph {t['without']:.4f} | {t['lift']:+.1%} | +{t['bar']:.0%} "
                         f"| {t['need']:.4f} | — | {'yes' if t['met'] else 'no'} |")
        else:
            ceil = t.get("ceiling")
            ceil_s = "—" if ceil is None else f"{ceil:.4f} ({t['need'] / ceil:.1%} of it)" if ceil else "0"
            lines.append(f"| {k} | {t['model']:.4f} | {t['best_baseline']} {t['baseline']:.4f} | {t['lift']:+.1%} | +{t['bar']:.0%} "
                         f"| {t['need']:.4f} | {ceil_s} | {'yes' if t['met'] else 'no'} |")
    if res.get("oracle"):
        lines += ["", "The ceiling is the oracle's score: every true in-vocabulary tag ranked first (out-of-vocabulary "
                  "test tags stay misses for every model). \"of it\" is the share of the ceiling a bar asks for."]
    lines.append("")
    nu = res.get("new_to_user")
    if nu:
        lines += [f"**new-to-user protocol** (sampling seeds {', '.join(map(str, nu['sampling_seeds']))}, "
                  "mean ± std over them; models of training seed 0; history: deployed)", "",
                  "| model | MAP | P@5 | nDCG@5 | lists |", "|---|---|---|---|---|"]
        for name, m in nu.items():
            if name == "sampling_seeds" or not m:
                continue
            lines.append(f"| {name} | " + " | ".join(f"{m[k]['mean']:.4f} ± {m[k]['std']:.4f}" for k in ("map", "p@5", "ndcg@5"))
                         + f" | {m['lists']} |")
        for name, a, b, cc in PUBLISHED:
            lines.append(f"| {name} | {a:.3f} | {b:.3f} | {cc:.3f} | 2,565 |")
        lines += ["", "Published figures are quoted, not rerun: their candidates are all test-period tags with ≥ 5 "
                  "context tweets, ours only tags in the vocabulary (≥ min_tag_count uses before the test period); "
                  "their user side is the user's training tweets, ours every post before the test period.", ""]
    lines.append(f"Seconds: V2HT training per seed {res['v2ht_train_seconds']}; fusion fits "
                 + ", ".join(f"{k} {v}" for k, v in res["fusion_seconds"].items()) + f"; total {res['total_seconds']} (this call: runs and fits it found finished were reused).")
    return "\n".join(lines) + "\n"


def write(res: dict, out: Path, title: str) -> None:
    from .experiments import write_results

    write_results(res, out, title, markdown=to_markdown(res, title))


def summary(paths: Sequence[Path]) -> str:
    """The README's headline table: per data set, the strongest baseline per
    metric, the paper's V2HT and the default, deployed protocol, plus the bars."""
    lines = ["| data set | model | R@10 | NDCG@10 | long-tail R@10 |", "|---|---|---|---|---|"]
    notes = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            continue
        res = json.loads(path.read_text(encoding="utf-8"))
        name = path.name.replace("-headline.json", "")
        rows = res["rows"]["deployed"]
        cell = lambda m, part, k: (f"{m[part][k][0]:.3f}" + (f" ± {m[part][k][1]:.3f}" if m[part][k][1] else ""))  # noqa: E731
        keep = [n for n in rows if n in ("User history", "Text kNN (TF-IDF)", "kNN + history blend",
                                         "Category popularity", "kNN + category blend")
                or n.startswith("V2HT (paper") or n.startswith("V2HT w/o U") or n == "V2HT-KG (default)"]
        for n in keep:
            m = rows[n]
            lines.append(f"| {name} | {n} | {cell(m, 'overall', 'recall@10')} | {cell(m, 'overall', 'ndcg@10')} | "
                         f"{cell(m, 'longtail', 'recall@10')} |")
        t = res["targets"]
        notes.append(f"- {name}: " + "; ".join(
            (f"{k} {v['lift']:+.1%} (bar +{v['bar']:.0%}, {'met' if v['met'] else 'missed'}"
             + (f"; needs {v['need']:.3f}, ceiling {v['ceiling']:.3f}" if v.get("ceiling") is not None else "") + ")"
             if v.get("lift") is not None else f"{k}: n/a") for k, v in t.items()))
    return "\n".join(lines + [""] + notes) + "\n"
