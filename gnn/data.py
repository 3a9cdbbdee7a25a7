"""From a prepared data set to model batches.

TrainingData holds what every epoch needs (per-split rows, hashtag lists,
Word2Vec vectors, per-user profile sums) and builds PostBatch objects on
demand. Visual and acoustic features stay memory-mapped: a batch reads only
its own rows, so INSVIDEO-scale arrays are never loaded whole.

User features (paper §3.4): [mean post vector of the user's training posts
⊕ mean Word2Vec vector of the user's training hashtag uses ⊕ no-history flag].
The post vector is the post's visual features averaged over its frames, or the
mean Word2Vec vector of its tokens when the data set has no visual features.
For a training post the post itself is left out of its user's sums, so its own
hashtags never leak into the input that predicts them; this also makes training
inputs look like test inputs (a test post is never part of its user's history).
Users without any (other) training post, and the unknown user of sources
without author ids, get zeros with the flag set. The profile columns are
standardised with the training users' mean and spread (weighted by posts).

Every batch also carries the user's training hashtags as ids with use-count
weights (PostBatch.hist_ids / hist_weights), under the same leave-one-out
and no-history rules, for the model's learned user history (its trainable
hashtag embeddings averaged in place of the frozen Word2Vec mean).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..kg.dataset import PreparedDataset, SPLITS
from ..kg.errors import DataError
from ..kg.prefetch import ordered_map
from ..kg.records import UNKNOWN_USER
from .batch import PostBatch
from .embeddings import W2V_FILE, WordVectors, cached_word2vec, hashtag_vectors, token_vectors, training_sentences

NEGATIVES = 6  # sampled negatives per positive (paper §4.1)
USER_SCALING = True  # standardise user profiles (see TrainingData._fit_user_scaling)
_CHUNK = 256  # rows per read when streaming feature arrays


def _valid_lengths(x: np.ndarray) -> np.ndarray:
    """Steps up to the last non-zero one (>= 1): sources pad short videos with zero frames."""
    nz = np.any(x != 0, axis=2)  # (B, T)
    T = x.shape[1]
    last = T - np.argmax(nz[:, ::-1], axis=1)
    return np.where(nz.any(axis=1), last, 1).astype(np.int64)


class TrainingData:
    def __init__(self, ds: PreparedDataset, kv: WordVectors, modalities: Sequence[str] | None = None,
                 max_text_tokens: int = 6, seed: int = 0, negatives: int = NEGATIVES,
                 cache_dir: Path | None = None):
        self.ds = ds
        self.cache_dir = cache_dir
        self.kv = kv
        self.seed = seed
        self.negatives = negatives
        self.max_text_tokens = max_text_tokens
        present = ds.modalities
        mods = tuple(present if modalities is None else modalities)
        if not mods:
            raise DataError("choose at least one modality")
        for m in mods:
            if m not in present:
                raise DataError(f"modality {m!r} is not in this data set (it has {', '.join(present)})", str(ds.root))
        # keep the canonical order whatever order the caller gave
        self.modalities = tuple(m for m in ("visual", "acoustic", "text") if m in mods)

        posts = ds.posts
        self.n_posts = len(posts)
        self.n_hashtags = len(ds.hashtags)
        self.n_users = max(len(ds.users), 1 + max((p.user for p in posts), default=0))
        self.tags: list[list[int]] = [sorted(set(p.tags)) for p in posts]
        self.tokens: list[list[str]] = [p.tokens for p in posts]
        self.categories: list[list[str]] = [p.categories for p in posts]
        self.users = np.array([p.user for p in posts], dtype=np.int64)
        self.oov = np.array([p.oov for p in posts], dtype=np.int64)  # test tags outside the vocabulary
        self.is_train = np.array([p.split == "train" for p in posts], dtype=bool)
        self.rows = {s: np.array([p.row for p in posts if p.split == s], dtype=np.int64) for s in SPLITS}
        for p in posts:
            if any(t < 0 or t >= self.n_hashtags for t in p.tags):
                raise DataError(f"post {p.id} refers to a hashtag id outside 0..{self.n_hashtags - 1}",
                                str(ds.root / "posts.jsonl"), p.row + 1)
        if len(self.rows["train"]) == 0:
            raise DataError("the data set has no training posts", str(ds.root))

        self.dim = kv.vector_size
        self.hashtag_init = hashtag_vectors(ds.hashtags, kv, self.dim, seed)  # (H, dim)
        self._emb64 = self.hashtag_init.numpy().astype(np.float64)
        self._feat = {m: ds.features(m) for m in self.modalities if m != "text"}
        self.input_dims = {m: (self._feat[m].shape[2] if m != "text" else self.dim) for m in self.modalities}
        self.longtail = torch.from_numpy(ds.longtail_mask())
        counts = np.zeros(self.n_hashtags, dtype=np.int64)
        for r in self.rows["train"]:
            counts[self.tags[r]] += 1
        self.train_counts = torch.from_numpy(counts)
        if self.user_source == "visual":
            self._post_dim = (self._feat.get("visual") if "visual" in self._feat else self.ds.features("visual")).shape[2]
        else:
            self._post_dim = self.dim
        names = [str(u.get("name")) for u in self.ds.users]
        self._unknown = np.zeros(self.n_users, dtype=bool)
        self._unknown[[i for i, n in enumerate(names) if n == UNKNOWN_USER]] = True

    # The per-user sums and histories cost a pass over every training post
    # (0.3 s on twitter-2013, minutes of frames at INSVIDEO scale without the
    # cache); the fusion head's one-shot recommend never reads them, so they
    # are built on first use.
    _PROFILE = frozenset({"_u_post_sum", "_u_post_n", "_u_tag_sum", "_u_tag_n", "_hist_ptr", "_hist_ids",
                          "_hist_cnt", "_u_mu", "_u_sd"})

    def __getattr__(self, name: str):
        if name in TrainingData._PROFILE:
            self._build_user_profiles()
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- construction with the Word2Vec cache --------------------------------
    @classmethod
    def build(cls, dataset: PreparedDataset | Path | str, cache_dir: Path | None = None, *,
              modalities: Sequence[str] | None = None, max_text_tokens: int = 6, seed: int = 0,
              w2v_dim: int = 64, w2v_epochs: int = 5) -> "TrainingData":
        ds = dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(Path(dataset))

        def sentences():
            words = [h.text_words for h in ds.hashtags]
            return training_sentences((p for p in ds.posts if p.split == "train"), words)

        if cache_dir is None:
            from .embeddings import train_word2vec
            kv = train_word2vec(sentences(), dim=w2v_dim, seed=seed, epochs=w2v_epochs)
        else:
            kv = cached_word2vec(Path(cache_dir) / W2V_FILE, sentences, dim=w2v_dim, seed=seed, epochs=w2v_epochs)
        return cls(ds, kv, modalities=modalities, max_text_tokens=max_text_tokens, seed=seed, cache_dir=cache_dir)

    # -- user profiles -------------------------------------------------------
    @property
    def user_source(self) -> str:
        return "visual" if "visual" in self.ds.modalities else "text"

    @property
    def d_user_in(self) -> int:
        return self._post_dim + self.dim + 1

    def _post_vecs(self, rows: np.ndarray) -> np.ndarray:
        """(B, D) per-post vector for user profiles (float64)."""
        if self.user_source == "visual":
            arr = self._feat.get("visual")
            if arr is None:
                arr = self.ds.features("visual")
            x = np.asarray(arr[rows], dtype=np.float32)
            L = _valid_lengths(x)
            steps = np.arange(x.shape[1])[None, :] < L[:, None]
            return (x * steps[:, :, None]).sum(axis=1, dtype=np.float64) / L[:, None]
        out = np.zeros((len(rows), self.dim), dtype=np.float64)
        for i, r in enumerate(rows):
            v = token_vectors(self.tokens[r], self.kv)
            if len(v):
                out[i] = v.mean(axis=0)
        return out

    def _tag_sums(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        emb = self._emb64
        s = np.zeros((len(rows), self.dim), dtype=np.float64)
        n = np.zeros(len(rows), dtype=np.int64)
        for i, r in enumerate(rows):
            t = self.tags[r]
            if t:
                s[i] = emb[t].sum(axis=0)
                n[i] = len(t)
        return s, n

    def _build_user_profiles(self) -> None:
        U = self.n_users
        self._u_post_sum = np.zeros((U, self._post_dim), dtype=np.float64)
        self._u_post_n = np.zeros(U, dtype=np.int64)
        self._u_tag_sum = np.zeros((U, self.dim), dtype=np.float64)
        self._u_tag_n = np.zeros(U, dtype=np.int64)
        train = np.sort(self.rows["train"])
        cached = self._load_visual_sums()
        for i in range(0, len(train), _CHUNK):
            rows = train[i:i + _CHUNK]
            u = self.users[rows]
            if cached is None:
                np.add.at(self._u_post_sum, u, self._post_vecs(rows))
            np.add.at(self._u_post_n, u, 1)
            ts, tn = self._tag_sums(rows)
            np.add.at(self._u_tag_sum, u, ts)
            np.add.at(self._u_tag_n, u, tn)
        if cached is not None:
            self._u_post_sum = cached
        else:
            self._save_visual_sums()
        self._build_user_histories(train)
        self._fit_user_scaling()

    def _build_user_histories(self, train: np.ndarray) -> None:
        """Per user, its distinct training hashtags (sorted) and use counts, CSR-style."""
        H = self.n_hashtags
        pairs = np.array([self.users[r] * H + t for r in train for t in self.tags[r]], dtype=np.int64)
        keys, counts = np.unique(pairs, return_counts=True)
        users = keys // H
        self._hist_ptr = np.searchsorted(users, np.arange(self.n_users + 1)).astype(np.int64)
        self._hist_ids = keys % H
        self._hist_cnt = counts.astype(np.float64)

    def _fit_user_scaling(self) -> None:
        """Per-column mean and spread of the user profiles, weighted by each user's
        training posts (what the training batches see, up to leave-one-out).
        Raw profiles mix visual features of any scale with Word2Vec means whose
        columns barely vary between users; standardised, the user network learns
        from the between-user differences at the pace of the other towers."""
        self._u_mu = self._u_sd = None  # _assemble then returns raw profiles
        users = np.flatnonzero((self._u_post_n > 0) & ~self._unknown)
        if USER_SCALING and len(users):
            raw = self._assemble(self._u_post_sum[users], self._u_post_n[users], self._u_tag_sum[users],
                                 self._u_tag_n[users], np.zeros(len(users), dtype=bool)).numpy()[:, :-1]
            w = self._u_post_n[users].astype(np.float64)
            mu = np.average(raw, axis=0, weights=w)
            sd = np.sqrt(np.average((raw - mu) ** 2, axis=0, weights=w))
            self._u_mu, self._u_sd = mu, np.where(sd > 1e-8, sd, 1.0)

    _VIS_CACHE = "user_visual_sums.npz"

    def _load_visual_sums(self) -> np.ndarray | None:
        """Visual profile sums read every training frame once (minutes at
        INSVIDEO scale): cache them beside the Word2Vec vectors."""
        if self.cache_dir is None or self.user_source != "visual":
            return None
        path = Path(self.cache_dir) / self._VIS_CACHE
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["fingerprint"]) == self.ds.fingerprint and z["sums"].shape == self._u_post_sum.shape:
                    return z["sums"]
        except Exception:  # absent or unreadable: recompute
            return None
        return None

    def _save_visual_sums(self) -> None:
        if self.cache_dir is None or self.user_source != "visual":
            return
        from .runs import _atomic

        _atomic(Path(self.cache_dir) / self._VIS_CACHE,
                lambda f: np.savez(f, fingerprint=np.array(self.ds.fingerprint), sums=self._u_post_sum))

    @property
    def has_users(self) -> bool:
        """Whether any post has a known author (kuairec: none, every post is
        the unknown user's)."""
        return bool((~self._unknown).any())

    def user_known(self, user: int | None) -> bool:
        return user is not None and 0 <= user < self.n_users and not self._unknown[user]

    def user_features(self, rows: np.ndarray) -> torch.Tensor:
        """(B, d_user_in) for post rows, leave-one-out for training posts."""
        rows = np.asarray(rows, dtype=np.int64)
        u = self.users[rows]
        ps, pn = self._u_post_sum[u].copy(), self._u_post_n[u].copy()
        ts, tn = self._u_tag_sum[u].copy(), self._u_tag_n[u].copy()
        tr = self.is_train[rows]
        if tr.any():
            own = rows[tr]
            ps[tr] -= self._post_vecs(own)
            pn[tr] -= 1
            s, n = self._tag_sums(own)
            ts[tr] -= s
            tn[tr] -= n
        return self._assemble(ps, pn, ts, tn, self._unknown[u])

    def user_features_for(self, users: Sequence[int | None]) -> torch.Tensor:
        """(B, d_user_in) for new posts: the whole training history, nothing left out."""
        known = np.array([self.user_known(x) for x in users], dtype=bool)
        u = np.array([x if k else 0 for x, k in zip(users, known)], dtype=np.int64)
        ps, pn = self._u_post_sum[u].copy(), self._u_post_n[u].copy()
        ts, tn = self._u_tag_sum[u].copy(), self._u_tag_n[u].copy()
        return self._assemble(ps, pn, ts, tn, ~known)

    def user_history(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (B, L) long, weights (B, L) float32) of each row's user's training
        hashtag uses, leave-one-out for training posts, as user_features."""
        rows = np.asarray(rows, dtype=np.int64)
        u = self.users[rows]
        out = []
        for r, uu, tr in zip(rows, u, self.is_train[rows]):
            own = self.tags[r] if tr else []
            out.append(self._history_of(int(uu), own, (self._u_post_n[uu] - int(tr)) <= 0))
        return self._pad_histories(out)

    def user_history_for(self, users: Sequence[int | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """As user_history for new posts: the whole training history."""
        out = [self._history_of(int(x), [], self._u_post_n[x] <= 0) if self.user_known(x) else None
               for x in users]
        return self._pad_histories(out)

    def _history_of(self, user: int, own: Sequence[int], none: bool):
        if none or self._unknown[user]:
            return None
        lo, hi = self._hist_ptr[user], self._hist_ptr[user + 1]
        ids, cnt = self._hist_ids[lo:hi], self._hist_cnt[lo:hi].copy()
        if len(own):
            cnt[np.searchsorted(ids, own)] -= 1  # own tags are in the user's sorted ids
            keep = cnt > 0
            ids, cnt = ids[keep], cnt[keep]
        total = cnt.sum()
        return (ids, cnt / total) if total > 0 else None

    @staticmethod
    def _pad_histories(hist) -> tuple[torch.Tensor, torch.Tensor]:
        L = max([len(h[0]) for h in hist if h is not None] + [1])
        ids = np.zeros((len(hist), L), dtype=np.int64)
        w = np.zeros((len(hist), L), dtype=np.float32)
        for i, h in enumerate(hist):
            if h is not None:
                ids[i, :len(h[0])] = h[0]
                w[i, :len(h[0])] = h[1]
        return torch.from_numpy(ids), torch.from_numpy(w)

    def _assemble(self, ps, pn, ts, tn, unknown) -> torch.Tensor:
        none = (pn <= 0) | unknown
        post = np.where(none[:, None], 0.0, ps / np.maximum(pn, 1)[:, None])
        tag = np.where((none | (tn <= 0))[:, None], 0.0, ts / np.maximum(tn, 1)[:, None])
        flag = none.astype(np.float64)[:, None]
        prof = np.concatenate([post, tag], axis=1)
        if self._u_mu is not None:
            # no history stays at 0, now the average profile; the flag tells it apart
            prof = np.where(none[:, None], 0.0, (prof - self._u_mu) / self._u_sd)
        return torch.from_numpy(np.concatenate([prof, flag], axis=1).astype(np.float32))

    # -- inputs --------------------------------------------------------------
    def _text_seq(self, token_lists: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        vecs = [token_vectors(t, self.kv, self.max_text_tokens) for t in token_lists]
        T = max([len(v) for v in vecs] + [1])
        x = np.zeros((len(vecs), T, self.dim), dtype=np.float32)
        L = np.ones(len(vecs), dtype=np.int64)  # an empty text is one zero step
        for i, v in enumerate(vecs):
            if len(v):
                x[i, :len(v)] = v
                L[i] = len(v)
        return torch.from_numpy(x), torch.from_numpy(L)

    def _feature_seq(self, m: str, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        order = np.argsort(rows, kind="stable")  # sorted reads are sequential on disk
        x = np.empty((len(rows),) + self._feat[m].shape[1:], dtype=np.float32)
        x[order] = np.asarray(self._feat[m][rows[order]], dtype=np.float32)
        L = _valid_lengths(x)
        x = x[:, : int(L.max(initial=1))]
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(L)

    def batch(self, rows: Sequence[int], cand=None, labels=None, cand_mask=None) -> PostBatch:
        rows = np.asarray(rows, dtype=np.int64)
        seqs, lengths = {}, {}
        for m in self.modalities:
            if m == "text":
                seqs[m], lengths[m] = self._text_seq([self.tokens[r] for r in rows])
            else:
                seqs[m], lengths[m] = self._feature_seq(m, rows)
        hist_ids, hist_w = self.user_history(rows)
        return PostBatch(rows=torch.from_numpy(rows), seqs=seqs, lengths=lengths,
                         users=torch.from_numpy(self.users[rows]), user_feats=self.user_features(rows),
                         cand=cand, labels=labels, cand_mask=cand_mask, hist_ids=hist_ids, hist_weights=hist_w)

    def new_post_batch(self, tokens: Sequence[str], user: int | None,
                       features: dict[str, np.ndarray] | None = None) -> PostBatch:
        """A batch of one post that is not in the data set. Missing visual or
        acoustic features become one zero step (the model sees no signal there)."""
        features = features or {}
        seqs, lengths = {}, {}
        for m in self.modalities:
            if m == "text":
                seqs[m], lengths[m] = self._text_seq([list(tokens)])
            elif m in features:
                x = np.asarray(features[m], dtype=np.float32)
                if x.ndim != 2 or x.shape[1] != self.input_dims[m]:
                    raise DataError(f"{m} features must have shape (steps, {self.input_dims[m]}), not {x.shape}")
                L = _valid_lengths(x[None])
                seqs[m], lengths[m] = torch.from_numpy(x[None].copy()), torch.from_numpy(L)
            else:
                seqs[m] = torch.zeros(1, 1, self.input_dims[m])
                lengths[m] = torch.ones(1, dtype=torch.long)
        uid = user if self.user_known(user) else 0
        hist_ids, hist_w = self.user_history_for([user])
        return PostBatch(rows=torch.tensor([-1]), seqs=seqs, lengths=lengths, users=torch.tensor([uid]),
                         user_feats=self.user_features_for([user]), hist_ids=hist_ids, hist_weights=hist_w)

    # -- candidates ----------------------------------------------------------
    def sample_candidates(self, rows: Sequence[int], rng: np.random.Generator
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per post: its true hashtags, then ``negatives`` uniform draws per
        positive from the hashtags that are not true for the post."""
        H = self.n_hashtags
        groups = []
        for r in rows:
            pos = np.asarray(self.tags[r], dtype=np.int64)
            n = self.negatives * len(pos) if H > len(pos) else 0
            neg = rng.integers(0, H, size=n)
            bad = np.isin(neg, pos)
            while bad.any():  # rejection: cheap because a post holds few of H tags
                neg[bad] = rng.integers(0, H, size=int(bad.sum()))
                bad = np.isin(neg, pos)
            groups.append((pos, neg))
        K = max([len(p) + len(n) for p, n in groups] + [1])
        cand = np.zeros((len(groups), K), dtype=np.int64)
        labels = np.zeros((len(groups), K), dtype=np.float32)
        mask = np.zeros((len(groups), K), dtype=bool)
        for i, (p, n) in enumerate(groups):
            k = len(p) + len(n)
            cand[i, :k] = np.concatenate([p, n])
            labels[i, :len(p)] = 1.0
            mask[i, :k] = True
        return torch.from_numpy(cand), torch.from_numpy(labels), torch.from_numpy(mask)

    def train_batches(self, epoch: int, batch_size: int, ahead: int = 1) -> Iterator[PostBatch]:
        """Shuffled training posts with sampled candidates; the generator is
        seeded by (seed, epoch), so an epoch is the same after a resume.
        ``ahead`` batches are built on a thread while the consumer trains on
        the one before (reading features, sampling: 10-15 ms a step at
        INSVIDEO size, much of it numpy with the GIL released); one thread,
        in order, so the batches are the same as built inline (``ahead`` 0)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.rows["train"])
        order = order[[len(self.tags[r]) > 0 for r in order]]

        def make(i: int) -> PostBatch:
            rows = order[i:i + batch_size]
            return self.batch(rows, *self.sample_candidates(rows, rng))

        yield from ordered_map(make, range(0, len(order), batch_size), workers=1 if ahead > 0 else 0,
                               ahead=ahead + 1)

    def n_train_batches(self, batch_size: int) -> int:
        n = sum(1 for r in self.rows["train"] if self.tags[r])
        return -(-n // batch_size)

    def eval_batches(self, split: str, batch_size: int, rows: np.ndarray | None = None) -> Iterator[PostBatch]:
        rows = self.rows[split] if rows is None else np.asarray(rows, dtype=np.int64)
        for i in range(0, len(rows), batch_size):
            yield self.batch(rows[i:i + batch_size])

    def truth(self, rows: Sequence[int]) -> list[list[int]]:
        return [self.tags[r] for r in rows]
