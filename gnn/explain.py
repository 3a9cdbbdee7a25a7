"""Why a hashtag was suggested: graph evidence from the store, the learned
propagation, the score path, the user signal and the attention pooling.

Attribution of the propagated embedding (paper Eq. 7, gnn/propagation.py)
-------------------------------------------------------------------------
Layer l of the propagation computes, for every hashtag i,

    z^l_i = sum_{j in N(i) + {i}} Â_ij · x^l_j,   x^l = Y^l W^l   (no bias)
    Y^{l+1} = ReLU(z^l) on hidden layers,  e'(h) = z^{L-1}_h  (+ e(h) with gcn_residual)

1. Per-layer message shares.  For the explained tag h and each layer l the
   pre-activation z^l_h is split exactly into one message per neighbour j,
   m_j = Â_hj · x^l_j, the tag's own message (j = h, "self") and, on the last
   layer of a residual model, the residual e(h). Each part's share is its
   projection onto the whole, divided by the whole's squared length:

       share^l_j = <m_j, z^l_h> / ||z^l_h||²

   Because the parts sum to z^l_h, the shares sum to 1 exactly (a share can
   be negative: a message pointing against the result). On the last layer
   z^{L-1}_h is e'(h) itself, so the last-layer shares say how much of e'(h)
   each neighbour's message makes up; this is the headline of an explanation.

2. Source shares (all layers at once).  With the learned edge weights held at
   their values (they depend on e(h) through Eq. 4; here they are constants)
   and every ReLU at its observed on/off pattern, e'(h) is a linear function
   of the initial embeddings: e'(h) = sum_k J_hk e(k), J_hk = ∂e'(h)/∂e(k).
   The map has no bias, so this is exact (Euler's theorem for a piecewise
   linear, positively homogeneous map), and

       source_k = <J_hk e(k), e'(h)> / ||e'(h)||²

   again sums to 1. It credits the hashtags up to L hops away whose initial
   embedding reached e'(h), through every path; the explained tag's own
   e(h) ("self") is one of them. One backward pass computes all of them
   (gradient of <e'(h), stop_grad(e'(h))> times input).

Both are computed in float64 from the trained weights; ``check`` holds the
largest deviation of the sums from 1 and of the recomputed e'(h) from the
model's own.

Score path: the tag's logit, probability (sigmoid) and rank among all
hashtags for the post, and the same with propagation switched off for every
hashtag (e(h) in place of e'(h), in the attention and the interaction alike,
everything else unchanged); the difference is the lift the graph gave.
"""
from __future__ import annotations

import difflib
import math
from collections import deque
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..kg.errors import DataError, V2HTError
from ..kg.schema import RELATIONS

REL_NAMES = {r.upper(): r for r in RELATIONS}  # store type "CP" -> "cp"
MAX_PATH_TARGETS = 30  # hashtags of the text / the user's history that paths are sought to
SUGGEST = 5  # close names offered for an unknown tag


# --------------------------------------------------------------------------- attribution
def _layer_forward(prop, emb: torch.Tensor, a_hat: torch.Tensor, a_self: torch.Tensor):
    """Propagation with fixed edge weights, in emb's dtype: (per-layer x, per-layer z, e')."""
    topo = prop.topo
    rows, cols = topo.rows, topo.cols
    y = emb
    xs, zs = [], []
    for i, lin in enumerate(prop.layers):
        x = F.linear(y, lin.weight.to(emb.dtype))
        z = a_self.unsqueeze(1) * x
        if rows.numel():
            z = z.index_add(0, rows, a_hat.unsqueeze(1) * x[cols])
        xs.append(x)
        zs.append(z)
        y = torch.relu(z) if i < len(prop.layers) - 1 else z
    out = y + emb if prop.residual else y
    return xs, zs, out


def _hops(topo, h: int, max_hops: int) -> dict[int, int]:
    crow, cols = topo.crow.tolist(), topo.cols.tolist()
    dist = {h: 0}
    q = deque([h])
    while q:
        i = q.popleft()
        if dist[i] >= max_hops:
            continue
        for j in cols[crow[i]:crow[i + 1]]:
            if j not in dist:
                dist[j] = dist[i] + 1
                q.append(j)
    return dist


def _shares(parts: torch.Tensor, whole: torch.Tensor) -> torch.Tensor:
    denom = float(whole.dot(whole))
    if denom == 0.0:
        return torch.zeros(parts.shape[0], dtype=parts.dtype)
    return parts @ whole / denom


