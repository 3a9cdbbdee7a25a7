"""`v2ht-kg build`, `cypher`, `query`, `export`, `store ...`: the graph."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from ..kg import cypher_lib
from ..kg.errors import V2HTError
from ..kg.prepare import default_params
from ..kg.readers import FORMATS, guess_format
from .common import JsonOpt, StoreOpt, WorkdirOpt, check_options, console, print_json, progress_bar, readable, workdir
from .data_cmd import (LongtailOpt, MaxPostsOpt, MinTagCountOpt, MinUserPostsOpt, SeedOpt, SplitOpt,
                       _render_stats)

ParamOpt = typer.Option(None, "--param", "-p", help="Query parameter key=value (repeatable); JSON values are parsed (n=5, tags='[\"a\",\"b\"]').")


def build(
    source: Optional[Path] = typer.Argument(None, help="Data folder (not needed for --format synthetic, which generates one)."),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help=f"Source format: {', '.join(FORMATS)}."),
    wd: Optional[Path] = WorkdirOpt,
    store: Optional[str] = StoreOpt,
    fresh: bool = typer.Option(False, "--fresh", help="Clear the store before loading; an embedded store this command starts drops its files (instant, and repairs a damaged store). A rebuild without it MERGEs and gives the same graph."),
    preset: str = typer.Option("small", help="Synthetic preset: tiny | small | insvideo."),
    min_tag_count: Optional[int] = MinTagCountOpt,
    min_user_posts: Optional[int] = MinUserPostsOpt,
    split: Optional[str] = SplitOpt,
    longtail_threshold: Optional[int] = LongtailOpt,
    max_posts: Optional[int] = MaxPostsOpt,
    seed: int = SeedOpt,
    wup_threshold: float = typer.Option(0.9, help="po: WUP similarity of the best senses at least this."),
    ss_max_depth: int = typer.Option(2, help="ss: hypernym hops between the two senses at most this."),
    co_min_count: int = typer.Option(2, help="co: shared training posts at least this."),
    no_wordnet: bool = typer.Option(False, "--no-wordnet", help="Skip ss/po (e.g. non-English hashtags)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed input lines (counted)."),
    json_out: bool = JsonOpt,
):
    """Prepare the data set and build the typed cp/ss/po/co hashtag graph in the store.

    Example: v2ht-kg build ../shared/data/twitter-hashtags-2013 --format twitter-hashtags-2013 --workdir DIR
    """
    import shutil

    from ..kg.dataset import PreparedDataset
    from ..kg.pipeline import build_graph, prepare_source, staging_dir
    from ..kg.relations import RelationParams
    from ..kg.stats import prepared_stats
    from ..kg.store import open_store

    check_options(min_tag_count=min_tag_count, min_user_posts=min_user_posts, longtail_threshold=longtail_threshold,
                  max_posts=max_posts, seed=seed, wup_threshold=wup_threshold, ss_max_depth=ss_max_depth,
                  co_min_count=co_min_count)
    fmt = fmt or ("synthetic" if source is None else guess_format(source))
    params = default_params(fmt, min_tag_count=min_tag_count, min_user_posts=min_user_posts, split=split,
                            longtail_threshold=longtail_threshold, max_posts=max_posts, seed=seed)
    w = workdir(wd)
    rel = RelationParams(wup_threshold=wup_threshold, ss_max_depth=ss_max_depth, co_min_count=co_min_count)
    with w.exclusive("build"), progress_bar(not json_out) as prog:
        # The store is reached and authenticated before anything is prepared;
        # the data set is staged beside data/ and replaces it only once the
        # store load and the graph.pt export succeeded (build_graph).
        with open_store(store, w.root, create=True, fresh=fresh) as gs:
            staged = staging_dir(w)
            try:
                ds, report = prepare_source(source, fmt, w, params, skip_bad=skip_bad, preset=preset,
                                            progress=prog, out_dir=staged)
                summary = build_graph(ds, gs, w, rel, fresh=fresh, use_wordnet=not no_wordnet, progress=prog)
            finally:
                shutil.rmtree(staged, ignore_errors=True)
    ds = PreparedDataset(w.data)
    if summary.get("cleared") and summary["cleared"] != "--fresh":
        from .common import err_console

        err_console.print(f"note: cleared the store before loading: {summary['cleared']}", markup=False, highlight=False,
                          soft_wrap=True)
    data, _ = prepared_stats(ds)
    out = {"data": {**data, "bad_lines_skipped": report["bad_lines_skipped"]}, "graph": summary}
    if json_out:
        print_json(out)
        return
    _render_stats("prepared data set", out["data"])
    t = Table(title="hashtag graph")
    t.add_column("relation")
    t.add_column("edges", justify="right")
    t.add_column("before priority", justify="right")
    for r, n in summary["edges"].items():
        t.add_row(r, str(n), str((summary["edges_before_priority"] or {}).get(r, "")))
    console.print(t)
    st = summary["relation_stats"] or {}
    console.print(f"overridden relations: {readable(summary['overridden']) or 'none'}")
    console.print(f"long-tail tags with a cp/ss/po neighbour: {st.get('longtail_with_semantic_neighbour')} of {st.get('longtail')}"
                  f"; isolated tags: {st.get('isolated')}")
    console.print(f"training posts loaded: {summary['train_posts_loaded']} ({summary['tagged_edges']} TAGGED edges); "
                  f"seconds: {readable(summary['seconds'])}")


def _rows_table(keys: list[str], rows: list[dict], title: str | None = None):
    """Rows as a table, or, where its columns would not fit the terminal
    without squeezing each to a few letters, as one key: value block per row
    (psql's expanded display)."""
    import json

    from rich.console import Group
    from rich.measure import Measurement
    from rich.rule import Rule

    # Evidence columns of other relation types are null on every row: hide
    # them (--json keeps every key).
    keys = [k for k in keys if any(r.get(k) is not None for r in rows)] or keys
    cells = [[v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
              for v in (r.get(k) for k in keys)] for r in rows]
    t = Table(title=title)
    for k in keys:
        t.add_column(k)
    for c in cells:
        t.add_row(*c)
    # minimum: every column as wide as its longest word; wider than the
    # terminal, words would be cut
    if not rows or Measurement.get(console, console.options.update_width(1 << 20), t).minimum <= console.width:
        return t
    blocks = [Rule(title, style="dim")] if title else []
    for i, c in enumerate(cells, 1):
        g = Table.grid(padding=(0, 1))
        g.add_column(style="bold", no_wrap=True)
        g.add_column(overflow="fold")
        for k, v in zip(keys, c):
            g.add_row(k, v)
        blocks += [Rule(f"row {i}", style="dim", align="left"), g]
    return Group(*blocks)


def cypher(
    query: str = typer.Argument(..., help="A Cypher statement; pass values with --param, never pasted into the text."),
    param: Optional[List[str]] = ParamOpt,
    write: bool = typer.Option(False, "--write", help="Allow writing clauses (CREATE, MERGE, SET, DELETE ...). Read-only without it."),
    wd: Optional[Path] = WorkdirOpt,
    store: Optional[str] = StoreOpt,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON array, one object per row."),
):
    """Run a Cypher statement against the store (read-only unless --write)."""
    from ..kg.store import open_store
    from .common import parse_params

    from ..kg.store import writing_clause

    params = parse_params(param)
    if not write:
        clause = writing_clause(query)  # answers before any round trip; the server refuses writes anyway
        if clause:
            raise V2HTError(f"this query writes ({clause}); pass --write to allow it")
    # Without --write the session logs in as the store's read-only user
    # (Neo4j: a READ session), so the server itself refuses any write.
    w = workdir(wd)
    with open_store(store, w.root, read_only=not write) as gs:
        _warn_inconsistent(gs, w)
        keys, rows = gs.run(query, params, write=write)
    if json_out:
        print_json(rows)
    else:
        console.print(_rows_table(keys, rows))
        console.print(f"{len(rows)} row(s)")


def _warn_inconsistent(gs, w) -> None:
    """One line on stderr when the store's build marker is missing or
    unfinished, or the store, data/ and graph.pt disagree (fingerprints)."""
    from ..kg.pipeline import consistency_problems
    from .common import err_console

    problems = consistency_problems(gs.build_info(), w)
    if problems:
        err_console.print("warning: " + "; ".join(problems), markup=False, highlight=False, soft_wrap=True)


def query(
    name: Optional[str] = typer.Argument(None, help="Query name from cypher/queries (see --list)."),
    param: Optional[List[str]] = ParamOpt,
    list_: bool = typer.Option(False, "--list", "-l", help="List the query library with parameters."),
    wd: Optional[Path] = WorkdirOpt,
    store: Optional[str] = StoreOpt,
    json_out: bool = JsonOpt,
):
    """Run a named query of the library in cypher/queries/ (read-only)."""
    from ..kg.store import open_store
    from .common import parse_params

    library = {q.name.split("/", 1)[1]: q for q in cypher_lib.list_queries("queries")}
    if list_ or not name:
        if json_out:
            print_json([{"name": n, "description": q.description, "params": q.params} for n, q in library.items()])
            return
        t = Table(title="query library (cypher/queries)")
        t.add_column("name")
        t.add_column("parameters (sample)")
        t.add_column("what it returns")
        for n, q in library.items():
            t.add_row(n, ", ".join(f"{k}={v!r}" for k, v in q.params.items()), q.description)
        console.print(t)
        return
    if name not in library:
        raise V2HTError(f"no query {name!r}; `v2ht-kg query --list` shows the library")
    q = library[name]
    # Parameters left out are null (the queries treat null as "no filter" or
    # "default"); the header samples are for the linter, not defaults.
    params = {k: None for k in q.params}
    params.update(parse_params(param, q.params))
    w = workdir(wd)
    with open_store(store, w.root, read_only=True) as gs:
        _warn_inconsistent(gs, w)
        rows = gs.read(q.name, **params)
    if json_out:
        print_json(rows)
    else:
        keys = list(rows[0].keys()) if rows else []
        console.print(_rows_table(keys, rows, title=name))
        console.print(f"{len(rows)} row(s)")


def export(
    fmt: str = typer.Option("pyg", "--format", "-f", help="pyg (torch_geometric Data, .pt) | graphml | csv (folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (pyg, graphml) or folder (csv)."),
    wd: Optional[Path] = WorkdirOpt,
    store: Optional[str] = StoreOpt,
    json_out: bool = JsonOpt,
):
    """Export the hashtag graph from the store (one query per relation type)."""
    from ..kg.dataset import PreparedDataset
    from ..kg.export import export_graph
    from ..kg.store import open_store

    w = workdir(wd)
    names = fp = None
    if (w.data / "manifest.json").exists():
        ds = PreparedDataset(w.data)
        names, fp = [h.name for h in ds.hashtags], ds.fingerprint
    with open_store(store, w.root, read_only=True) as gs:
        _warn_inconsistent(gs, w)
        info = export_graph(gs, out, fmt, names=names, fingerprint=fp or "")
    if json_out:
        print_json(info)
    else:
        per_type = ", ".join(f"{k} {n:,}" for k, n in info["edges"].items())
        console.print(f"exported {fmt} to {out}: {info['nodes']:,} hashtags, "
                      f"{sum(info['edges'].values()):,} edges ({per_type})")


store_app = typer.Typer(help="The embedded graph store.", no_args_is_help=True)


@store_app.command("serve")
def store_serve(wd: Optional[Path] = WorkdirOpt):
    """Keep the embedded ArcadeDB server of this work directory running (Ctrl-C stops it) and print how to connect.

    While it runs, every other command on the same work directory reuses it
    (no start-up cost per command), and any Bolt client can connect.
    """
    from ..kg.embedded import serve_forever

    w = workdir(wd).ensure()

    def ready(server) -> None:
        pw = w.store / ".password"
        console.print(f"serving {w.store} on [bold]{server.uri}[/] (database {server.database!r}, user {server.user!r}; "
                      f"password in {pw}, mode 0600). Ctrl-C stops it.")
        console.print(f"  python: neo4j.GraphDatabase.driver({server.uri!r}, auth=({server.user!r}, open({str(pw)!r}).read().strip()))")

    serve_forever(w.store, on_ready=ready)


@store_app.command("status")
def store_status(wd: Optional[Path] = WorkdirOpt, store: Optional[str] = StoreOpt, json_out: bool = JsonOpt):
    """Counts by label and relationship type, and the last build's status."""
    from ..kg.store import open_store

    from ..kg.pipeline import consistency_problems

    w = workdir(wd)
    with open_store(store, w.root, read_only=True) as gs:
        out = {"build": gs.build_info(), "counts": gs.counts()}
    out["problems"] = consistency_problems(out["build"], w)
    if json_out:
        print_json(out)
    else:
        console.print(_status_view(out))
    if out["problems"]:
        from .common import err_console

        err_console.print("warning: " + "; ".join(out["problems"]), markup=False, highlight=False, soft_wrap=True)


def _status_view(out: dict):
    """`store status` for a reader: the build marker as key: value lines and
    the counts as two narrow tables side by side (--json keeps the dict)."""
    import json

    from rich.columns import Columns
    from rich.console import Group

    b = out["build"]
    lines = Table.grid(padding=(0, 2))
    lines.add_column(style="bold")
    lines.add_column(overflow="fold")
    if b is None:
        lines.add_row("build", "none (this store was never built: `v2ht-kg build`)")
    else:
        lines.add_row("build", f"{b.get('status', '?')}, started {b.get('started', '?')}"
                      + (f", finished {b['finished']}" if b.get("finished") else ""))
        for key in ("source", "fingerprint", "graph_sha"):
            if b.get(key) is not None:
                lines.add_row(key, str(b[key]))
        sizes = [f"{b[k]:,} {label}" for k, label in (("hashtags", "hashtags"), ("edges", "typed edges"),
                                                       ("tagged", "TAGGED")) if isinstance(b.get(k), int)]
        if sizes:
            lines.add_row("loaded", ", ".join(sizes))
        params = b.get("graph_params")
        if params:
            try:
                params = ", ".join(f"{k} {v}" for k, v in json.loads(params).items())
            except (TypeError, ValueError, AttributeError):
                params = str(params)
            lines.add_row("relations", params)

    def counts(title: str, d: dict) -> Table:
        t = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1))
        t.add_column()
        t.add_column(justify="right")
        for k, n in d.items():
            t.add_row(k, f"{n:,}")
        if not d:
            t.add_row("(none)", "")
        return t

    c = out["counts"]
    problems = "; ".join(out["problems"]) or "none (store, data/ and graph.pt agree)"
    tail = Table.grid(padding=(0, 2))
    tail.add_column(style="bold")
    tail.add_column(overflow="fold")
    tail.add_row("problems", problems)
    return Group(lines, "", Columns([counts("nodes", c["nodes"]), counts("edges", c["edges"])], padding=(0, 6)),
                 "", tail)
