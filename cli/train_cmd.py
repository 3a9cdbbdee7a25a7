"""`v2ht-kg train`, `evaluate`, `recommend`: the V2HT recommender."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..gnn.config import DEFAULT_CANDIDATES
from ..kg.errors import DataError, V2HTError
from ..kg.workdir import Workdir
from .common import (JsonOpt, StoreOpt, WorkdirOpt, category_path, check_options, console, err_console, print_json,
                     workdir)

VARIANTS = ("hybrid", "paper", "full", "wo_u", "wo_p", "wo_up")
PROTOCOL_HELP = ("deployed (history = every post before the test period, the headline) | "
                 "strict (training posts only); see docs/metrics.md.")
RunArg = typer.Argument(..., help="Run folder, or a run name under <workdir>/runs.")


def resolve_run(run: str, w: Workdir) -> Path:
    p = Path(run)
    if (p / "config.json").exists():
        return p
    q = w.runs / run
    if (q / "config.json").exists():
        return q
    known = sorted(x.name for x in w.runs.iterdir() if (x / "config.json").exists()) if w.runs.is_dir() else []
    raise DataError(f"no run {run!r} (not a run folder, not in {w.runs}); runs here: {', '.join(known) or 'none'}")


def _run_data_format(run_dir: Path) -> str | None:
    """The reader format of the data set a run was trained on, from its
    config and the set's manifest alone (no torch); None where unreadable
    (load_run then says why)."""
    import json

    from ..kg.readers import prepared_format

    try:
        return prepared_format(Path(json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["dataset_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _modalities(value: Optional[str]) -> list[str] | None:
    if not value:
        return None
    mods = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in mods if m not in ("visual", "acoustic", "text")]
    if bad:
        raise V2HTError(f"unknown modality {bad[0]!r}; choose from visual, acoustic, text")
    return mods


def _metrics_table(title: str, rows: dict[str, dict]) -> Table:
    keys = ["recall@5", "ndcg@5", "hit@5", "recall@10", "ndcg@10", "hit@10"]
    t = Table(title=title)
    t.add_column("model", overflow="fold")  # at 80 columns the names fold, the headers stay whole
    for k in keys:
        head = k.replace("recall", "R").replace("ndcg", "NDCG").replace("hit", "Hit")
        t.add_column(head, justify="right", no_wrap=True, min_width=len(head))
    t.add_column("posts", justify="right", no_wrap=True)
    for name, m in rows.items():
        t.add_row(name, *[f"{m.get(k, float('nan')):.4f}" for k in keys], str(m.get("n_posts", "")))
    return t


def train(
    wd: Optional[Path] = WorkdirOpt,
    run: Optional[str] = typer.Option(None, "--run", help="Run name under <workdir>/runs (default: VARIANT-MODALITIES-seedSEED)."),
    variant: str = typer.Option("hybrid", help="hybrid (default: V2HT + the fusion head over user memory, copy path, zero-shot and graph signals) | paper (= full, the paper's V2HT) | full | wo_u (no user) | wo_p (no propagation) | wo_up (neither): paper Table 2."),
    protocol: str = typer.Option("deployed", help=PROTOCOL_HELP),
    fusion: str = typer.Option("default", help="hybrid only: the fusion head's feature groups: 'default' (memory,copy,zeroshot,graph,pop,category,cf,recent,semantic,tagsem; without the user groups on a set without users, category only where posts carry category paths, without semantic and tagsem where MiniLM is not installed) or a list of neural (V2HT's own score), memory, copy, zeroshot, graph, pop, category (the tags of posts in the same category), cf (like-minded users' tags), recent (recency), semantic (MiniLM neighbours), tagsem (MiniLM cosines to each tag's words and its posts' centroid), spread, graphsem (MiniLM cosines to each tag's typed graph neighbours' centroids and words), graph2 (the memory, copy, zero-shot and MiniLM-neighbour signals propagated two typed hops); drop one for its ablation; 'default,graphsem' adds one to the default."),
    loss: str = typer.Option("pointwise", help="V2HT training loss: pointwise (the paper's Eq. 17) | softmax (each true tag against the post's sampled negatives)."),
    negatives: int = typer.Option(6, help="Uniform negatives per true tag (paper: 6)."),
    modalities: Optional[str] = typer.Option(None, help="Comma-separated subset of visual,acoustic,text (default: all the data set has)."),
    epochs: int = typer.Option(20, help="Maximum epochs (early stopping on validation NDCG@10)."),
    batch_size: int = typer.Option(32, help="Posts per mini-batch (each brings its tags + 6 negatives per tag). Below the paper's 256-2048 grid: smaller data sets need the extra steps."),
    lr: float = typer.Option(3e-3, help="Adam learning rate."),
    co_max_neighbours: Optional[int] = typer.Option(None, help="Propagate over at most this many co-occurrence neighbours per hashtag, its strongest (cp/ss/po edges all kept); default: every edge (the paper). For large graphs: see docs/benchmarks.md."),
    propagate_every: int = typer.Option(1, help="Step e(h) and the propagation weights once every K steps, on the mean of K steps' gradients (one graph propagation per K steps; the rest of the model steps every time). 1 = the paper. For large graphs: see docs/benchmarks.md."),
    d_hashtag: int = typer.Option(64, help="Hashtag/user/common-space dimension."),
    user_history: str = typer.Option("word2vec", help="User tower's hashtag input: word2vec (the paper: mean frozen Word2Vec of the user's past tags) | learned (mean of the trainable e(h))."),
    patience: int = typer.Option(3, help="Stop after this many epochs without a better validation NDCG@10."),
    valid_posts: Optional[int] = typer.Option(None, help="Validate each epoch on a fixed seeded subset of this many posts."),
    seed: int = typer.Option(0, help="Seed for initial weights, negatives, Word2Vec."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run from its last checkpoint."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: the cores no other process is busy on)."),
    json_out: bool = JsonOpt,
):
    """Train the recommender on the work directory's data set and graph snapshot; evaluates the best epoch on the test split.

    The default (--variant hybrid) trains the paper's V2HT, then fits the
    fusion head on the validation period; --variant paper trains V2HT alone."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..gnn.trainer import train as train_run

    check_options(epochs=epochs, batch_size=batch_size, lr=lr, d_hashtag=d_hashtag, patience=patience, valid_posts=valid_posts, seed=seed, threads=threads, device=device, propagate_every=propagate_every, co_max_neighbours=co_max_neighbours)
    if variant not in VARIANTS:
        raise V2HTError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    if variant == "paper":
        variant = "full"
    from ..gnn.protocol import check_protocol

    check_protocol(protocol)
    if loss not in ("pointwise", "softmax"):
        raise V2HTError(f"--loss {loss!r}: choose pointwise or softmax")
    if not 1 <= negatives <= 10000:
        raise V2HTError(f"--negatives {negatives}: must lie in 1..10000")
    groups = [g.strip() for g in fusion.split(",") if g.strip()]
    extra = [g for g in groups if g != "default"]
    if variant == "hybrid" and extra:
        from ..gnn.fusion import feature_names

        feature_names(extra)
    if user_history not in ("word2vec", "learned"):
        raise V2HTError(f"--user-history {user_history!r}: choose word2vec or learned")
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise V2HTError(f"--device {device}: no CUDA device here")
    w = workdir(wd)
    if variant == "hybrid" and "default" in groups and (w.data / "manifest.json").exists():
        from ..gnn.hybrid import dataset_default_groups
        from ..kg.dataset import PreparedDataset

        base = list(dataset_default_groups(PreparedDataset(w.data), note=err_console.print))
        groups = base + [g for g in extra if g not in base]
    if not (w.data / "manifest.json").exists():
        raise DataError("no prepared data set; run `v2ht-kg build` first", str(w.root))
    mods = _modalities(modalities)
    name = run or f"{variant}-{'+'.join(mods) if mods else 'all'}-seed{seed}"
    run_dir = w.runs / name
    graph = w.graph if variant in ("hybrid", "full", "wo_u") else None
    if graph is not None and not graph.exists():
        raise DataError("no graph snapshot; run `v2ht-kg build` first (or train --variant wo_p)", str(graph))

    prog = Progress(TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
                    console=err_console, disable=json_out)
    task = None

    def on_event(ev: dict) -> None:
        nonlocal task
        kind = ev["event"]
        if kind == "batch":
            if task is None:
                task = prog.add_task(f"epoch {ev['epoch']}", total=ev["batches"], loss=0.0)
            prog.update(task, completed=ev["batch"], total=ev["batches"], description=f"epoch {ev['epoch']}", loss=ev["loss"])
        elif kind == "epoch":
            if task is not None:
                prog.remove_task(task)
                task = None
            v = ev["valid"]
            if not json_out:
                prog.console.print(
                    f"epoch {ev['epoch']:>3}/{ev['epochs']}  loss {ev['loss']:.4f}  valid recall@10 {v.get('recall@10', 0):.4f}"
                    f"  ndcg@10 {v.get('ndcg@10', 0):.4f}  {'*' if ev['improved'] else ' '}  {ev['seconds']:.1f}s"
                    + ("  (early stop)" if ev["stopped"] else ""))
        elif kind in ("data", "test", "resume", "fusion", "fusion_epoch") and not json_out:
            prog.console.print(f"[dim]{ev.get('message') or ('resumed after epoch ' + str(ev.get('epoch')))}[/]")

    options = {"d_hashtag": d_hashtag, "user_history": user_history, "loss": loss, "negatives": negatives}
    if co_max_neighbours is not None:
        options["co_max_neighbours"] = co_max_neighbours
    common = dict(model_options=options, modalities=mods, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                  device=device, resume=resume, patience=patience, valid_posts=valid_posts, threads=threads,
                  propagate_every=propagate_every, progress=on_event)
    with prog:
        if variant == "hybrid":
            from ..gnn.hybrid import train_hybrid

            res = train_hybrid(w.data, graph, run_dir, protocol=protocol, groups=groups, baselines=True, **common)
            test, metrics = res["hybrid"]["test"][protocol], res["neural"]
            metrics = dict(metrics, baselines=res["baselines"])
        else:
            metrics = train_run(w.data, graph, run_dir, variant=variant, protocol=protocol, **common)
            test = metrics.get("test")
    base = metrics.get("baselines")
    out = {"run": str(run_dir), "variant": variant, "protocol": protocol, "best_epoch": metrics["best_epoch"],
           "test": test, "baselines": base}
    if variant == "hybrid":
        out["paper_v2ht_test"] = metrics.get("test")
    if json_out:
        print_json(out)
        return
    _render_eval(out["test"], out["baselines"], _model_label({"variant": variant}))
    console.print(f"run folder: {run_dir}  (metrics.json, curve.png, best.pt"
                  + (", fusion.json, hybrid.json)" if variant == "hybrid" else ")"))


