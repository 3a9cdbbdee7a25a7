"""The description's words (paper §4.1: at most 6 words per micro-video,
stop words and non-English words dropped, lemmatised): the project's text
normaliser, then only words of the English word list it segments hashtags
with."""
from __future__ import annotations

from functools import lru_cache

MAX_WORDS = 6


@lru_cache(maxsize=1)
def _normalizer():
    from ..normalize import Normalizer

    return Normalizer()


def _english(word: str) -> bool:
    from ..normalize import default_segmenter

    return word.isascii() and word.isalpha() and default_segmenter().known(word)


def description_words(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """Up to ``max_words`` lemmatised English content words of ``text``, in order."""
    if max_words <= 0 or not text:
        return []
    out: list[str] = []
    for w in _normalizer().tokens(text):
        if _english(w):
            out.append(w)
            if len(out) >= max_words:
                break
    return out