@torch.no_grad()
def _matrices(model) -> dict[str, torch.Tensor]:
    return model.propagation.matrices(model.hashtag_emb)


def propagation_attribution(model, tag_id: int, names: Sequence[str], top_sources: int = 15) -> dict | None:
    """The learned propagation around hashtag ``tag_id`` (see the module doc):
    per neighbour its relation, learned A, Eq. 5's A', Â and its message share
    on every layer, plus the source shares over all layers. None for a model
    without propagation."""
    prop = getattr(model, "propagation", None)
    if prop is None:
        return None
    topo = prop.topo
    h = int(tag_id)
    m = _matrices(model)
    dt = torch.float64
    emb0 = model.hashtag_emb.detach().to(dt)
    a_hat, a_self = m["A_hat"].detach().to(dt), m["A_hat_self"].detach().to(dt)

    with torch.no_grad():
        xs, zs, out = _layer_forward(prop, emb0, a_hat, a_self)
        model_out = model.propagation(model.hashtag_emb)[h].to(dt)
    lo, hi = int(topo.crow[h]), int(topo.crow[h + 1])
    nb = topo.cols[lo:hi]
    pair = topo.pair_of[lo:hi]
    n_layers = len(xs)
    layer_shares = []
    max_dev = 0.0
    for l in range(n_layers):
        x, z = xs[l], zs[l][h]
        parts = [a_hat[lo:hi].unsqueeze(1) * x[nb], (a_self[h] * x[h]).unsqueeze(0)]
        whole = z
        last = l == n_layers - 1
        if last and prop.residual:
            parts.append(emb0[h].unsqueeze(0))
            whole = out[h]
        parts_t = torch.cat(parts)
        s = _shares(parts_t, whole)
        if float(whole.dot(whole)) > 0:
            max_dev = max(max_dev, abs(float(s.sum()) - 1.0))
        layer_shares.append(s)

    # source shares: gradient x input of <e'(h), stop_grad(e'(h))> with weights fixed
    e_var = emb0.clone().requires_grad_(True)
    with torch.enable_grad():
        _, _, o = _layer_forward(prop, e_var, a_hat, a_self)
        target = o[h]
        s_val = target.dot(target.detach())
        (grad,) = torch.autograd.grad(s_val, e_var)
    norm2 = float(out[h].dot(out[h]))
    contrib = (grad * emb0).sum(1) / norm2 if norm2 > 0 else torch.zeros(emb0.shape[0], dtype=dt)
    src_sum = float(contrib.sum())
    if norm2 > 0:
        max_dev = max(max_dev, abs(src_sum - 1.0))
    dist = _hops(topo, h, n_layers)

    neighbours = []
    for k in range(hi - lo):
        j = int(nb[k])
        p = int(pair[k])
        neighbours.append({
            "tag": names[j], "id": j, "type": RELATIONS[int(topo.pair_type[p])],
            "prior": float(topo.pair_prior[p]), "A": float(m["A"][p]),
            "A_prime": float(m["A_prime"][lo + k]), "A_hat": float(m["A_hat"][lo + k]),
            "layer_shares": [float(layer_shares[l][k]) for l in range(n_layers)],
            "source_share": float(contrib[j]),
        })
    neighbours.sort(key=lambda r: (-r["layer_shares"][-1], r["tag"]))
    n_nb = hi - lo
    self_row = {"A_prime": float(m["A_prime_self"][h]), "A_hat": float(m["A_hat_self"][h]),
                "layer_shares": [float(layer_shares[l][n_nb]) for l in range(n_layers)],
                "source_share": float(contrib[h])}
    residual = float(layer_shares[-1][n_nb + 1]) if prop.residual else None
    order = torch.argsort(-contrib, stable=True).tolist()
    sources = [{"tag": names[k], "id": k, "hops": dist.get(k), "share": float(contrib[k])}
               for k in order if k in dist and contrib[k] != 0][:top_sources]
    rest = float(sum(float(contrib[k]) for k in dist)) - sum(s["share"] for s in sources)
    return {
        "alpha": prop.alpha, "layers": n_layers, "residual": prop.residual,
        "norm": math.sqrt(norm2),
        "self": self_row, "residual_share": residual, "neighbours": neighbours,
        "sources": sources, "sources_rest": rest, "receptive_field": len(dist),
        "check": {"max_sum_deviation": max_dev,
                  "max_embedding_deviation": float((out[h] - model_out).abs().max())},
    }