TailBoostOpt = typer.Option(
    0.0, "--tail-boost", help="Rank by score − B·log(1 + the tag's known uses): B > 0 favours rarer tags "
    "(logit adjustment; docs/metrics.md has its trade-off on the real sets). 0: the model's own ranking.")


def _model_label(out: dict) -> str:
    """An evaluated run's row name: the default model or the V2HT variant,
    and the tail boost it was ranked with."""
    name = out.get("variant") or ""
    label = "V2HT-KG" if name == "hybrid" else f"V2HT {name}"
    return label + (f", tail boost {out['tail_boost']:g}" if out.get("tail_boost") else "")


def _render_eval(test: dict | None, baselines: dict | None, label: str) -> None:
    if not test:
        return
    for part in ("overall", "longtail"):
        rows = {label: test[part]}
        for b, m in (baselines or {}).items():
            rows[b] = m[part]
        console.print(_metrics_table(f"test, {part} (full ranking of every hashtag)", rows))


def evaluate(
    run: str = RunArg,
    wd: Optional[Path] = WorkdirOpt,
    split: str = typer.Option("test", help="train | valid | test."),
    protocol: Optional[str] = typer.Option(None, help="deployed | strict (must be the run's own; default) | new-to-user (per-user lists of tags new to the user against 100 frozen random negatives each, MAP/P@5/nDCG@5)."),
    sampling_seeds: str = typer.Option("0,1,2,3,4", help="new-to-user: seeds of the frozen negative samples (mean ± std)."),
    baselines: bool = typer.Option(True, "--baselines/--no-baselines", help="Also evaluate the baselines on the same split (tuned on validation)."),
    graph_reach: bool = typer.Option(False, "--graph-reach", help="Instead: of the long-tail uses the top 10 misses, how many have a typed (cp/ss/po) neighbour that the author's tags, the nearest posts' tags or the top 10 hold (what one hop over the graph could lift), beside the hits the +20% graph-lift bar asks for."),
    tail_boost: float = TailBoostOpt,
    device: str = typer.Option("cpu", help="cpu | cuda."),
    json_out: bool = JsonOpt,
):
    """Evaluate a run's best model: Recall/NDCG/HitRate@5,10, overall and long-tail (or --protocol new-to-user)."""
    from ..gnn.evaluate import evaluate_run

    check_options(device=device, tail_boost=tail_boost)
    if graph_reach:
        if protocol is not None:
            raise V2HTError("--graph-reach measures under the run's own protocol; drop --protocol")
        if tail_boost:
            raise V2HTError("--graph-reach measures the run's own ranking; drop --tail-boost")
        _graph_reach(run, wd, split, device, json_out)
        return
    try:
        seeds = [int(x) for x in sampling_seeds.split(",") if x.strip()]
    except ValueError:
        raise V2HTError(f"--sampling-seeds {sampling_seeds!r}: expected comma-separated integers") from None
    if not seeds:
        raise V2HTError("--sampling-seeds: give at least one seed")
    out = evaluate_run(resolve_run(run, workdir(wd)), split, device=device, baselines=baselines,
                       protocol=protocol, sampling_seeds=seeds, tail_boost=tail_boost)
    if json_out:
        print_json(out)
    elif out.get("protocol") == "new-to-user":
        t = Table(title=f"new-to-user protocol ({len(seeds)} sampling seeds; history: {out['history_protocol']})")
        for c in ("model", "MAP", "P@5", "nDCG@5", "lists"):
            t.add_column(c, justify="left" if c == "model" else "right")
        for name in ("model", "popularity", "random"):
            if name in out:
                m = out[name]
                t.add_row(_model_label(out) if name == "model" else name,
                          *[f"{m[k]['mean']:.4f}±{m[k]['std']:.4f}" for k in ("map", "p@5", "ndcg@5")], str(m["lists"]))
        console.print(t)
    else:
        _render_eval(out, out.get("baselines"), _model_label(out))


