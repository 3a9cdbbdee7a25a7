"""Showing an explanation (gnn/explain.py): a rich tree for people, and a
drawing of the explanation subgraph as PNG (networkx + matplotlib, Agg) or
as one self-contained HTML file (inline SVG and script, nothing fetched)."""
from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from ..kg.errors import V2HTError
from ..kg.fsio import named

TYPE_COLOURS = {"cp": "#d62728", "ss": "#1f77b4", "po": "#2ca02c", "co": "#7f7f7f"}
TABLE_ROWS = 12  # neighbours shown in the propagation table
RICH_COLOURS = {"cp": "red", "ss": "blue", "po": "green", "co": "grey58"}


def _f(x: Any, nd: int = 3) -> str:
    return "" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))


def _t(kind: str) -> str:
    return f"[{RICH_COLOURS.get(kind, 'white')}]{kind}[/]"


_NUM = "#"  # a column name's prefix: numbers, right-aligned and never wrapped


def _table(*columns: str) -> Table:
    """A table that stays readable at 80 columns: numbers keep every digit
    (no wrap, no ellipsis), names and evidence fold onto more lines."""
    t = Table(show_edge=False)
    for c in columns:
        if c.startswith(_NUM):
            t.add_column(c[len(_NUM):], justify="right", no_wrap=True, min_width=5)
        else:
            t.add_column(c, overflow="fold", ratio=2 if c == "evidence" else 1)
    return t