def summary_sentence(tag: str, prop: dict | None, limit: int = 2) -> str:
    """"most of what the model knows about `kid dancer` came from ..." from the last-layer shares."""
    if prop is None:
        return f"this model has no propagation: `{tag}` keeps its initial embedding"
    parts = [f"`{n['tag']}` ({n['type']}, {n['layer_shares'][-1]:.2f})"
             for n in prop["neighbours"][:limit] if n["layer_shares"][-1] > 0]
    own = f"its own embedding ({prop['self']['layer_shares'][-1]:.2f})"
    if not prop["neighbours"]:
        return f"`{tag}` has no graph neighbours: all it knows is {own}"
    if not parts:
        return f"no neighbour's message adds to `{tag}`: most of it is {own}"
    return f"most of what the model knows about `{tag}` came from {' and '.join(parts)}, besides {own}"


# --------------------------------------------------------------------------- scores
@torch.no_grad()
def _scores_with(model, batch, emb: torch.Tensor) -> torch.Tensor:
    """Logits (H,) of the one post in ``batch`` for every hashtag, with ``emb``
    as the hashtag side (attention and interaction), the rest of the model as is."""
    post = model.encode_posts(batch)
    cand = torch.arange(emb.shape[0], device=emb.device).unsqueeze(0)
    return model.score_candidates(post, cand, model.side_from(emb))[0]


def _rank(scores: torch.Tensor, h: int) -> int:
    return 1 + int((scores > scores[h]).sum())


def score_path(model, batch, tag_id: int) -> dict:
    """Rank, logit and probability with and without propagation (see the module doc)."""
    h = int(tag_id)
    with torch.no_grad():
        full = model.score_all(batch)[0].float()
    out: dict[str, Any] = {"hashtags": int(full.numel()), "rank": _rank(full, h), "logit": float(full[h]),
                           "probability": float(torch.sigmoid(full[h]))}
    if getattr(model, "propagation", None) is None:
        out["without_propagation"] = None
        return out
    base = _scores_with(model, batch, model.hashtag_emb.detach()).float()
    out["without_propagation"] = {"rank": _rank(base, h), "logit": float(base[h]),
                                  "probability": float(torch.sigmoid(base[h]))}
    out["lift"] = {"logit": out["logit"] - float(base[h]),
                   "probability": out["probability"] - float(torch.sigmoid(base[h])),
                   "ranks_gained": out["without_propagation"]["rank"] - out["rank"]}
    return out


# --------------------------------------------------------------------------- graph evidence
def evidence_text(row: dict) -> str:
    """One line of evidence for a tag_neighbours/neighbours row, told from the explained tag's side."""
    t = (row.get("type") or "").upper()
    a_is_tag = bool(row.get("tag_is_a"))
    mine = row.get("synset_a") if a_is_tag else row.get("synset_b")
    theirs = row.get("synset_b") if a_is_tag else row.get("synset_a")
    if t == "CP":
        return "shared word " + ", ".join(f"'{w}'" for w in (row.get("words") or []))
    if t == "SS":
        d = row.get("direction")
        tag_is_hyper = (d == "a_hypernym_of_b") == a_is_tag
        rel = "hypernym" if tag_is_hyper else "hyponym"
        depth = row.get("depth")
        return f"{mine} is a {rel} of {theirs}" + (f" ({depth} hop{'s' if depth != 1 else ''})" if depth else "")
    if t == "PO":
        wup = row.get("wup")
        return (f"WUP {wup:.3f}" if isinstance(wup, (int, float)) else "WUP ?") + f" ({mine} ~ {theirs})"
    if t == "CO":
        extra = []
        if isinstance(row.get("strength"), (int, float)):
            extra.append(f"strength {row['strength']:.2f}")
        if isinstance(row.get("pmi"), (int, float)):
            extra.append(f"PMI {row['pmi']:.2f}")
        return f"{row.get('co_count')} shared training posts" + (f" ({', '.join(extra)})" if extra else "")
    return ""


def _neighbour_row(r: dict) -> dict:
    return {"tag": r["neighbour"], "type": REL_NAMES.get(r["type"], r["type"]), "weight": r["weight"],
            "evidence": evidence_text(r), "overrides": r.get("overrides") or [],
            "count": r.get("neighbour_count"), "longtail": r.get("neighbour_longtail"),
            "fields": {k: r[k] for k in ("words", "synset_a", "synset_b", "direction", "depth", "wup",
                                         "co_count", "strength", "pmi", "tag_is_a") if r.get(k) is not None}}


