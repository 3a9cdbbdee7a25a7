"""`v2ht-kg explain`: why a (long-tail) hashtag was suggested for a post, and
the hook `recommend --explain` calls for each suggested long-tail tag."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import typer

from ..kg.errors import V2HTError
from ..kg.workdir import Workdir
from .common import JsonOpt, StoreOpt, WorkdirOpt, category_path, console, print_json


def _run_workdir(wd: Optional[Path], run_cfg: dict | None) -> Path:
    """--workdir (or V2HT_WORKDIR) when given; else the work directory of the
    run's data set (its parent folder), whose embedded store the run was built with."""
    if wd is not None or run_cfg is None:
        return Workdir.resolve(wd).root
    return Path(run_cfg["dataset_dir"]).resolve().parent


def explain(
    run: Optional[Path] = typer.Argument(None, help="Run folder or run name under <workdir>/runs (from `v2ht-kg train`). Without it only the graph evidence is shown."),
    tag: str = typer.Option(..., "--tag", "-t", help="The hashtag to explain (canonical name or a surface form such as KidDancer)."),
    post: Optional[str] = typer.Option(None, "--post", help="Post id of the prepared data set (needs RUN)."),
    text: Optional[str] = typer.Option(None, "--text", help="Text of a new post."),
    user: Optional[str] = typer.Option(None, "--user", help="Author of the new post (a user name of the data set)."),
    category: Optional[str] = typer.Option(None, "--category", help="The new post's category path, general first: 'food > noodles' (the fusion head's category group)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also draw the explanation subgraph to FILE.png or FILE.html (self-contained)."),
    limit: int = typer.Option(10, "--limit", help="Neighbours shown per relation type, past user tags listed."),
    wd: Optional[Path] = WorkdirOpt,
    store: Optional[str] = StoreOpt,
    json_out: bool = JsonOpt,
):
    """Explain a hashtag: graph evidence, learned propagation, score, user signal, attention.

    The graph evidence: typed neighbours, and paths to the post's and the
    user's hashtags. The learned propagation: edge weights and per-layer
    shares of e'(h). The score with and without propagation.

    Examples: v2ht-kg explain RUN --post v0000034 --tag "saffron hill";
    v2ht-kg explain --tag KidDancer --out kid.html   (graph evidence only, no model)
    """
    from ..gnn.explain import explain_graph_only, explain_tag, to_jsonable
    from ..gnn.explain_render import draw, render
    from ..kg.store import open_store

    if limit < 1:
        raise V2HTError("--limit must be at least 1")
    path = category_path(category, post)
    if out is not None and out.suffix.lower() not in (".png", ".html", ".htm"):
        raise V2HTError(f"--out {out}: use a .png or .html file name")
    if run is None:
        if post is not None:
            raise V2HTError("--post needs a RUN (the post's content is read through the run's data set)")
        with open_store(store, _run_workdir(wd, None)) as gs:
            expl = explain_graph_only(gs, tag, text=text, user=user, limit=limit)
    else:
        from ..gnn.runs import load_run
        from .train_cmd import resolve_run

        from ..gnn.hybrid import HybridScorer, load_hybrid

        run_dir = resolve_run(str(run), Workdir.resolve(wd))
        r = load_run(run_dir)
        if text is not None:
            from ..kg.readers import new_post_text

            text = new_post_text(r.data.ds.source_format, text, path)  # as recommend composes it
        with open_store(store, _run_workdir(wd, r.cfg)) as gs:
            expl = explain_tag(r, gs, tag, post=post, text=text, user=user, limit=limit)
        if load_hybrid(run_dir) is not None:
            expl["fusion"] = fusion_attribution(HybridScorer(r, run_dir), r, expl["tag"], post=post, text=text,
                                                user=user, categories=path)
    expl = to_jsonable(expl)
    if out is not None:
        draw(expl, out)
    if json_out:
        print_json(expl)
        return
    render(expl, console)
    if out is not None:
        console.print(f"drawing written to {out}")


def explain_suggestions(run, store, *, post: str | None = None, text: str | None = None, user: str | None = None,
                        suggestions: Sequence[str | tuple[str, float]], json_out: bool = False,
                        limit: int = 10, longtail_only: bool = True, hybrid=None,
                        features: dict | None = None, categories: Sequence[str] = ()) -> list[dict]:
    """Explain each suggested long-tail tag of one post (``recommend --explain``).

    ``run``: a gnn.evaluate.Run (gnn.runs.load_run); ``store``: an open
    GraphStore; ``post`` or ``text`` (+ ``user``) as given to recommend;
    ``suggestions``: tag names or (name, probability) pairs, best first;
    ``features``: a new post's visual/acoustic sequences (recommend --video);
    ``categories``: its category path (recommend --category).
    Prints a rich tree per tag unless ``json_out``; returns the explanations
    (JSON-ready dicts) in suggestion order, for the caller's JSON output."""
    from ..gnn.explain import Explainer, to_jsonable
    from ..gnn.explain_render import render

    names = [s if isinstance(s, str) else s[0] for s in suggestions]
    ds = run.data.ds
    if longtail_only:
        names = [n for n in names if n in ds.tag_index and ds.hashtags[ds.tag_index[n]].longtail]
    if not names:
        if not json_out:
            console.print("no long-tail tag among the suggestions: nothing to explain")
        return []
    ex = Explainer(run, store, post=post, text=text, user=user, limit=limit, features=features)
    out = []
    for n in names:
        e = ex.explain(n)
        if hybrid is not None:
            e["fusion"] = fusion_attribution(hybrid, run, n, post=post, text=text, user=user, features=features,
                                             categories=categories)
        e = to_jsonable(e)
        out.append(e)
        if not json_out:
            render(e, console)
    return out


def fusion_attribution(hybrid, run, tag: str, *, post: str | None, text: str | None, user: str | None,
                       features: dict | None = None, categories: Sequence[str] = ()) -> dict:
    """The fusion head's side of an explanation (gnn.hybrid.attribute)."""
    from ..gnn.hybrid import attribute

    ds = run.data.ds
    h = ds.tag_index[tag]
    if post is not None:
        return attribute(hybrid, h, row=ds.post_index[str(post)])
    from ..kg.normalize import Normalizer

    tokens = Normalizer().tokens(text or "")
    uid = ds.user_index.get(str(user)) if user is not None else None
    return attribute(hybrid, h, tokens=tokens, user=uid, batch=run.data.new_post_batch(tokens, uid, features),
                     text=text, categories=categories)