def _graph_reach(run: str, wd: Optional[Path], split: str, device: str, json_out: bool) -> None:
    from ..gnn.graph_reach import run_reach
    from ..gnn.runs import load_run

    run_dir = resolve_run(run, workdir(wd))
    out = run_reach(load_run(run_dir, device=device), run_dir, split, device=device)
    if json_out:
        print_json(out)
        return
    t = Table(title=f"graph reach, {split} ({out['protocol']}): long-tail uses of in-vocabulary tags")
    t.add_column("what")
    t.add_column("uses", justify="right")
    t.add_row(f"hits in the top {out['k']}", str(out["hits"]))
    t.add_row("misses", str(out["misses"]))
    t.add_row("  with a typed (cp/ss/po) edge", str(out["misses_with_typed_edge"]))
    for name, n in out["misses_reachable"].items():
        t.add_row(f"  a typed neighbour in: {name}", str(n))
    t.add_row("  within two typed hops: any", str(out["within_two_hops"]["misses_reachable"]["any"]))
    t.add_row(f"hits a +{out['bar']:.0%} lift adds", str(out["hits_the_bar_adds"]))
    console.print(t)
    need, need2 = out["share_of_reachable_misses_needed"], out["within_two_hops"]["share_of_reachable_misses_needed"]
    if need is not None:
        console.print(f"the bar needs {need:.0%} of the reachable misses turned into hits, none of the hits lost"
                      + (f" ({need2:.0%} of those within two hops)" if need2 is not None else ""))