# --------------------------------------------------------------------------- rich
def render(expl: dict, console: Console) -> None:
    tag = expl["tag"]
    head = f"[bold]why `{tag}`[/]"
    post = expl.get("post") or {}
    if post.get("id"):
        head += f" for post {post['id']} by {post.get('user')}"
    elif post.get("text") is not None:
        head += f" for the text {post['text']!r}" + (f" by {post.get('user')}" if post.get("user") else "")
    lt = "long-tail" if expl.get("longtail") else "head"
    head += f"  ({lt} tag, {expl.get('count')} uses)"
    root = Tree(head)
    if expl.get("summary"):
        root.add(f"[bold green]{expl['summary']}[/]")
    for w in expl.get("warnings") or []:
        root.add(f"[yellow]warning:[/] {w}")

    sc = expl.get("score")
    if sc:
        s = f"score: rank {sc['rank']} of {sc['hashtags']}, p = {sc['probability']:.3f} (logit {sc['logit']:.3f})"
        node = root.add(s)
        wo = sc.get("without_propagation")
        if wo:
            lift = sc["lift"]
            node.add(f"without propagation (e(h) for e'(h)): rank {wo['rank']}, p = {wo['probability']:.3f} "
                     f"(logit {wo['logit']:.3f})")
            node.add(f"lift from the graph: {lift['ranks_gained']:+d} ranks, logit {lift['logit']:+.3f}, "
                     f"p {lift['probability']:+.3f}")

    fu = expl.get("fusion")
    if fu:
        node = root.add(f"V2HT-KG fusion head ({fu['protocol']} history): rank {fu['rank']} of {fu['hashtags']}, "
                        f"share {fu['share']:.3f}")
        for g, d in fu["groups"].items():
            vals = ", ".join(f"{k} {v:.3g}" for k, v in d["features"].items()) or "no signal"
            node.add(f"{g}: without it rank {d['rank_without']} ({vals})")
        for v in fu.get("graph_neighbours") or []:
            sig = ", ".join(f"{k} {x:.3g}" for k, x in v["signals"].items())
            node.add(f"via {v['type']} neighbour `{v['neighbour']}` (weight {v['weight']:.2f}): {sig}")

    prop = expl.get("propagation")
    if prop:
        node = root.add(f"learned propagation (alpha {prop['alpha']}, {prop['layers']} GCN layers; "
                        f"shares of e'(h), sum to 1)")
        # no evidence column: the store's table below has each edge's evidence,
        # and without it the numbers keep their digits at 80 columns
        t = _table("neighbour", "type", *(_NUM + c for c in ["A", "A'"] + [f"layer {i + 1}" for i in
                                                                          range(prop["layers"])] + ["all layers"]))
        me = prop["self"]
        t.add_row("(self)", "", "", _f(me["A_prime"]), *[_f(x) for x in me["layer_shares"]], _f(me["source_share"]))
        shown = prop["neighbours"][:TABLE_ROWS]
        for n in shown:
            t.add_row(n["tag"], _t(n["type"]), _f(n["A"]), _f(n["A_prime"]),
                      *[_f(x) for x in n["layer_shares"]], _f(n["source_share"]))
        if prop.get("residual_share") is not None:
            t.add_row("(residual e(h))", "", "", "", *[""] * (prop["layers"] - 1), _f(prop["residual_share"]), "")
        node.add(t)
        more = len(prop["neighbours"]) - len(shown)
        if more > 0:
            node.add(f"... {more} more neighbours (--json lists all)")
        far = [s for s in prop["sources"] if (s["hops"] or 0) >= 2][:5]
        if far:
            node.add("from further away (via all layers): " + ", ".join(
                f"`{s['tag']}` ({s['hops']} hops, {s['share']:.3f})" for s in far))
        ck = prop["check"]
        node.add(f"[dim]check: shares sum to 1 within {ck['max_sum_deviation']:.1e}; "
                 f"e'(h) recomputed within {ck['max_embedding_deviation']:.1e}[/]")

    g = expl.get("graph") or {}
    node = root.add("graph evidence (store): " + ", ".join(
        f"{_t(k)} {v}" for k, v in (g.get("totals") or {}).items()))
    t = _table("neighbour", "type", _NUM + "weight", "evidence", _NUM + "uses")
    for kind, rows in (g.get("neighbours") or {}).items():
        for r in rows:
            t.add_row(r["tag"], _t(kind), _f(r["weight"]), r["evidence"], _f(r.get("count")))
    if t.rows:
        node.add(t)
    else:
        node.add("no neighbours: the tag is isolated in the graph")
    paths = g.get("paths") or []
    if g.get("path_targets"):
        pn = node.add(f"shortest typed paths (<= 3 hops) to {len(g['path_targets'])} hashtags of the text / "
                      f"the user's past posts: {len(paths)} found")
        for p in paths[:10]:
            hops = "".join(f" -{_t(ty)}-> `{b}`" for ty, b in zip(p["types"], p["tags"][1:]))
            pn.add(f"`{p['tags'][0]}`{hops}")
        if len(paths) > 10:
            pn.add(f"... {len(paths) - 10} more")

    u = expl.get("user") or {}
    if u.get("name"):
        past = u.get("past_tags", len(u.get("history") or []))
        nb = u.get("neighbours") or []
        un = root.add(f"user {u['name']}: {past} past tag{'' if past == 1 else 's'}"
                      + (f", {len(nb)} of them direct neighbours" if nb else ""))
        if nb:
            for r in nb:
                posts = f"{r['posts']} post{'' if r['posts'] == 1 else 's'}"
                un.add(f"past tag `{r['tag']}` ({posts}) is a {_t(r['type'])} neighbour: {r['evidence']}")
        else:
            un.add("none of the user's past tags is a direct neighbour")

    att = expl.get("attention")
    if att:
        an = root.add("attention pooling for this tag (top steps; uniform = 1/steps)")
        for mod, a in att.items():
            if mod == "text":
                if a.get("empty"):
                    an.add("text: no known word (one empty step)")
                    continue
                items = ", ".join(f"'{s['word']}' {s['weight']:.2f}" for s in a["top"])
            else:
                what = "frames" if mod == "visual" else "clips"
                items = ", ".join(f"#{s['step']} {s['weight']:.3f}" for s in a["top"])
                items = f"{what} {items}"
            an.add(f"{mod} ({a['steps']} steps, uniform {a['uniform']:.3f}): {items}")
    console.print(root)