def text_hashtags(tokens: Sequence[str], names: set[str], max_words: int = 3) -> list[str]:
    """Hashtag names that occur in the token sequence as contiguous words, in order of appearance."""
    found: list[str] = []
    toks = list(tokens)
    for i in range(len(toks)):
        for n in range(1, max_words + 1):
            cand = " ".join(toks[i:i + n])
            if i + n <= len(toks) and cand in names and cand not in found:
                found.append(cand)
    return found


def similar_names(store, raw: str, known: Sequence[str] | None = None, limit: int = SUGGEST) -> list[str]:
    """Close known names for an unknown tag: the store's similar_names (substring)
    query first, then difflib over every known name."""
    text = raw.strip().lstrip("#").lower()
    out: list[str] = []
    if store is not None and text:
        out = [r["tag"] for r in store.read("queries/similar_names", text=text, limit=limit)]
    if known is None and store is not None:
        known = [r["name"] for r in store.read("export/hashtags")]
    for n in difflib.get_close_matches(text, list(known or []), n=limit, cutoff=0.6):
        if n not in out:
            out.append(n)
    return out[:limit]


def unknown_tag_error(store, raw: str, known: Sequence[str] | None, where: str) -> V2HTError:
    close = similar_names(store, raw, known)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return V2HTError(f"unknown hashtag {raw!r} in {where}{hint}")


_normalizer = None


def normalise_tag(raw: str) -> str | None:
    """The canonical name of a surface form ("KidDancers" -> "kid dancer"), None if it has none."""
    global _normalizer
    if _normalizer is None:
        from ..kg.normalize import Normalizer

        _normalizer = Normalizer()
    try:
        t = _normalizer.tag(raw.lstrip("#"))
    except V2HTError:
        return None
    return t.name if t is not None else None


def resolve_store_tag(store, raw: str) -> dict:
    """The store's hashtag row (queries/tag) for a name or surface form; V2HTError with suggestions if absent."""
    for name in dict.fromkeys([raw, raw.strip().lower()]):
        rows = store.read("queries/tag", tag=name)
        if rows:
            return rows[0]
    canon = normalise_tag(raw)
    if canon:
        rows = store.read("queries/tag", tag=canon)
        if rows:
            return rows[0]
    raise unknown_tag_error(store, raw, None, "the graph store")


def graph_evidence(store, tag: str, *, targets: Sequence[str] = (), user_tags: Sequence[dict] = (),
                   limit: int = 10) -> dict:
    """Neighbours by relation type (strongest ``limit`` of each, with totals),
    shortest typed paths (<= 3 hops) to ``targets``, and the user's past tags
    that are direct neighbours. ``tag`` must be a store name."""
    rows = store.read("explain/tag_neighbours", tag=tag)
    by_type: dict[str, list[dict]] = {r: [] for r in RELATIONS}
    totals = {r: 0 for r in RELATIONS}
    all_nb: dict[str, dict] = {}
    for r in rows:
        nrow = _neighbour_row(r)
        all_nb[nrow["tag"]] = nrow
        kind = nrow["type"]
        totals[kind] = totals.get(kind, 0) + 1
        if len(by_type.setdefault(kind, [])) < limit:
            by_type[kind].append(nrow)
    targets = [t for t in dict.fromkeys(targets) if t != tag][:MAX_PATH_TARGETS]
    paths = []
    if targets:
        for p in store.read("explain/typed_paths", tag=tag, targets=list(targets)):
            paths.append({"target": p["target"], "tags": p["tags"], "hops": p["hops"],
                          "types": [REL_NAMES.get(t, t) for t in p["types"]], "weights": p["weights"]})
    user_nb = []
    for u in user_tags:
        if u["tag"] in all_nb:
            nrow = all_nb[u["tag"]]
            user_nb.append({"tag": u["tag"], "posts": u["posts"], "type": nrow["type"], "evidence": nrow["evidence"]})
    return {"neighbours": by_type, "totals": totals, "paths": paths, "path_targets": list(targets),
            "user_neighbours": user_nb, "_all": all_nb}


def user_history(store, user: str, exclude_post: str | None = None) -> list[dict]:
    return store.read("explain/user_history", user=user, exclude=exclude_post)


