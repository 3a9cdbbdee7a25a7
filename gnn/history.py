"""What a deployed system knows at one moment: the statistics of the posts
published before it (the "known" posts), and the per-(post, hashtag)
signals they give.

A ``History`` is built from a set of known post rows only; which rows are
known depends on the protocol and the evaluated split (gnn/protocol.py):
validation posts are scored with the training posts known, test posts with
train + valid (as-deployed) or train only (strict). Nothing here reads a
post outside the known rows except the query post's own text and author.

Signals (each a (B, H) matrix for a batch of query posts):
- ``hist``: the author's use count of each hashtag (per-user tag memory);
- ``cooc``: Σ over the author's tag uses of P(h | used tag) (co-occurrence);
- ``knn``: TF-IDF cosine nearest known posts vote their hashtags, weighted by
  similarity (``power`` sharpens towards near-duplicates: the copy path);
- ``lex``: the share of a hashtag's words found in the post's tokens (needs no
  use of the tag at all: zero-shot);
- ``pop``: log use count over the known posts;
- ``user_cf``: the tags of the users whose tag histories read most alike
  (cosine of IDF-weighted log counts, the author left out): user-based
  collaborative filtering.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np
import scipy.sparse as sp


# levels of a post's category path the category prior reads (kuairec has 3)
CATEGORY_LEVELS = 3


def _prefix(path: Sequence[str], level: int) -> str:
    """The path's first ``level`` + 1 names: a level's key (the same name
    under two parents is two categories)."""
    return "\x1f".join(path[:level + 1])


def _prefix_incidence(paths: Sequence[Sequence[str]], level: int, vocab: dict[str, int],
                      grow: bool = False) -> sp.csr_matrix:
    """(paths x prefixes) 0/1 matrix of each path's prefix at ``level``: a
    path without that level, or (unless ``grow`` adds it to ``vocab``) with a
    prefix ``vocab`` lacks, has an empty row."""
    r, c = [], []
    for i, path in enumerate(paths):
        if len(path) > level:
            key = _prefix(path, level)
            j = vocab.setdefault(key, len(vocab)) if grow else vocab.get(key)
            if j is not None:
                r.append(i)
                c.append(j)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(paths), len(vocab)))


def incidence(tag_lists: Sequence[Sequence[int]], n_cols: int) -> sp.csr_matrix:
    ptr = np.cumsum([0] + [len(t) for t in tag_lists])
    ids = np.fromiter((t for ts in tag_lists for t in ts), dtype=np.int64, count=int(ptr[-1]))
    return sp.csr_matrix((np.ones(len(ids)), ids, ptr), shape=(len(tag_lists), n_cols))


def _row_normalise(m: sp.csr_matrix) -> sp.csr_matrix:
    s = np.asarray(m.sum(axis=1)).ravel()
    return sp.diags(np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)) @ m


class TfidfIndex:
    """Sublinear TF-IDF over token lists, idf from the indexed posts only, rows
    L2-normalised so a sparse product gives cosine similarities."""

    def __init__(self, docs: Sequence[Sequence[str]]):
        df = Counter(w for d in docs for w in set(d))
        self.vocab = {w: i for i, w in enumerate(sorted(df))}
        n = len(docs)
        self.idf = np.array([math.log((1 + n) / (1 + df[w])) + 1.0 for w in sorted(df)])
        self.matrix = self.transform(docs)

    def transform(self, docs: Sequence[Sequence[str]]) -> sp.csr_matrix:
        vocab, v = self.vocab, max(len(self.vocab), 1)  # v: the key's stride
        ids = np.fromiter((vocab.get(w, -1) for d in docs for w in d), dtype=np.int64)
        doc = np.repeat(np.arange(len(docs), dtype=np.int64), [len(d) for d in docs])
        known = ids >= 0
        # one entry per (post, word), in the order of each word's first use in
        # the post (what a Counter per post gave), so the row norms below sum
        # in the same order, to the bit
        key, first, count = np.unique(doc[known] * v + ids[known], return_index=True, return_counts=True)
        order = np.argsort(first, kind="stable")
        key, count = key[order], count[order]
        rows, cols = key // v, key % v
        logs = np.array([0.0] + [math.log(k) for k in range(1, int(count.max(initial=0)) + 1)])
        vals = (1.0 + logs[count]) * self.idf[cols]
        m = sp.csr_matrix((vals, (rows, cols)), shape=(len(docs), len(vocab)))
        norm = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
        return (sp.diags(np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 0.0)) @ m).tocsr()


def top_k_rows(sim: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the k largest entries of every row (ties: the lower column)."""
    sim = sim.tocsr()
    sim.sort_indices()
    indptr, data, idx = sim.indptr, sim.data, sim.indices
    out_r, out_c, out_v = [], [], []
    for r in range(sim.shape[0]):
        a, b = indptr[r], indptr[r + 1]
        if b == a:
            continue
        d = data[a:b]
        if b - a > k:
            sel = np.argsort(-d, kind="stable")[:k]
        else:
            sel = np.arange(b - a)
        out_r.append(np.full(len(sel), r))
        out_c.append(idx[a:b][sel])
        out_v.append(d[sel])
    if not out_r:
        return sp.csr_matrix(sim.shape)
    return sp.csr_matrix((np.concatenate(out_v), (np.concatenate(out_r), np.concatenate(out_c))), shape=sim.shape)