# --------------------------------------------------------------------------- drawing
def subgraph(expl: dict, max_neighbours: int = 15) -> dict:
    """Nodes and typed edges of the explanation: the tag, its neighbours
    (by learned share when a model is there, else by edge weight) and the
    hops of the paths found. Each edge: a, b, type, weight (A' when learned)."""
    tag = expl["tag"]
    nodes: dict[str, dict] = {tag: {"name": tag, "role": "tag", "longtail": expl.get("longtail")}}
    edges: dict[tuple[str, str], dict] = {}
    prop = expl.get("propagation")
    g = expl.get("graph") or {}
    user_tags = {r["tag"] for r in (expl.get("user") or {}).get("history") or []}
    text_tags = set(expl.get("text_hashtags") or [])

    def key(a, b):
        return (a, b) if a < b else (b, a)

    if prop:
        for n in prop["neighbours"][:max_neighbours]:
            nodes[n["tag"]] = {"name": n["tag"], "role": "neighbour", "share": n["layer_shares"][-1]}
            edges[key(tag, n["tag"])] = {"a": tag, "b": n["tag"], "type": n["type"], "weight": n["A_prime"],
                                         "label": f"{n['type']} A'={n['A_prime']:.2f} share={n['layer_shares'][-1]:.2f}",
                                         "evidence": n.get("evidence") or ""}
    else:
        rows = sorted((r for rs in (g.get("neighbours") or {}).values() for r in rs), key=lambda r: -(r["weight"] or 0))
        for r in rows[:max_neighbours]:
            nodes[r["tag"]] = {"name": r["tag"], "role": "neighbour", "longtail": r.get("longtail")}
            edges[key(tag, r["tag"])] = {"a": tag, "b": r["tag"], "type": r["type"], "weight": r["weight"],
                                         "label": f"{r['type']} w={r['weight']:.2f}", "evidence": r["evidence"]}
    for p in (g.get("paths") or [])[:10]:
        for a, b, ty, w in zip(p["tags"], p["tags"][1:], p["types"], p["weights"]):
            for x in (a, b):
                nodes.setdefault(x, {"name": x, "role": "path"})
            edges.setdefault(key(a, b), {"a": a, "b": b, "type": ty, "weight": w, "label": f"{ty} w={w:.2f}",
                                         "evidence": ""})
    for n in nodes.values():
        n["user_tag"] = n["name"] in user_tags
        n["text_tag"] = n["name"] in text_tags
    return {"tag": tag, "nodes": list(nodes.values()), "edges": list(edges.values())}


def _layout(sg: dict) -> dict[str, tuple[float, float]]:
    import networkx as nx

    g = nx.Graph()
    for n in sg["nodes"]:
        g.add_node(n["name"])
    for e in sg["edges"]:
        g.add_edge(e["a"], e["b"], weight=max(float(e["weight"] or 0.0), 0.05))
    pos = nx.spring_layout(g, seed=0, weight="weight", center=(0, 0))
    return {k: (float(v[0]), float(v[1])) for k, v in pos.items()}


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with named(path):
            write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _node_colour(n: dict) -> str:
    if n["role"] == "tag":
        return "#ffbf00"
    if n.get("user_tag"):
        return "#9467bd"
    if n.get("text_tag"):
        return "#17becf"
    return "#dddddd"


