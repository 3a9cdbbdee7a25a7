"""The four hashtag relations of V2HT (paper §3.2.2) and their priority.

- cp (composition): a multi-word hashtag and the hashtags that are its words
  or its shorter contiguous phrases (``hip hop dance`` — ``hip hop``, ``dance``).
- ss (super-subordinate): one hashtag's WordNet synset is a hypernym of the
  other's, within a few hops.
- po (positive): Wu-Palmer similarity of the best sense pair at or above a
  threshold (the paper thresholds WUP "soft similarities").
- co (co-occurrence): the two hashtags appear together in training posts.

A pair keeps only its highest-priority relation (cp > ss > po > co), see
:func:`resolve_priority`. All builders take the vocabulary in id order
(objects with ``name`` and ``words``; ``kg.dataset.Hashtag`` fits) and return
:class:`~.schema.Edge` lists with ``a < b``, never a self loop, never a name
outside the vocabulary.

WordNet senses: a hashtag maps to the synsets of its words joined by ``_``
(then ``-``, for ``hip-hop``), through nltk's ``synsets`` (morphy finds the
base form; nouns come first, then verbs, adjectives, adverbs), keeping only
the first ``max_senses`` (default 3). WordNet orders senses by frequency, so
the cut keeps the readings a hashtag is likely to mean and drops rare ones
that would link ``dog`` to ``frank`` (hotdog) or ``kid`` to ``goatskin``.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .errors import DataError, V2HTError
from .schema import PRIORITY, RELATIONS, Edge
from .timing import timed


@dataclass
class RelationParams:
    """Thresholds of the relation builders.

    max_senses: WordNet senses kept per hashtag (the most frequent first).
    ss_max_depth: hypernym hops for ss. 1 = direct parent only; 2 (default)
        also links ``dog`` to ``animal`` (dog → domestic animal → animal)
        while 3+ starts to reach abstract classes (dog → organism at 3).
    wup_threshold: po needs best-sense WUP ≥ this. 0.9 (default) admits
        siblings only when their parent is at depth ≥ 8 of the noun
        hierarchy (dog/wolf 0.93 in, dog/cat 0.857 out). On 15k real words
        (bench/bench_relations.py) it gave 42k po edges for 13.5k
        WordNet-covered hashtags (mean po degree 6.2, 4.6e-4 of their pairs);
        0.85 gave degree 19 and 0.8 degree 38 (and 25x the time), i.e. broad
        cousins. Must be > 0.5 (see po_edges_from).
    co_min_count: co needs at least this many shared training posts; single
        co-occurrences are mostly noise and would make the graph dense.
    """

    max_senses: int = 3
    ss_max_depth: int = 2
    wup_threshold: float = 0.9
    co_min_count: int = 2

    def validate(self) -> None:
        if self.max_senses < 1:
            raise V2HTError(f"max_senses must be at least 1, not {self.max_senses}")
        if self.ss_max_depth < 1:
            raise V2HTError(f"ss_max_depth must be at least 1, not {self.ss_max_depth}")
        _check_threshold(self.wup_threshold)
        if self.co_min_count < 1:
            raise V2HTError(f"co_min_count must be at least 1, not {self.co_min_count}")


def _check_threshold(t: float) -> None:
    if not 0.5 < t <= 1.0:
        raise V2HTError(f"wup_threshold must be in (0.5, 1], not {t}")


def _words(h) -> list[str]:
    w = list(getattr(h, "words", None) or [])
    return w if w else h.name.split()


def _check_vocabulary(hashtags: Sequence) -> None:
    seen = set()
    for i, h in enumerate(hashtags):
        hid = getattr(h, "id", i)
        if hid != i:
            raise DataError(f"hashtags must be in id order: position {i} holds id {hid}")
        if h.name in seen:
            raise DataError(f"hashtag name {h.name!r} occurs twice in the vocabulary")
        seen.add(h.name)


# ---------------------------------------------------------------- cp -------
def composition_edges(hashtags: Sequence) -> list[Edge]:
    """cp: a hashtag of n ≥ 2 words to every vocabulary hashtag that is one of
    its words or a contiguous phrase of 2..n-1 of them. Weight 1; evidence
    {"words": the shorter hashtag's words}."""
    index = {h.name: h for h in hashtags}
    out: dict[tuple[str, str], Edge] = {}
    for h in hashtags:
        words = _words(h)
        n = len(words)
        if n < 2:
            continue
        for size in range(1, n):
            for start in range(n - size + 1):
                part = words[start : start + size]
                name = " ".join(part)
                if name == h.name or name not in index:
                    continue
                e = Edge(h.name, name, "cp", 1.0, {"words": part})
                out.setdefault(e.key, e)
    return list(out.values())


# ------------------------------------------------------------ WordNet -------
def hashtag_synsets(hashtags: Sequence, wn, max_senses: int = 3) -> list[list]:
    """The first ``max_senses`` WordNet synsets of each hashtag ([] if none)."""
    out = []
    for h in hashtags:
        words = [w for w in _words(h) if w]
        found: list = []
        if words:
            joins = ("_", "-") if len(words) > 1 else ("_",)
            for sep in joins:
                found = wn.synsets(sep.join(words))
                if found:
                    break
        out.append(found[:max_senses])
    return out


class _Taxonomy:
    """Memoised hypernym-graph look-ups on nltk synsets (hypernym and
    instance-hypernym links, as nltk's depth and WUP functions use)."""

    def __init__(self):
        self._anc: dict = {}
        self._nb: dict = {}
        self._maxd: dict = {}
        self._mind: dict = {}

    def ancestors(self, s) -> dict:
        """{ancestor-or-self: shortest number of hypernym hops}."""
        d = self._anc.get(s)
        if d is None:
            d = {}
            q = deque([(s, 0)])
            while q:
                x, k = q.popleft()
                if x in d:
                    continue
                d[x] = k
                for y in x.hypernyms() + x.instance_hypernyms():
                    if y not in d:
                        q.append((y, k + 1))
            self._anc[s] = d
        return d

    def neighbours(self, s) -> list:
        r = self._nb.get(s)
        if r is None:
            r = s.hypernyms() + s.instance_hypernyms() + s.hyponyms() + s.instance_hyponyms()
            self._nb[s] = r
        return r

    def max_depth(self, s) -> int:
        v = self._maxd.get(s)
        if v is None:
            v = self._maxd[s] = s.max_depth()
        return v

    def min_depth(self, s) -> int:
        v = self._mind.get(s)
        if v is None:
            v = self._mind[s] = s.min_depth()
        return v

    def wup(self, s1, s2) -> float | None:
        """nltk's ``s1.wup_similarity(s2)`` (simulate_root=True), reproduced
        step by step on memoised ancestor tables: about 20x faster, same
        value to the last bit (tests compare them)."""
        need_root = s1.pos() != "n" or s2.pos() != "n"
        a1, a2 = self.ancestors(s1), self.ancestors(s2)
        common = a1.keys() & a2.keys()
        if not common and not need_root:
            return None
        best = max((self.min_depth(x) for x in common), default=0)
        lch = sorted(x for x in common if self.min_depth(x) == best)
        # nltk adds a fake root (depth 0, named "*ROOT*", which sorts first)
        # whenever either synset is not a noun.
        root_is_lcs = need_root and best == 0
        if s1 in lch:
            sub = s1
        elif root_is_lcs:
            sub = None
        else:
            sub = lch[0]
        if sub is None:
            depth = 1
            len1 = max(a1.values()) + 1
            len2 = max(a2.values()) + 1
        else:
            depth = self.max_depth(sub) + 1
            len1 = self._path(s1, sub, a1, need_root)
            len2 = self._path(s2, sub, a2, need_root)
        len1 += depth
        len2 += depth
        return (2.0 * depth) / (len1 + len2)

    def _path(self, s, sub, anc, need_root) -> int:
        # nltk's shortest_path_distance(s, sub, simulate_root=need_root)
        if s == sub:
            return 0
        asub = self.ancestors(sub)
        d = min(anc[x] + asub[x] for x in anc.keys() & asub.keys())
        if need_root:
            d = min(d, max(anc.values()) + 1 + max(asub.values()) + 1)
        return d


def _ordered(x_name: str, y_name: str, x_val, y_val):
    return (x_name, y_name, x_val, y_val) if x_name < y_name else (y_name, x_name, y_val, x_val)


def _synset_index(synsets: list[list]) -> dict:
    """synset -> hashtag positions that have it, in position order."""
    idx: dict = {}
    for i, ss in enumerate(synsets):
        for s in ss:
            lst = idx.setdefault(s, [])
            if not lst or lst[-1] != i:
                lst.append(i)
    return idx


def ss_edges_from(hashtags: Sequence, synsets: list[list], tax: _Taxonomy, max_depth: int = 2) -> list[Edge]:
    """ss from precomputed senses: see :func:`wordnet_edges`."""
    idx = _synset_index(synsets)
    best: dict[tuple[str, str], tuple] = {}
    for j, ss in enumerate(synsets):
        for s in ss:
            for anc, depth in tax.ancestors(s).items():
                if depth == 0 or depth > max_depth:
                    continue
                for i in idx.get(anc, ()):
                    if i == j:
                        continue
                    key = tuple(sorted((hashtags[i].name, hashtags[j].name)))
                    cur = best.get(key)
                    if cur is None or depth < cur[0]:
                        best[key] = (depth, i, anc, j, s)
    edges = []
    for (a, b), (depth, i, hyper, j, hypo) in best.items():
        hi = hashtags[i].name
        direction = "a_hypernym_of_b" if hi == a else "b_hypernym_of_a"
        sa, sb = (hyper, hypo) if hi == a else (hypo, hyper)
        edges.append(
            Edge(a, b, "ss", 1.0 / depth,
                 {"synset_a": sa.name(), "synset_b": sb.name(), "direction": direction, "depth": depth})
        )
    return edges


def wup_radius(max_depth: int, threshold: float) -> int:
    """Largest path length that can still give WUP ≥ threshold for a synset
    whose longest hypernym path to the root is ``max_depth``."""
    return math.floor(2 * (max_depth + 1) * (1 - threshold) / threshold + 1e-9)


def po_edges_from(hashtags: Sequence, synsets: list[list], tax: _Taxonomy, threshold: float = 0.9) -> list[Edge]:
    """po from precomputed senses, scoring only pairs that can pass.

    Why the pruning loses nothing. nltk's WUP of synsets s1, s2 is
    ``2D / (len1 + len2 + 2D)`` where L is the chosen lowest common subsumer
    (a common hypernym, or a fake root when a non-noun is involved),
    ``D = max_depth(L) + 1`` and ``len_i`` is nltk's shortest_path_distance
    from s_i to L: the length of a real path (up to a shared ancestor, down
    to L) in the undirected hypernym graph. Hence:

    1. For a fake-root LCS, D = 1 and len_i ≥ 1, so WUP ≤ 0.5: with a
       threshold above 0.5 only real LCSs matter, and then the fake root
       never shortens len_i (its detour is longer than the direct climb to L).
    2. L is an ancestor of both, so D ≤ min(max_depth(s1), max_depth(s2)) + 1.
    3. WUP ≥ t  ⇔  len1 + len2 ≤ 2D(1-t)/t, and the undirected distance
       dist(s1, s2) ≤ len1 + len2 (triangle inequality through L).

    So every pair with WUP ≥ t lies within ``wup_radius(min max_depth, t)``
    hops of each other in the undirected graph of hypernym, hyponym and
    instance links. A breadth-first search from each hashtag synset to that
    radius (2 hops for most nouns at t = 0.9, 4 at most) yields a superset of
    the passing pairs, which are then scored exactly. Two hashtags sharing a
    synset (synonyms) score 1.0. The best sense pair of two hashtags is the
    maximum over their senses of ``wup(sense of a, sense of b)`` with a the
    name that sorts first (nltk's WUP is not symmetric when several subsumers tie); a sense
    pair outside the candidates scores below t, so it cannot be the best one
    of a passing pair.
    """
    _check_threshold(threshold)
    idx = _synset_index(synsets)
    names = [h.name for h in hashtags]
    best: dict[tuple[str, str], tuple[float, str, str]] = {}

    def offer(i: int, j: int, x, y) -> None:
        # x is a sense of hashtag i, y of hashtag j
        if i == j:
            return
        a, b, sa, sb = _ordered(names[i], names[j], x, y)
        w = tax.wup(sa, sb)
        if w is None or w < threshold:
            return
        key = (a, b)
        cur = best.get(key)
        if cur is None or w > cur[0]:
            best[key] = (w, sa.name(), sb.name())

    for s, tags in idx.items():
        for p in range(len(tags)):
            for q in range(p + 1, len(tags)):
                offer(tags[p], tags[q], s, s)
        md = tax.max_depth(s)
        radius = wup_radius(md, threshold)
        if radius == 0:
            continue
        seen = {s: 0}
        queue = deque([s])
        while queue:
            x = queue.popleft()
            d = seen[x]
            # each unordered synset pair once: from the one that sorts first
            if d > 0 and x in idx and s.name() < x.name() and d <= wup_radius(min(md, tax.max_depth(x)), threshold):
                for i in tags:
                    for j in idx[x]:
                        offer(i, j, s, x)
            if d == radius:
                continue
            for y in tax.neighbours(x):
                if y not in seen:
                    seen[y] = d + 1
                    queue.append(y)
    return [
        Edge(a, b, "po", w, {"wup": w, "synset_a": sa, "synset_b": sb}) for (a, b), (w, sa, sb) in best.items()
    ]


def wordnet_edges(
    hashtags: Sequence, wn, max_depth: int = 2, wup_threshold: float = 0.9, max_senses: int = 3
) -> tuple[list[Edge], list[Edge]]:
    """(ss, po) edges from WordNet; hashtags without synsets get neither.

    ss: a sense of one hashtag is a hypernym (or instance hypernym) of a sense
    of the other within ``max_depth`` hops (fewest hops over all sense pairs).
    Weight 1/hops; evidence {"synset_a", "synset_b", "direction", "depth"}.
    Hashtags sharing a synset are synonyms, not ss (they get po with WUP 1).

    po: best-sense WUP ≥ ``wup_threshold``; weight and evidence "wup" = that
    score. See :func:`po_edges_from` for how pairs are found without an
    all-pairs loop.
    """
    synsets = hashtag_synsets(hashtags, wn, max_senses)
    tax = _Taxonomy()
    return ss_edges_from(hashtags, synsets, tax, max_depth), po_edges_from(hashtags, synsets, tax, wup_threshold)


# ---------------------------------------------------------------- co -------
def _incidence(train_post_tags: Sequence[Sequence[int]], n_tags: int) -> sparse.csr_matrix:
    lengths = np.fromiter((len(t) for t in train_post_tags), dtype=np.int64, count=len(train_post_tags))
    try:
        cols = np.fromiter((int(x) for t in train_post_tags for x in t), dtype=np.int64, count=int(lengths.sum()))
    except (TypeError, ValueError) as e:
        raise DataError(f"training posts must list integer hashtag ids ({e})") from None
    bad = np.flatnonzero((cols < 0) | (cols >= n_tags))
    if bad.size:
        post = int(np.searchsorted(np.cumsum(lengths), bad[0], side="right"))
        raise DataError(f"training post {post} has tag id {int(cols[bad[0]])}, outside the vocabulary of {n_tags}")
    rows = np.repeat(np.arange(len(train_post_tags), dtype=np.int64), lengths)
    x = sparse.csr_matrix((np.ones(cols.size, dtype=np.int32), (rows, cols)), shape=(len(train_post_tags), n_tags))
    x.sum_duplicates()
    x.data[:] = 1  # a tag repeated within a post counts once
    return x


def cooccurrence_edges(train_post_tags: Sequence[Sequence[int]], hashtags: Sequence, min_count: int = 2) -> list[Edge]:
    """co: pairs of hashtags sharing at least ``min_count`` posts.

    Pass the TRAINING posts only (lists of hashtag ids = positions in
    ``hashtags``): co-occurrence counted over validation/test posts would
    leak their answers into the graph. Counts come from the posts given, not
    from the vocabulary's stored counts.

    Evidence: "count" (posts with both), "strength" = count / min(n_a, n_b)
    = max(P(a|b), P(b|a)) with n the posts carrying each tag among those
    given, and "pmi" = log(count·N / (n_a·n_b)). Weight = strength, in (0, 1]:
    a rare tag always used with a frequent one gets a strong link, which is
    what helps long-tail tags, whereas PMI is unbounded and noisy at low counts.
    """
    n_tags = len(hashtags)
    x = _incidence(train_post_tags, n_tags)
    n_posts = x.shape[0]
    per_tag = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
    c = sparse.triu(x.T.tocsr() @ x, k=1).tocoo()
    keep = c.data >= min_count
    ra, rb, cnt = c.row[keep], c.col[keep], c.data[keep].astype(np.float64)
    strength = cnt / np.minimum(per_tag[ra], per_tag[rb])
    pmi = np.log(cnt * n_posts / (per_tag[ra] * per_tag[rb]))
    names = [h.name for h in hashtags]
    edges = []
    for i, j, k, s, p in zip(ra.tolist(), rb.tolist(), cnt.tolist(), strength.tolist(), pmi.tolist()):
        edges.append(Edge(names[i], names[j], "co", s, {"count": int(k), "strength": s, "pmi": p}))
    return edges


# ----------------------------------------------------------- priority ------
def resolve_priority(*edge_lists: Iterable[Edge]) -> tuple[list[Edge], dict]:
    """One edge per unordered pair: the highest-priority relation (cp > ss >
    po > co). The kept edge's ``overrides`` lists the dropped relation types
    (a new Edge; the inputs are not modified). Within one type the higher
    weight wins. Edges come out in order of their pair's first appearance
    (so in input order). Returns (edges, report) with report = {"before":
    {type: n}, "after": {type: n}, "overridden": {"kept>dropped": n},
    "self_loops_dropped": n}."""
    before = {r: 0 for r in RELATIONS}
    best: dict[tuple[str, str], Edge] = {}
    types_of: dict[tuple[str, str], set[str]] = {}  # only pairs seen more than once
    loops = 0
    for lst in edge_lists:
        for e in lst:
            if e.a == e.b:
                loops += 1
                continue
            before[e.type] += 1
            key = (e.a, e.b)
            cur = best.get(key)
            if cur is None:
                best[key] = e
                continue
            types_of.setdefault(key, {cur.type}).add(e.type)
            if (PRIORITY[e.type], -e.weight) < (PRIORITY[cur.type], -cur.weight):
                best[key] = e
    after = {r: 0 for r in RELATIONS}
    overridden: dict[str, int] = {}
    out = []
    for key, kept in best.items():
        types = types_of.get(key)
        dropped = sorted(types - {kept.type}, key=PRIORITY.__getitem__) if types else []
        if dropped or kept.overrides:
            kept = Edge(kept.a, kept.b, kept.type, kept.weight, kept.evidence,
                        sorted(set(kept.overrides) | set(dropped), key=PRIORITY.__getitem__))
            for d in dropped:
                k = f"{kept.type}>{d}"
                overridden[k] = overridden.get(k, 0) + 1
        after[kept.type] += 1
        out.append(kept)
    return out, {"before": before, "after": after, "overridden": overridden, "self_loops_dropped": loops}


# -------------------------------------------------------------- all ---------
def graph_stats(hashtags: Sequence, edges: Sequence[Edge]) -> dict:
    """Connectivity figures of the typed graph, for reports and tests."""
    n = len(hashtags)
    pos = {h.name: i for i, h in enumerate(hashtags)}
    a = np.fromiter((pos[e.a] for e in edges), dtype=np.int64, count=len(edges))
    b = np.fromiter((pos[e.b] for e in edges), dtype=np.int64, count=len(edges))
    adj = sparse.coo_matrix((np.ones(len(edges)), (a, b)), shape=(n, n)).tocsr()
    n_comp, labels = connected_components(adj, directed=False)
    sizes = np.bincount(labels, minlength=n_comp) if n else np.zeros(0, dtype=np.int64)
    degree = np.bincount(np.concatenate([a, b]), minlength=n)
    sem = np.fromiter((e.type != "co" for e in edges), dtype=bool, count=len(edges))
    semantic = np.zeros(n, dtype=bool)
    semantic[a[sem]] = True
    semantic[b[sem]] = True
    stats = {
        "nodes": n,
        "edges": len(edges),
        "isolated": int((degree == 0).sum()),
        "components": int(n_comp),
        "largest_component": int(sizes.max()) if n else 0,
        "mean_degree": float(degree.mean()) if n else 0.0,
        "with_semantic_neighbour": int(semantic.sum()),
    }
    if n and all(hasattr(h, "longtail") for h in hashtags):
        lt = np.array([bool(h.longtail) for h in hashtags])
        stats["longtail"] = int(lt.sum())
        stats["longtail_with_semantic_neighbour"] = int((lt & semantic).sum())
        stats["longtail_isolated"] = int((lt & (degree == 0)).sum())
    return stats


def build_relations(
    hashtags: Sequence, train_post_tags: Sequence[Sequence[int]], wn, params: RelationParams | None = None
) -> tuple[list[Edge], dict]:
    """All four relations, priority-resolved. ``train_post_tags``: the
    training posts' hashtag ids only. ``wn`` may be None (no WordNet: no ss,
    po, e.g. for non-English tags). Report: params, seconds per stage,
    WordNet coverage, the priority report and :func:`graph_stats`."""
    params = params or RelationParams()
    params.validate()
    _check_vocabulary(hashtags)
    seconds: dict[str, float] = {}
    with timed(seconds, "cp"):
        cp = composition_edges(hashtags)
    ss: list[Edge] = []
    po: list[Edge] = []
    covered = 0
    if wn is not None:
        with timed(seconds, "senses"):
            synsets = hashtag_synsets(hashtags, wn, params.max_senses)
            covered = sum(1 for s in synsets if s)
            tax = _Taxonomy()
        with timed(seconds, "ss"):
            ss = ss_edges_from(hashtags, synsets, tax, params.ss_max_depth)
        with timed(seconds, "po"):
            po = po_edges_from(hashtags, synsets, tax, params.wup_threshold)
    with timed(seconds, "co"):
        co = cooccurrence_edges(train_post_tags, hashtags, params.co_min_count)
    with timed(seconds, "priority"):
        edges, priority = resolve_priority(cp, ss, po, co)
    with timed(seconds, "stats"):
        stats = graph_stats(hashtags, edges)
    report = {
        "params": asdict(params),
        "wordnet": wn is not None,
        "wordnet_covered": covered,
        "train_posts": len(train_post_tags),
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        **priority,
        "stats": stats,
    }
    return edges, report