def recommend(
    run: str = RunArg,
    post: Optional[str] = typer.Option(None, "--post", help="A post id of the prepared data set."),
    text: Optional[str] = typer.Option(None, "--text", help="The text of a new post."),
    video: Optional[Path] = typer.Option(None, "--video", help="A new video file: features extracted with the settings of the run's data set (`features extract`); --text is its description."),
    user: Optional[str] = typer.Option(None, "--user", help="The author of the new post (unknown users get the no-history fallback)."),
    category: Optional[str] = typer.Option(None, "--category", help="The new post's category path, general first: 'food > noodles' (a run whose head reads the category group; kuairec)."),
    k: int = typer.Option(10, "-k", help="How many hashtags."),
    explain: bool = typer.Option(False, "--explain", help="Explain each suggested long-tail hashtag (graph evidence, learned weights, score lift)."),
    candidates: int = typer.Option(DEFAULT_CANDIDATES, "--candidates", "-n", help="Two-stage ranking by the V2HT network: a linearised scorer retrieves N hashtags, the exact model reranks them (the run's metrics.json records how often that top 10 equals the exact one)."),
    exact: bool = typer.Option(False, "--exact", help="Rank every hashtag with the exact model (every (post, hashtag) pair scored: slower)."),
    tail_boost: float = TailBoostOpt,
    wd: Optional[Path] = WorkdirOpt,
    store: Optional[str] = StoreOpt,
    device: str = typer.Option("cpu", help="cpu | cuda."),
    json_out: bool = JsonOpt,
):
    """Top-k hashtags for a post of the data set (--post) or a new post (--text, --video, --user).

    A V2HT run ranks in two stages by default (--candidates N); --exact ranks
    every hashtag exactly. A run with a fusion head (the default model)
    scores every hashtag with the head."""
    from .common import process_seconds

    t_start = process_seconds()  # interpreter start-up and imports so far
    check_options(k=k, device=device, candidates=candidates, tail_boost=tail_boost)  # no torch import yet
    if (post is None) == (text is None and video is None):
        raise V2HTError("give either --post ID or --text \"...\" and/or --video FILE (with --user U)")
    path = category_path(category, post)
    w = workdir(wd)
    run_dir = resolve_run(run, w)
    if text is not None:
        from ..kg.readers import new_post_text

        # composed as the run's data set composed its posts' texts (kuairec:
        # the category path first), before the tokens are taken from it
        text = new_post_text(_run_data_format(run_dir), text, path)
    pending_tokens = None
    if text is not None and video is None:
        from ..kg.tokens_ahead import tokens_ahead

        # forked before torch loads: spaCy works on the text meanwhile
        pending_tokens = tokens_ahead(text)
    from ..gnn.evaluate import recommend as rec
    from ..gnn.runs import load_run

    r = load_run(run_dir, device=device)
    from ..gnn.hybrid import HybridScorer, load_hybrid

    hybrid = HybridScorer(r, run_dir, device) if load_hybrid(run_dir) is not None else None
    t_loaded = process_seconds()
    # a tail boost reorders every hashtag: the V2HT network then ranks them all exactly
    n_cand = (None if exact or tail_boost or hybrid is not None or candidates >= r.data.n_hashtags
              else candidates)
    ranking = ({"by": "fusion head", "exact": True} if hybrid is not None else
               {"by": "V2HT", "exact": n_cand is None, "candidates": n_cand or r.data.n_hashtags})
    if tail_boost:
        ranking["tail_boost"] = tail_boost
    ds = r.data.ds
    truth: list[str] = []
    features = video_info = None
    if video is not None:
        from .features_cmd import video_features

        features, text, video_info = video_features(r, video, text, device)
    if post is not None:
        if post not in ds.post_index:
            raise DataError(f"unknown post id {post!r}")
        row = ds.post_index[post]
        recs = rec(r, [row], k=k, device=device, hybrid=hybrid, candidates=n_cand, tail_boost=tail_boost)[0]
        truth = [ds.hashtags[t].name for t in ds.posts[row].tags]
        user = ds.users[ds.posts[row].user]["name"]
    else:
        if user is not None and user not in ds.user_index:
            err_console.print(f"[yellow]note:[/] unknown user {user!r}: using the no-history fallback")
        tokens = pending_tokens() if pending_tokens is not None else None
        if path and (hybrid is None or "category" not in hybrid.groups):
            err_console.print("[yellow]note:[/] this run's model does not read categories: --category is ignored")
        recs = rec(r, text=text, tokens=tokens, user=user, k=k, device=device, hybrid=hybrid,
                   features=features, candidates=n_cand, categories=path, tail_boost=tail_boost)
    t_scored = process_seconds()
    lt = {h.name for h in ds.hashtags if h.longtail}
    # the spelling posts used most (the canonical name is the graph's: words
    # joined by spaces, "team follow back", "作品 推广"), for a user to paste
    written = {h.name: h.surfaces[0] if h.surfaces else h.name for h in ds.hashtags}
    items = [{"rank": i + 1, "tag": t, "surface": written.get(t, t), "score": s, "longtail": t in lt,
              "true": t in truth} for i, (t, s) in enumerate(recs)]
    if not json_out:
        t = Table(title=f"top-{k} hashtags" + (f" for post {post}" if post else "")
                  + (f" (tail boost {tail_boost:g})" if tail_boost else ""),
                  caption=(f"ranked by the model's score − {tail_boost:g}·log(1 + known uses); "
                           "score: the model's own") if tail_boost else None)
        shown = any(x["surface"] != x["tag"] for x in items)
        for c in ("rank", "hashtag") + (("as written",) if shown else ()) + ("score", "long-tail", "true"):
            t.add_column(c, overflow="fold")  # folded, never cut with an ellipsis: a tag to copy
        for x in items:
            t.add_row(str(x["rank"]), x["tag"], *(("#" + x["surface"].lstrip("#"),) if shown else ()), f"{x['score']:.4f}",
                      "yes" if x["longtail"] else "", "✓" if x["true"] else "")
        console.print(t)
        if truth:
            console.print(f"true hashtags: {', '.join(truth)}")
    explanations = None
    if explain:
        from ..kg.store import open_store
        from .explain_cmd import explain_suggestions

        # prints one tree per long-tail suggestion unless --json
        with open_store(store, w.root) as gs:
            explanations = explain_suggestions(r, gs, post=post, text=text, user=user,
                                               suggestions=[(x["tag"], x["score"]) for x in items],
                                               json_out=json_out, longtail_only=True, hybrid=hybrid,
                                               features=features, categories=path)
    if json_out:
        out = {"post": post, "user": user, "recommendations": items, "ranking": ranking}
        if post is not None:
            out["truth"] = truth
        if video_info is not None:
            out["video"] = video_info
        if explanations is not None:
            out["explanations"] = explanations
        t_end = process_seconds()
        out["timing"] = {"startup_s": round(t_start, 3), "load_s": round(t_loaded - t_start, 3),
                         "score_s": round(t_scored - t_loaded, 3), "explain_s": round(t_end - t_scored, 3),
                         "total_s": round(t_end, 3)}
        print_json(out)
    if not explain:
        from . import common

        common.FAST_EXIT = True