class History:
    """Statistics of the known posts (rows of a gnn.data.TrainingData)."""

    def __init__(self, data, known_rows: np.ndarray):
        self.data = data
        self.known = np.sort(np.asarray(known_rows, dtype=np.int64))
        H, U = data.n_hashtags, data.n_users
        self.X = incidence([data.tags[r] for r in self.known], H)  # known post x hashtag
        self.counts = np.asarray(self.X.sum(axis=0)).ravel()
        known_user = (~data._unknown).astype(np.float64)
        u = data.users[self.known]
        owner = sp.csr_matrix((known_user[u], (u, np.arange(len(self.known)))), shape=(U, len(self.known)))
        self.user_hist = (owner @ self.X).tocsr()  # the unknown user has an empty history
        self.user_posts = np.asarray(owner.sum(axis=1)).ravel()
        owner_csr = owner.tocsr()  # the known-post positions of each user, for own_similar
        self._own_ptr, self._own_idx = owner_csr.indptr, owner_csr.indices
        cooc = (self.X.T @ self.X).tocsr()
        cooc.setdiag(0)
        cooc.eliminate_zeros()
        self.cooc_cond = _row_normalise(cooc).tocsr()  # P(h | s) over the known posts
        self.index = TfidfIndex([data.tokens[r] for r in self.known])
        # P(h | word) over the known posts: a one-layer text-to-tag association
        self.word_tag = _row_normalise((self.index.matrix.T @ self.X).tocsr()).tocsr()
        self._lex = None
        self._cf = None  # user_cf's normalised histories, built on first use
        self._recent: dict[float, sp.csr_matrix] = {}
        self._proto = None  # prototypes(), built on first use
        self._cat = None  # category_share's tables, built on first use

    # ------------------------------------------------------------- signals
    # Queries are (tokens, user) pairs: rows of the data set (``query``) or a
    # new post; the user index -1 (or the unknown user) has no history.
    def query(self, rows: np.ndarray) -> tuple[list[list[str]], np.ndarray]:
        rows = np.asarray(rows, dtype=np.int64)
        return [self.data.tokens[r] for r in rows], self.data.users[rows]

    def hist(self, users: np.ndarray) -> sp.csr_matrix:
        users = np.asarray(users, dtype=np.int64)
        m = self.user_hist[np.where(users >= 0, users, 0)]
        if (users < 0).any():
            m = sp.diags((users >= 0).astype(np.float64)) @ m
        return m.tocsr()

    def cooc(self, users: np.ndarray) -> sp.csr_matrix:
        return _row_normalise(self.hist(users)) @ self.cooc_cond

    def similar(self, tokens: list[list[str]], k: int) -> sp.csr_matrix:
        """(B, known posts) cosine of the k most similar known posts."""
        q = self.index.transform(tokens)
        return top_k_rows(q @ self.index.matrix.T, k)

    def own_similar(self, tokens: list[list[str]], users: np.ndarray) -> sp.csr_matrix:
        """Σ over the author's own known posts of cos(query, post) × that post's
        tags: the user's memory, weighted by how alike the posts read."""
        q = self.index.transform(tokens)
        K = self.index.matrix
        return self._own_weighted(users, lambda i, idx: (K[idx] @ q[i].T).toarray().ravel(), 1.0)

    def own_dense(self, emb: np.ndarray, q: np.ndarray, users: np.ndarray) -> sp.csr_matrix:
        """own_similar with sentence-embedding cosine, to the 4th power
        (negative ones dropped)."""
        K = emb[self.known]
        return self._own_weighted(users, lambda i, idx: K[idx] @ q[i], 4.0)

    def _own_weighted(self, users: np.ndarray, sims_of, power: float) -> sp.csr_matrix:
        """(B, H): Σ over each author's known posts of sims_of(i, posts) ** power
        × that post's tags (positive similarities only)."""
        users = np.asarray(users, dtype=np.int64)
        r, c, v = [], [], []
        for i, u in enumerate(users):
            if u < 0:
                continue
            lo, hi = self._own_ptr[u], self._own_ptr[u + 1]
            if hi == lo:
                continue
            idx = self._own_idx[lo:hi]
            sims = np.asarray(sims_of(i, idx), dtype=np.float64)
            keep = sims > 0
            r.append(np.full(int(keep.sum()), i))
            c.append(idx[keep])
            v.append(sims[keep] ** power)
        if not r:
            return sp.csr_matrix((len(users), self.data.n_hashtags))
        s = sp.csr_matrix((np.concatenate(v), (np.concatenate(r), np.concatenate(c))),
                          shape=(len(users), len(self.known)))
        return (s @ self.X).tocsr()

    def user_cf(self, users: np.ndarray, k: int = 50) -> sp.csr_matrix:
        """(B, H): Σ over the k most alike other users of cosine × their tag
        shares, row-normalised; zero for a user without history."""
        users = np.asarray(users, dtype=np.int64)
        if self._cf is None:
            uh = self.user_hist
            idf = np.log((1 + uh.shape[0]) / (1 + np.asarray((uh > 0).sum(axis=0)).ravel())) + 1.0
            w = (uh.log1p() @ sp.diags(idf)).tocsr()
            norm = np.sqrt(np.asarray(w.multiply(w).sum(axis=1)).ravel())
            w = (sp.diags(np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 0.0)) @ w).tocsr()
            self._cf = (w, _row_normalise(uh).tocsr())
        w, share = self._cf
        known = users >= 0
        sim = (w[np.where(known, users, 0)] @ w.T).tocoo()
        keep = (sim.col != users[sim.row]) & known[sim.row]
        sim = sp.csr_matrix((sim.data[keep], (sim.row[keep], sim.col[keep])), shape=sim.shape)
        return _row_normalise(top_k_rows(sim, k) @ share).tocsr()

    def dense_similar(self, emb: np.ndarray, q: np.ndarray, k: int) -> sp.csr_matrix:
        """(B, known posts): cosine of the k nearest known posts by sentence
        embedding (``emb``: unit rows, one per data set post; ``q``: the
        queries' unit vectors)."""
        K = emb[self.known]
        out_r, out_c, out_v = [], [], []
        for i in range(0, len(q), 1024):
            s = q[i:i + 1024] @ K.T
            top = np.argpartition(-s, min(k, s.shape[1] - 1), axis=1)[:, :k]
            v = np.take_along_axis(s, top, axis=1)
            v = np.maximum(v, 0.0)
            out_r.append(np.repeat(np.arange(i, i + len(s)), top.shape[1]))
            out_c.append(top.ravel())
            out_v.append(v.ravel())
        m = sp.csr_matrix((np.concatenate(out_v), (np.concatenate(out_r), np.concatenate(out_c))),
                          shape=(len(q), len(self.known)))
        m.eliminate_zeros()
        return m

    def prototypes(self, emb: np.ndarray) -> np.ndarray:
        """(H, d) unit mean of the known posts' sentence embeddings per
        hashtag (zero for a hashtag with no known use): a tag's centroid
        reaches every post of a rare tag, not only the k nearest. ``emb``: the
        data set's post embeddings, the same on every call (cached)."""
        if self._proto is None:
            # dense @ CSR: the same sums, in the same order, as X.T @ emb (equal to the
            # bit), 5x faster in a new process than the CSC product, which one-shot
            # `recommend` pays in full (0.10 against 0.02 s on twitter-2013)
            c = np.asarray((emb[self.known].T.astype(np.float64) @ self.X).T, dtype=np.float32)
            self._proto = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
        return self._proto

    def recent_hist(self, users: np.ndarray, halflife: float = 2.0) -> sp.csr_matrix:
        """(B, H): the author's tag uses, each post weighted 0.5 ** (age /
        ``halflife``), age = how many of the author's known posts came after
        it (rows are in time order for chronological splits): what the user
        tags now, not what they tagged once."""
        users = np.asarray(users, dtype=np.int64)
        if halflife not in self._recent:
            U, n = self.data.n_users, len(self.known)
            ptr, idx = self._own_ptr, self._own_idx
            per_user = np.diff(ptr)
            owner = np.repeat(np.arange(U), per_user)
            pos = np.arange(len(idx)) - np.repeat(ptr[:-1], per_user)  # position among the user's posts
            age = np.repeat(per_user, per_user) - 1 - pos
            w = sp.csr_matrix((0.5 ** (age / halflife), (owner, idx)), shape=(U, n))
            self._recent[halflife] = (w @ self.X).tocsr()
        m = self._recent[halflife][np.where(users >= 0, users, 0)]
        if (users < 0).any():
            m = sp.diags((users >= 0).astype(np.float64)) @ m
        return m.tocsr()

    def recent_pop(self, share: float = 0.1) -> np.ndarray:
        """log use count over the latest ``share`` of the known posts (trending)."""
        m = max(1, int(round(len(self.known) * share)))
        return np.log1p(np.asarray(self.X[-m:].sum(axis=0)).ravel())

    def tag_users(self) -> np.ndarray:
        """log of the number of distinct users who used each hashtag: a tag
        of one account is personal, one of many is shared."""
        return np.log1p(np.asarray((self.user_hist > 0).sum(axis=0)).ravel())

    def novelty(self, users: np.ndarray) -> np.ndarray:
        """Distinct tags over tag uses of the author: how often they tag
        something new to them (1 = always; 0 without history)."""
        users = np.asarray(users, dtype=np.int64)
        uses = np.asarray(self.user_hist.sum(axis=1)).ravel()
        distinct = np.diff(self.user_hist.indptr)
        nov = np.where(uses > 0, distinct / np.maximum(uses, 1), 0.0)
        return np.where(users >= 0, nov[np.where(users >= 0, users, 0)], 0.0)

    def activity(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return np.where(users >= 0, self.user_posts[np.where(users >= 0, users, 0)], 0.0)

    def words(self, tokens: list[list[str]]) -> sp.csr_matrix:
        """Σ over the post's TF-IDF weighted words of P(h | word)."""
        return (self.index.transform(tokens) @ self.word_tag).tocsr()

    def category_share(self, paths: Sequence[Sequence[str]]) -> list[sp.csr_matrix]:
        """Per level l < CATEGORY_LEVELS of the posts' category paths: the
        share of the known posts under the same path prefix that use each
        hashtag, n(prefix, h) / (n(prefix) + 1) (the + 1: a prefix seen once
        is weak evidence). A post without that level, or with a prefix no
        known post has, gets an empty row."""
        if self._cat is None:
            self._cat = []
            known_paths = [self.data.categories[r] for r in self.known]
            for lv in range(CATEGORY_LEVELS):
                vocab: dict[str, int] = {}
                q = _prefix_incidence(known_paths, lv, vocab, grow=True)
                n = np.asarray(q.sum(axis=0)).ravel()
                table = sp.diags(1.0 / (n + 1.0)) @ (q.T @ self.X)
                self._cat.append((vocab, table.tocsr()))
        return [(_prefix_incidence(paths, lv, vocab) @ table).tocsr() for lv, (vocab, table) in enumerate(self._cat)]

    def category_lift(self, paths: Sequence[Sequence[str]]) -> list[sp.csr_matrix]:
        """category_share over the tag's share of all known posts, log1p:
        how much more often the category's posts use the tag than posts at
        large. A rare tag that a category's posts favour scores high, where
        the share alone ranks the category's popular tags first (as the
        fusion's category group on kuairec: NDCG@10 +1.5% and long-tail
        R@10 +10% over the share, 3 head seeds on one V2HT run)."""
        p = (self.counts + 1.0) / (len(self.known) + 1.0)
        inv = sp.diags(1.0 / p)
        return [(m @ inv).tocsr().log1p() for m in self.category_share(paths)]

    def lex(self, tokens: list[list[str]]) -> sp.csr_matrix:
        """Share of each hashtag's words that occur among the post's tokens."""
        if self._lex is None:
            words = [h.text_words for h in self.data.ds.hashtags]
            vocab: dict[str, int] = {}
            r, c, v = [], [], []
            for t, ws in enumerate(words):
                ws = sorted(set(ws))
                for w in ws:
                    r.append(vocab.setdefault(w, len(vocab)))
                    c.append(t)
                    v.append(1.0 / len(ws))
            self._lex = (vocab, sp.csr_matrix((v, (r, c)), shape=(len(vocab), len(words))))
        vocab, w2t = self._lex
        pr, pc = [], []
        for i, toks in enumerate(tokens):
            for w in set(toks):
                j = vocab.get(w)
                if j is not None:
                    pr.append(i)
                    pc.append(j)
        q = sp.csr_matrix((np.ones(len(pr)), (pr, pc)), shape=(len(tokens), len(vocab)))
        return (q @ w2t).tocsr()

    def pop(self) -> np.ndarray:
        return np.log1p(self.counts)