# --------------------------------------------------------------------------- attention
def attention_focus(model, data, batch, tag_id: int, tokens: Sequence[str], top: int = 3) -> dict:
    """Per modality the steps the attention pooling weighted most for this tag:
    text steps are the words the model read, visual/acoustic steps are frame/clip indices."""
    alpha = model.attention(batch, torch.tensor([int(tag_id)]))
    words = [t for t in tokens if t in data.kv.key_to_index][:data.max_text_tokens]
    out = {}
    for mod, a in alpha.items():
        n = int(batch.lengths[mod][0])
        w = a[0, :n].float()
        idx = torch.argsort(-w, stable=True)[:top].tolist()
        steps = []
        for i in idx:
            item: dict[str, Any] = {"step": i, "weight": float(w[i])}
            if mod == "text":
                item["word"] = words[i] if i < len(words) else None
            steps.append(item)
        out[mod] = {"steps": n, "uniform": 1.0 / max(n, 1), "top": steps,
                    "empty": mod == "text" and not words}
    return out


# --------------------------------------------------------------------------- run checks
def check_store_matches_run(store, run) -> list[str]:
    """Errors when the store holds a graph of another data set; warnings for a partial build."""
    info = store.build_info()
    if info is None:
        raise V2HTError(f"the graph store {store.uri} holds no built graph; run `v2ht-kg build` first")
    fp = info.get("fingerprint")
    want = run.cfg.get("data_fingerprint")
    if fp and want and fp != want:
        raise V2HTError(f"the run was trained on another graph: the store holds data set {fp}, "
                        f"the run {want}; point --store/--workdir at the run's store")
    warnings = []
    if info.get("status") != "complete":
        warnings.append("the last build of the store did not complete; the graph may be partial")
    return warnings


def check_run_graph(run) -> None:
    """The graph snapshot the model was built on must be the one it was trained on."""
    from .runs import graph_fingerprint

    gp, gfp = run.cfg.get("graph_path"), run.cfg.get("graph_fingerprint")
    if gp and gfp and Path(gp).exists() and graph_fingerprint(Path(gp)) != gfp:
        raise DataError(f"the run was trained on another graph snapshot (fingerprint {gfp}, "
                        f"file {graph_fingerprint(Path(gp))})", gp)


# --------------------------------------------------------------------------- the explainer
class Explainer:
    """Explanations for one post (a data set post, or a new text by a user)
    from one run and one store; the post is encoded once for any number of tags."""

    def __init__(self, run, store, *, post: str | None = None, text: str | None = None,
                 user: str | None = None, limit: int = 10, features: dict | None = None):
        self.run, self.store, self.limit = run, store, limit
        ds = run.data.ds
        self.names = [h.name for h in ds.hashtags]
        self.warnings = check_store_matches_run(store, run)
        check_run_graph(run)
        if post is not None and text is not None:
            raise V2HTError("give --post or --text, not both")
        self.post_id = post
        if post is not None:
            row = ds.post_index.get(str(post))
            if row is None:
                raise V2HTError(f"unknown post {post!r} in the data set {ds.root}")
            p = ds.posts[row]
            uname = ds.users[p.user]["name"] if p.user < len(ds.users) else None
            if user is not None and user != uname:
                raise V2HTError(f"post {post!r} is by user {uname!r}, not {user!r}")
            self.user, self.tokens = uname, list(p.tokens)
            self.batch = run.data.batch([row])
            self.post = {"id": p.id, "row": row, "split": p.split, "user": uname, "text": p.text,
                         "true_tags": [self.names[t] for t in p.tags]}
        elif text is not None:
            from ..kg.normalize import Normalizer

            uid = None
            if user is not None:
                uid = ds.user_index.get(str(user))
                if uid is None:
                    close = difflib.get_close_matches(str(user), list(ds.user_index), n=3)
                    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
                    raise V2HTError(f"unknown user {user!r} in the data set {ds.root}{hint}")
            self.user, self.tokens = user, Normalizer().tokens(text)
            self.batch = run.data.new_post_batch(self.tokens, uid, features)
            self.post = {"id": None, "text": text, "user": user, "tokens": self.tokens}
        else:
            raise V2HTError("give --post ID, or --text \"...\" (with --user U) to explain a suggestion")
        self.run.model.eval()
        from ..kg.records import UNKNOWN_USER

        # the pooled "unknown user" of sources without author ids has no history of its own
        known_user = self.user is not None and self.user != UNKNOWN_USER
        self.history = user_history(store, self.user, post) if known_user else []
        self.text_tags = text_hashtags(self.tokens, set(self.names))

    def tag_id(self, raw: str) -> int:
        idx = self.run.data.ds.tag_index
        h = idx.get(raw, idx.get(raw.strip().lower()))
        if h is None:
            canon = normalise_tag(raw)
            h = idx.get(canon) if canon else None
        if h is None:
            raise unknown_tag_error(self.store, raw, self.names, "this run's data set")
        return h

    def explain(self, raw_tag: str) -> dict:
        h = self.tag_id(raw_tag)
        tag = self.names[h]
        rows = self.store.read("queries/tag", tag=tag)
        if not rows:
            raise V2HTError(f"the graph store {self.store.uri} lacks the hashtag {tag!r} of this run; "
                            "rebuild the graph for the run's data set")
        model = self.run.model
        targets = self.text_tags + [u["tag"] for u in self.history]
        ev = graph_evidence(self.store, tag, targets=targets, user_tags=self.history, limit=self.limit)
        all_nb = ev.pop("_all")
        prop = propagation_attribution(model, h, self.names)
        if prop is not None:
            for n in prop["neighbours"]:
                s = all_nb.get(n["tag"])
                n["evidence"] = s["evidence"] if s else None
                n["in_store"] = s is not None
        score = score_path(model, self.batch, h)
        att = attention_focus(model, self.run.data, self.batch, h, self.tokens)
        hashtag = self.run.data.ds.hashtags[h]
        return {
            "tag": tag, "id": h, "longtail": hashtag.longtail, "count": hashtag.count,
            "train_count": hashtag.train_count, "post": self.post,
            "run": {"variant": self.run.cfg.get("variant"), "data_fingerprint": self.run.cfg.get("data_fingerprint")},
            "summary": summary_sentence(tag, prop),
            "score": score, "propagation": prop, "graph": ev,
            "user": {"name": self.user, "history": self.history[:self.limit], "past_tags": len(self.history),
                     "neighbours": ev["user_neighbours"]},
            "text_hashtags": self.text_tags, "attention": att,
            "warnings": list(self.warnings),
        }