def draw_png(sg: dict, path: Path, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = _layout(sg)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=100)
    for e in sg["edges"]:
        (x0, y0), (x1, y1) = pos[e["a"]], pos[e["b"]]
        w = float(e["weight"] or 0.0)
        ax.plot([x0, x1], [y0, y1], color=TYPE_COLOURS.get(e["type"], "black"), lw=1 + 6 * min(w, 1.0), alpha=0.7, zorder=1)
        ax.text((x0 + x1) / 2, (y0 + y1) / 2, e["label"], fontsize=6, ha="center", va="center", zorder=3,
                bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    for n in sg["nodes"]:
        x, y = pos[n["name"]]
        ax.scatter([x], [y], s=900 if n["role"] == "tag" else 300, c=_node_colour(n), edgecolors="black", zorder=2)
        ax.text(x, y - 0.09, n["name"], fontsize=8, ha="center", va="top", zorder=4)
    for kind, col in TYPE_COLOURS.items():
        ax.plot([], [], color=col, lw=3, label=kind)
    ax.scatter([], [], c="#9467bd", label="user's past tag")
    ax.scatter([], [], c="#17becf", label="in the text")
    ax.legend(loc="lower left", fontsize=7)
    ax.set_title(title or f"explanation of `{sg['tag']}`")
    ax.axis("off")
    fig.tight_layout()
    _atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
svg {{ border: 1px solid #ccc; background: #fff; }}
.edge {{ stroke-opacity: .7; }} .edge:hover {{ stroke-opacity: 1; }}
.node circle {{ stroke: #000; cursor: pointer; }} .node text {{ font-size: 11px; pointer-events: none; }}
.dim {{ opacity: .15; }}
#info {{ white-space: pre-wrap; font-family: monospace; margin-top: .5em; }}
</style></head><body>
<h2>{title}</h2>
<p>{summary}</p>
<p>Edges: <span style="color:#d62728">cp</span>, <span style="color:#1f77b4">ss</span>,
<span style="color:#2ca02c">po</span>, <span style="color:#7f7f7f">co</span>; width = weight (A' when learned).
Nodes: <span style="color:#c90">tag</span>, <span style="color:#9467bd">user's past tag</span>,
<span style="color:#17becf">in the text</span>. Hover an edge or node for details; click a node to highlight its edges.</p>
<svg id="g" width="{w}" height="{h}" viewBox="0 0 {w} {h}">{svg}</svg>
<div id="info"></div>
<script type="application/json" id="explanation">{data}</script>
<script>
(function () {{
  var info = document.getElementById('info');
  var sel = null;
  document.querySelectorAll('[data-info]').forEach(function (el) {{
    el.addEventListener('mouseenter', function () {{ info.textContent = el.getAttribute('data-info'); }});
  }});
  document.querySelectorAll('.node').forEach(function (el) {{
    el.addEventListener('click', function () {{
      var name = el.getAttribute('data-name');
      sel = (sel === name) ? null : name;
      document.querySelectorAll('.edge').forEach(function (e) {{
        var on = !sel || e.getAttribute('data-a') === sel || e.getAttribute('data-b') === sel;
        e.classList.toggle('dim', !on);
      }});
    }});
  }});
}})();
</script>
</body></html>
"""


def draw_html(sg: dict, path: Path, expl: dict | None = None, title: str = "") -> None:
    pos = _layout(sg)
    w, h, pad = 900, 650, 70
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    sx = (w - 2 * pad) / max(max(xs) - min(xs), 1e-9)
    sy = (h - 2 * pad) / max(max(ys) - min(ys), 1e-9)

    def xy(name):
        x, y = pos[name]
        return pad + (x - min(xs)) * sx, pad + (y - min(ys)) * sy

    esc = html.escape
    parts = []
    for e in sg["edges"]:
        (x0, y0), (x1, y1) = xy(e["a"]), xy(e["b"])
        wt = float(e["weight"] or 0.0)
        info = f"{e['a']} — {e['b']}\n{e['label']}\n{e.get('evidence') or ''}"
        parts.append(f'<line class="edge" data-a="{esc(e["a"])}" data-b="{esc(e["b"])}" data-info="{esc(info)}" '
                     f'x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
                     f'stroke="{TYPE_COLOURS.get(e["type"], "#000")}" stroke-width="{1 + 8 * min(wt, 1.0):.1f}">'
                     f'<title>{esc(info)}</title></line>')
    for n in sg["nodes"]:
        x, y = xy(n["name"])
        r = 18 if n["role"] == "tag" else 10
        extra = f"\nshare of e'(h): {n['share']:.3f}" if n.get("share") is not None else ""
        info = f"{n['name']} ({n['role']}){extra}"
        parts.append(f'<g class="node" data-name="{esc(n["name"])}" data-info="{esc(info)}">'
                     f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{_node_colour(n)}"><title>{esc(info)}</title></circle>'
                     f'<text x="{x:.1f}" y="{y + r + 12:.1f}" text-anchor="middle">{esc(n["name"])}</text></g>')
    data = json.dumps(expl if expl is not None else sg, ensure_ascii=False, default=str).replace("</", "<\\/")
    title = title or f"explanation of `{sg['tag']}`"
    text = _HTML.format(title=esc(title), summary=esc((expl or {}).get("summary") or ""), w=w, h=h,
                        svg="\n".join(parts), data=data)
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def draw(expl: dict, path: Path) -> Path:
    """The explanation subgraph to ``path`` (.png or .html)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise V2HTError(f"--out {path}: use a .png or .html file name")
    sg = subgraph(expl)
    if suffix == ".png":
        draw_png(sg, path)
    else:
        draw_html(sg, path, expl)
    return path
