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


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """The words normalize.default_segmenter().known() accepts: wordsegment's
    unigrams (alphabetic; single letters only "a" and "i"), the social word
    list and its plurals. Read here without the segmenter's bigram table and
    costs, which take seconds to build and which the description does not
    need (a test checks that both accept the same words)."""
    import wordsegment

    from ..normalize import _read_word_list

    words: set[str] = set()
    with open(wordsegment.Segmenter.UNIGRAMS_FILENAME, encoding="utf-8") as f:
        for line in f:
            w = line.split("\t", 1)[0]
            if w.isalpha() and (len(w) > 1 or w in ("a", "i")):
                words.add(w)
    for w in _read_word_list("social_words.txt"):
        words.add(w)
        if w.isalpha() and not w.endswith("s") and len(w) >= 3:
            words.add(w + "s")
    return frozenset(words)


def _english(word: str) -> bool:
    return word.isascii() and word.isalpha() and word in _english_words()


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