def explain_tag(run, store, tag: str, *, post: str | None = None, text: str | None = None,
                user: str | None = None, limit: int = 10) -> dict:
    """The full explanation of ``tag`` for one post (see Explainer)."""
    return Explainer(run, store, post=post, text=text, user=user, limit=limit).explain(tag)


def explain_graph_only(store, tag: str, *, text: str | None = None, user: str | None = None,
                       limit: int = 10) -> dict:
    """Graph evidence alone, without a model: neighbours, paths to the text's and
    the user's hashtags, the user's past tags among the neighbours."""
    info = store.build_info()
    warnings = []
    if info is None:
        raise V2HTError(f"the graph store {store.uri} holds no built graph; run `v2ht-kg build` first")
    if info.get("status") != "complete":
        warnings.append("the last build of the store did not complete; the graph may be partial")
    row = resolve_store_tag(store, tag)
    name = row["name"]
    history: list[dict] = []
    if user is not None:
        if not store.read("explain/user", user=user):
            raise V2HTError(f"unknown user {user!r} in the graph store")
        history = user_history(store, user)
    text_tags: list[str] = []
    tokens: list[str] = []
    if text is not None:
        from ..kg.normalize import Normalizer

        tokens = Normalizer().tokens(text)
        grams = {" ".join(tokens[i:i + n]) for n in (1, 2, 3) for i in range(len(tokens) - n + 1)}
        known = {r["tag"] for r in store.read("explain/tags_named", names=sorted(grams))} if grams else set()
        text_tags = text_hashtags(tokens, known)
    ev = graph_evidence(store, name, targets=text_tags + [u["tag"] for u in history], user_tags=history, limit=limit)
    ev.pop("_all")
    return {"tag": name, "longtail": row.get("longtail"), "count": row.get("count"),
            "train_count": row.get("train_count"),
            "degree": {r: row.get(r) for r in RELATIONS},
            "post": {"text": text, "tokens": tokens, "user": user} if (text or user) else None,
            "summary": None, "score": None, "propagation": None, "graph": ev,
            "user": {"name": user, "history": history[:limit], "past_tags": len(history),
                     "neighbours": ev["user_neighbours"]},
            "text_hashtags": text_tags, "attention": None, "warnings": warnings}


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types (numpy and torch scalars to Python numbers; NaN/inf to null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic, torch.Tensor)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