def results(
    wd: Optional[Path] = WorkdirOpt,
    table: str = typer.Option("variants", help="headline (every baseline, the paper's V2HT, the default model and its ablations, both protocols, new-to-user) | variants (paper Table 2: full, w/o U, w/o P, w/o UP) | modalities (Table 4)."),
    neural_row: bool = typer.Option(True, "--neural-row/--no-neural-row", help="headline: include the '+ V2HT network score' ablation (scores every valid and test post with V2HT: slow)."),
    neural_seeds: Optional[str] = typer.Option(None, help="headline: fit the '+ V2HT network score' row for these seeds only (default: every seed)."),
    ablation_seeds: Optional[str] = typer.Option(None, help="headline: fit the other ablation rows for these seeds only (default: every seed)."),
    seeds: str = typer.Option("0,1,2", help="Comma-separated seeds; mean ± std over them."),
    epochs: int = typer.Option(20, help="Maximum epochs per run (early stopping on validation NDCG@10)."),
    batch_size: int = typer.Option(32, help="Posts per mini-batch."),
    lr: float = typer.Option(3e-3, help="Adam learning rate."),
    patience: int = typer.Option(3, help="Early-stopping patience."),
    valid_posts: Optional[int] = typer.Option(None, help="Validate each epoch on a fixed subset of this many posts."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Markdown file to write (a .json beside it) (default: <workdir>/reports/results-TABLE.md)."),
    title: str = typer.Option("", help="Heading of the table."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads per run (default: the cores no other process is busy on)."),
    json_out: bool = JsonOpt,
):
    """Regenerate a paper table on the work directory's data set: all variants (or modality subsets) over seeds, with the baselines."""
    from ..gnn.experiments import run_table, to_markdown, write_results

    check_options(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, valid_posts=valid_posts, threads=threads)

    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise V2HTError(f"--seeds {seeds!r}: expected comma-separated integers") from None
    w = workdir(wd)
    if not (w.data / "manifest.json").exists():
        raise DataError("no prepared data set; run `v2ht-kg build` first", str(w.root))
    if table == "headline":
        from ..gnn import benchmark

        res = benchmark.run_headline(w, seed_list, epochs=epochs, valid_posts=valid_posts, threads=threads,
                                     neural_row=neural_row,
                                     neural_seeds=[int(x) for x in neural_seeds.split(",")] if neural_seeds else None,
                                     ablation_seeds=[int(x) for x in ablation_seeds.split(",")] if ablation_seeds else None,
                                     progress=None if json_out else (lambda m: err_console.print(f"[dim]{m}[/]")))
        path = out or (w.reports / "results-headline.md")
        benchmark.write(res, path, title or "Headline benchmark")
        if json_out:
            print_json(res)
        else:
            console.print(benchmark.to_markdown(res, title or "Headline benchmark"))
            console.print(f"written: {path} (+ .json)")
        return
    res = run_table(w, table, seed_list, epochs=epochs, batch_size=batch_size, lr=lr, patience=patience,
                    valid_posts=valid_posts, train_options={"threads": threads} if threads else None,
                    progress=None if json_out else (lambda m: err_console.print(f"[dim]{m}[/]")))
    path = out or (w.reports / f"results-{table}.md")
    write_results(res, path, title)
    if json_out:
        print_json(res)
    else:
        console.print(to_markdown(res, title))
        console.print(f"written: {path} (+ .json)")
