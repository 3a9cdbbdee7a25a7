"""Word2Vec vectors for text tokens and initial hashtag embeddings.

Word2Vec is trained on training posts only (tokens followed by the words of
the post's hashtags, one sentence per post), so that no word of a validation
or test answer shapes the vectors. Putting the hashtag words after the text in
the same sentence puts text words near the hashtags they accompany.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..kg.errors import DataError

W2V_FILE = "word2vec.npz"


class WordVectors:
    """The slice of gensim's KeyedVectors this project reads: gensim itself
    is imported only to train (about 0.5 s a process otherwise)."""

    def __init__(self, words: Sequence[str], vectors: np.ndarray):
        self.index_to_key = list(words)
        self.key_to_index = {w: i for i, w in enumerate(self.index_to_key)}
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.vector_size = int(self.vectors.shape[1])

    def __getitem__(self, words):
        if isinstance(words, str):
            return self.vectors[self.key_to_index[words]]
        return self.vectors[[self.key_to_index[w] for w in words]]




def train_word2vec(sentences: Sequence[list[str]], dim: int, seed: int, epochs: int = 5,
                   window: int = 5, min_count: int = 1) -> WordVectors:
    """Skip-gram Word2Vec; workers=1 because gensim is only reproducible single-threaded."""
    sentences = [s for s in sentences if s]
    if not sentences:
        raise DataError("no training text or hashtag words to train Word2Vec on")
    from gensim.models import Word2Vec

    model = Word2Vec(sentences=sentences, vector_size=dim, window=window, min_count=min_count,
                     sg=1, workers=1, seed=seed, epochs=epochs)
    return WordVectors(model.wv.index_to_key, model.wv.vectors)


def training_sentences(posts: Iterable, tag_words: Sequence[list[str]]) -> list[list[str]]:
    """One sentence per training post: its tokens, then its hashtags' words.

    ``posts`` are kg.dataset.PostRow objects; the caller passes training posts only.
    """
    out = []
    for p in posts:
        s = list(p.tokens)
        for t in p.tags:
            s.extend(tag_words[t])
        out.append(s)
    return out


def hashtag_vectors(hashtags: Sequence, kv: WordVectors, dim: int, seed: int,
                    oov_scale: float = 0.1) -> torch.Tensor:
    """(H, dim): mean of each tag's in-vocabulary word vectors.

    A tag none of whose words was seen in training gets a small random vector
    drawn from one generator for the whole table, so it is the same for a seed.
    ``hashtags`` are kg.dataset.Hashtag objects (or anything with ``words``/``name``).
    """
    if kv.vector_size != dim:
        raise DataError(f"Word2Vec vectors have {kv.vector_size} dimensions, expected {dim}")
    rng = np.random.default_rng(seed)
    rand = rng.normal(0.0, oov_scale, size=(len(hashtags), dim)).astype(np.float32)
    out = np.empty((len(hashtags), dim), dtype=np.float32)
    for i, h in enumerate(hashtags):
        words = [w for w in (h.words or h.name.split()) if w in kv.key_to_index]
        out[i] = kv[words].mean(axis=0) if words else rand[i]
    return torch.from_numpy(out)


def token_vectors(tokens: Sequence[str], kv: WordVectors, max_tokens: int | None = None) -> np.ndarray:
    """(T, dim) float32 for the in-vocabulary tokens in order (out-of-vocabulary
    tokens are skipped), truncated to ``max_tokens``; T may be 0."""
    words = [t for t in tokens if t in kv.key_to_index]
    if max_tokens is not None:
        words = words[:max_tokens]
    if not words:
        return np.zeros((0, kv.vector_size), dtype=np.float32)
    return np.asarray(kv[words], dtype=np.float32)


def save_word2vec(kv: WordVectors, path: Path) -> None:
    """Our own .npz (words + matrix) because gensim's save may split large
    arrays into side files, which a single atomic rename cannot cover."""
    from .runs import _atomic

    _atomic(Path(path), lambda f: np.savez(f, words=np.array(kv.index_to_key, dtype=str),
                                           vectors=kv.vectors.astype(np.float32)))


def load_word2vec(path: Path) -> WordVectors:
    try:
        with np.load(path, allow_pickle=False) as z:
            words = [str(w) for w in z["words"]]
            vectors = z["vectors"]
    except FileNotFoundError:
        raise DataError("Word2Vec cache missing", str(path)) from None
    except Exception as e:  # a truncated or foreign file: zip, key or value errors
        raise DataError(f"corrupt Word2Vec cache ({type(e).__name__})", str(path)) from None
    if vectors.ndim != 2 or len(words) != len(vectors):
        raise DataError(f"corrupt Word2Vec cache ({len(words)} words, vectors {tuple(vectors.shape)})", str(path))
    return WordVectors(words, vectors)


def cached_word2vec(path: Path, sentences_fn, dim: int, seed: int, epochs: int = 5) -> WordVectors:
    """Load the cache at ``path`` or train (``sentences_fn()`` gives the sentences) and save it."""
    path = Path(path)
    if path.exists():
        kv = load_word2vec(path)
        if kv.vector_size == dim:
            return kv
    kv = train_word2vec(sentences_fn(), dim=dim, seed=seed, epochs=epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_word2vec(kv, path)
    return kv
