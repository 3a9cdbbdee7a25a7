"""Hashtag and text normalisation.

A raw hashtag becomes a canonical name: Unicode NFKC, leading ``#`` removed,
split on separators (spaces, ``_``, ``-``, punctuation, emoji) and at camelCase
boundaries, each lower-case run segmented into words (``skatedamnday`` ->
``skate damn day``), each word reduced to its singular (``kids`` -> ``kid``),
the words joined by one space. The surface form is kept beside the name.

Decisions (each chosen so that different spellings of one tag meet):

- Segmentation is our own Viterbi search over wordsegment's unigram counts
  (Google web counts), its bigram counts looked up by their concatenation,
  and ``resources/social_words.txt``. ``bench/bench_segment.py`` on
  ``tests/data/segmentation_gold.tsv`` (182 tags, same pre-split for all):
  stock wordsegment 84.6%, stock wordninja 82.4%, each given the social list
  95.6%, ours 98.9%. Stock wordsegment runs at about 1k tags/s (recursive
  bigram search), too slow for the 22k distinct tags of a real set; ours at
  5-10k tags/s. The libraries' remaining misses are digits glued to letters
  ("tbt2013", "top10" -> "to p10") and, for wordninja, web words missing from
  its Wikipedia list ("amped", "deen" -> "de en").
- Digits are tokens of their own (``tbt2013`` -> ``tbt 2013``,
  ``iphone4`` -> ``iphone 4``): a year or a count is not part of the word, and
  ``#tbt`` and ``#tbt2013`` then share the word ``tbt``. Only alphanumeric
  words in the social list stay whole (``1d``, ``5sos``, ``mp3``).
- ``hiphop`` is segmented to ``hip hop``: ``HipHop``, ``hip_hop`` and
  ``hip hop`` are split by their separators anyway, so segmenting the
  concatenated form is what makes all four spellings one hashtag.
- camelCase boundaries are honoured (``CheckOut`` -> ``check out`` although
  ``checkout`` is a word) except where they cut a social word
  (``iPhone``, ``YouTube`` -> one word).
- Hashtag words are lemmatised for number only (plural -> singular, spaCy's
  lookup table, guarded by ``resources/lemma_keep.txt``): a hashtag is a
  name, and lemmatising its verbs and adjectives changes it (``bestfriend``
  would become ``well friend``, ``nowplaying`` ``now play``). Text tokens get
  the full lookup lemma, as text is a bag of words for the model.
- Chinese (Han characters, kuairec's tags and captions) is cut into words by
  jieba (``kg/cjk.py``), in tags and text alike, so a tag and a caption can
  share words; text drops spaCy's Chinese stop words. Other non-Latin
  scripts and words with non-ASCII letters are not segmented: the word list
  is English.
"""
from __future__ import annotations

import html
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Iterable

from . import cjk
from .errors import DataError

# A tweet held at most 140 characters, so no real tag is longer; a longer one
# is not a hashtag (twitter-hashtags-2013 has a real 107-character tag, so 100
# would reject real data).
MAX_TAG_CHARS = 140

_RESOURCES = resources.files(__package__) / "resources"
_ASCII_ALNUM = re.compile(r"[a-z0-9]+")
# Inline hashtags would leak the answers into the text modality; mentions and
# URLs carry no words.
_TEXT_DROP = re.compile(r"https?://\S+|www\.\S+|[#@]\S+", re.IGNORECASE)
# ... except a mention in Han script: on Chinese platforms it is a display
# name, and captions name the platform's own programmes that way
# (@推广小助手, @今天拍点啥), whose names are tags too (kuairec). Its name
# stays as words; the "(id)" Kuaishou appends goes. A Latin @handle is an
# identifier and is still dropped.
_HAN_MENTION = re.compile(rf"@([^\s@#(]*[{cjk.HAN_RANGES}][^\s@#(]*)(?:\([^)]*\))?")
_IRREGULAR_PLURALS = {
    "men": "man", "women": "woman", "children": "child", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose",
}


def _clean_text(text: str) -> str:
    """HTML entities decoded, NFKC, lower case; Han @mentions as their names;
    URLs, other @mentions and inline #tags gone."""
    text = unicodedata.normalize("NFKC", html.unescape(text)).lower()
    return _TEXT_DROP.sub(" ", _HAN_MENTION.sub(r" \1 ", text))


def _read_word_list(name: str) -> list[str]:
    text = (_RESOURCES / name).read_text(encoding="utf-8")
    return [w.strip() for w in text.splitlines() if w.strip() and not w.startswith("#")]


@dataclass(frozen=True)
class NormalizedTag:
    name: str  # " ".join(words)
    words: list[str]  # segmented, lemmatised words
    surface: str  # the tag as the source wrote it (surrounding whitespace removed)


class Segmenter:
    """Most probable split of a lower-case ``[a-z0-9]`` string into words.

    Unigram Viterbi: a word costs -log10(count / total); a letter run not in
    the vocabulary costs as in wordsegment (log10(total / 10) + its length), so
    unknown names survive whole rather than as fragments; a maximal digit run
    is one token.
    """

    MAX_WORD = 24
    DIGIT_COST = 6.0  # about a word of count 1e6 per 1e12: numbers are common

    def __init__(self, counts: dict[str, float], total: float, extra: Iterable[str] = (),
                 extra_count: float = 2e7, bigrams: dict[str, float] | None = None):
        self.total = total
        self.cost: dict[str, float] = {}
        log_total = math.log10(total)
        for w, c in counts.items():
            # Mixed alphanumeric web tokens ("p10") would glue digits on; single
            # letters other than "a" and "i" are mostly web debris ("c", "g")
            # that would shave letters off names ("tyga" -> "tyg a").
            if w.isalpha() and (len(w) > 1 or w in ("a", "i")):
                self.cost[w] = log_total - math.log10(c)
        # A known pair, looked up by its concatenation: P("true love") from
        # the bigram counts competes with the glued web token "truelove"
        # (a domain name, mostly), which unigrams alone would prefer.
        self.pairs: dict[str, tuple[float, int]] = {}
        for pair, c in (bigrams or {}).items():
            a, _, b = pair.partition(" ")
            if a.isalpha() and b.isalpha():
                joined = a + b
                pc = log_total - math.log10(c)
                if pc < self.pairs.get(joined, (math.inf, 0))[0]:
                    self.pairs[joined] = (pc, len(a))
        for w in extra:
            self.cost[w] = min(self.cost.get(w, math.inf), log_total - math.log10(extra_count))
            if w.isalpha() and not w.endswith("s") and len(w) >= 3:
                plural = w + "s"
                self.cost[plural] = min(self.cost.get(plural, math.inf),
                                        log_total - math.log10(extra_count / 4))
        self._unknown_base = log_total - 1.0

    def known(self, word: str) -> bool:
        return word in self.cost

    def segment(self, s: str) -> list[str]:
        n = len(s)
        if n == 0:
            return []
        if s in self.cost and len(s) <= 3:
            return [s]
        # Digit runs: a span may only start and end at a run's edges.
        digit = [c.isdigit() for c in s]
        best = [0.0] + [math.inf] * n
        back = [0] * (n + 1)
        inner = [0] * (n + 1)  # > 0: the span is a known pair, cut at this offset
        cost, pairs = self.cost, self.pairs
        for j in range(1, n + 1):
            bj, bi, bk = math.inf, j - 1, 0
            if digit[j - 1] and (j == n or not digit[j]):
                i = j
                while i > 0 and digit[i - 1]:
                    i -= 1
                c = best[i] + self.DIGIT_COST
                if c < bj:
                    bj, bi = c, i
            for i in range(max(0, j - self.MAX_WORD), j):
                if best[i] == math.inf:
                    continue
                w = s[i:j]
                wc = cost.get(w)
                if wc is None:
                    if not w.isalpha():
                        continue
                    wc = self._unknown_base + len(w)
                c = best[i] + wc
                if c < bj:
                    bj, bi, bk = c, i, 0
                pair = pairs.get(w)
                if pair is not None and best[i] + pair[0] < bj:
                    bj, bi, bk = best[i] + pair[0], i, pair[1]
            best[j], back[j], inner[j] = bj, bi, bk
        out = []
        j = n
        while j > 0:
            i, k = back[j], inner[j]
            if k:
                out += [s[i + k:j], s[i:i + k]]
            else:
                out.append(s[i:j])
            j = i
        out.reverse()
        return out


@lru_cache(maxsize=1)
def default_segmenter() -> Segmenter:
    """wordsegment's unigram counts plus the social word list (loaded once, ~0.4 s)."""
    import wordsegment

    def read(path: str) -> dict[str, float]:
        out: dict[str, float] = {}
        with open(path, encoding="utf-8") as f:
            for line in f:
                w, c = line.split("\t")
                out[w] = max(out.get(w, 0.0), float(c))  # the file repeats case variants
        return out

    return Segmenter(read(wordsegment.Segmenter.UNIGRAMS_FILENAME), wordsegment.Segmenter.TOTAL,
                     _read_word_list("social_words.txt"),
                     bigrams=read(wordsegment.Segmenter.BIGRAMS_FILENAME))


def _split_separators(s: str) -> list[str]:
    """Runs of letters, marks and digits (any script); everything else separates."""
    parts: list[str] = []
    cur: list[str] = []
    for ch in s + " ":
        cat = unicodedata.category(ch)[0]
        # A mark belongs to the letter before it; one that starts a run is the
        # variation selector of an emoji ("❤️") and no part of a word.
        if cat in "LN" or (cat == "M" and cur):
            cur.append(ch)
        elif cur:
            parts.append("".join(cur))
            cur = []
    return parts


class Normalizer:
    """Normalises hashtags and text; holds spaCy and the segmenter, caches per surface."""

    def __init__(self, spell: bool = False):
        import spacy

        self.spell = spell
        self._nlp = spacy.blank("en")
        lemmatizer = self._nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        self._nlp.initialize()  # loads the lookup table from spacy-lookups-data, offline
        self._lookup = lemmatizer.lookups.get_table("lemma_lookup")
        self._stop = self._nlp.Defaults.stop_words
        self._social = frozenset(_read_word_list("social_words.txt"))
        self._max_social = max(len(w) for w in self._social)
        self._keep = frozenset(_read_word_list("lemma_keep.txt"))
        self._tag_cache: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {}
        self._lemma_cache: dict[str, str] = {}
        self._tag_lemma_cache: dict[str, str] = {}
        self._spell_cache: dict[str, str] = {}

    @property
    def _seg(self) -> Segmenter:
        # loaded on first use: post text needs no segmentation, and the
        # tables cost about a second a process (a one-shot recommend)
        return default_segmenter()

    # ---- hashtags -------------------------------------------------------

    def tag(self, raw: str) -> NormalizedTag | None:
        surface = raw.strip()
        hit = self._analyse(surface)
        if hit is None:
            return None
        return NormalizedTag(" ".join(hit[1]), list(hit[1]), surface)

    def tags(self, raws: Iterable[str]) -> list[NormalizedTag]:
        out: list[NormalizedTag] = []
        seen: set[str] = set()
        for raw in raws:
            t = self.tag(raw)
            if t is not None and t.name not in seen:
                seen.add(t.name)
                out.append(t)
        return out

    def segment(self, raw: str) -> list[str]:
        """The words of a tag before lemmatisation (what the gold list labels)."""
        hit = self._analyse(raw.strip())
        return [] if hit is None else list(hit[0])

    def _analyse(self, surface: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        if surface in self._tag_cache:
            return self._tag_cache[surface]
        s = unicodedata.normalize("NFKC", surface).strip()
        if len(s) > MAX_TAG_CHARS:
            raise DataError(f"hashtag too long ({len(s)} characters, at most {MAX_TAG_CHARS})")
        words: list[str] = []
        for piece in _split_separators(s.lstrip("#")):
            for part in self._camel_parts(piece):
                part = part.lower()
                if _ASCII_ALNUM.fullmatch(part):
                    if self.spell:
                        # Before segmenting, or "happpy" becomes "happy py".
                        part = self._correct(part)
                    seg = self._seg.segment(part)
                    words.extend(self._correct(w) for w in seg) if self.spell else words.extend(seg)
                elif cjk.has_han(part):
                    words.extend(cjk.segment(part))
                else:
                    words.append(part)
        result = (tuple(words), tuple(self._tag_lemma(w) for w in words)) if words else None
        self._tag_cache[surface] = result
        return result

    def _camel_parts(self, piece: str) -> list[str]:
        # Only lower->Upper is a reliable boundary: "NOWplaying" or "NBAFinals"
        # leave the segmenter to decide.
        cuts = [i for i in range(1, len(piece)) if piece[i - 1].islower() and piece[i].isupper()]
        if not cuts:
            return [piece]
        parts, start = [], 0
        for c in cuts + [len(piece)]:
            parts.append(piece[start:c])
            start = c
        merged = [parts[0]]
        for p in parts[1:]:
            if self._cuts_social_word(merged[-1].lower(), p.lower()):
                merged[-1] += p
            else:
                merged.append(p)
        return merged

    def _cuts_social_word(self, left: str, right: str) -> bool:
        # "iPhone4": "i" + "phone4" starts with "iphone", longer than "i".
        joined = left + right
        for k in range(len(left) + 1, min(len(joined), self._max_social) + 1):
            if joined[:k] in self._social:
                return True
        return False

    def _tag_lemma(self, w: str) -> str:
        hit = self._tag_lemma_cache.get(w)
        if hit is not None:
            return hit
        lemma = w
        if w in _IRREGULAR_PLURALS:
            lemma = _IRREGULAR_PLURALS[w]
        elif (len(w) > 3 and w.isalpha() and w not in self._keep and w.endswith("s")
              and not w.endswith(("ss", "us", "is"))):
            lk = self._lookup.get(w, w)
            if lk != w and _is_plural_of(w, lk):
                lemma = lk
            else:
                # Not in the table ("grammys", "selfies") or mapped elsewhere
                # ("taxes" -> "taxis"): take the regular singular when it is a
                # known word at least as common, so names ("steelers",
                # "texas") stay whole.
                cost = self._seg.cost
                known = [(cost[c], c) for c in _regular_singulars(w)
                         if c in cost and len(c) >= 3 and c not in self._stop]
                if known:
                    cc, cand = min(known)
                    if cand in self._social or cc <= cost.get(w, math.inf):
                        lemma = cand
        self._tag_lemma_cache[w] = lemma
        return lemma

    # ---- spelling -------------------------------------------------------

    SPELL_MIN_COUNT = 1e6  # a correction must be a common word

    def _correct(self, w: str) -> str:
        """Edit distance 1 to the most common vocabulary word; only for words
        missing from the 333k-word web vocabulary, so no known word changes."""
        hit = self._spell_cache.get(w)
        if hit is not None:
            return hit
        out = w
        seg = self._seg
        if len(w) >= 4 and w.isalpha() and w not in seg.cost:
            limit = math.log10(seg.total / self.SPELL_MIN_COUNT)
            best = None
            for cand in _edits1(w):
                c = seg.cost.get(cand)
                if c is not None and c <= limit and (best is None or (c, cand) < best):
                    best = (c, cand)
            if best is not None:
                out = best[1]
        self._spell_cache[w] = out
        return out

    # ---- text -----------------------------------------------------------

    def tokens(self, text: str, max_tokens: int | None = None) -> list[str]:
        """Lemmatised content words of a text, in order: no stop words,
        punctuation, URLs, @mentions (but the name of one in Han script),
        inline #tags or tokens without letters."""
        return self.tokens_many([text], max_tokens)[0]

    def tokens_many(self, texts: Iterable[str], max_tokens: int | None = None) -> list[list[str]]:
        if max_tokens is not None and max_tokens <= 0:
            return [[] for _ in texts]
        # Raw tweets carry HTML entities ("&nbsp;"); NFKC then turns the
        # resulting no-break space into a space.
        cleaned = (_clean_text(t) for t in texts)
        out: list[list[str]] = []
        zh_stop = cjk.stop_words()
        # The lemmatizer pipe is bypassed: a cached lookup in the same table is
        # the same lemma at a fraction of the cost. n_process stays 1 (NOTES:
        # several processes were 15-25x slower here).
        for doc in self._nlp.pipe(cleaned, batch_size=1000, disable=["lemmatizer"]):
            toks: list[str] = []
            for t in doc:
                if t.like_url:
                    continue
                # spaCy leaves CJK brackets and some symbols attached to words.
                text = _strip_edge_symbols(t.text)
                for word in (cjk.segment(text) if cjk.has_han(text) else (text,)):
                    word = _strip_edge_symbols(word)
                    if word in self._stop or word in zh_stop or not any(c.isalpha() for c in word):
                        continue
                    lemma = self._lemma(word)
                    if lemma in self._stop:
                        continue
                    toks.append(lemma)
                    if max_tokens is not None and len(toks) >= max_tokens:
                        break
                if max_tokens is not None and len(toks) >= max_tokens:
                    break
            out.append(toks)
        return out

    def _lemma(self, w: str) -> str:
        hit = self._lemma_cache.get(w)
        if hit is None:
            hit = w if w in self._keep else self._lookup.get(w, w)
            self._lemma_cache[w] = hit
        return hit


def _strip_edge_symbols(text: str) -> str:
    if text and text[0].isalnum() and text[-1].isalnum():
        return text
    i, j = 0, len(text)
    while i < j and unicodedata.category(text[i])[0] in "PSZ":
        i += 1
    while j > i and unicodedata.category(text[j - 1])[0] in "PSZ":
        j -= 1
    return text[i:j]


def _is_plural_of(w: str, lemma: str) -> bool:
    return (lemma == w[:-1] or (w.endswith("es") and lemma == w[:-2])
            or (w.endswith("ies") and lemma == w[:-3] + "y")
            or (w.endswith("ves") and lemma in (w[:-3] + "f", w[:-3] + "fe")))


def _regular_singulars(w: str) -> list[str]:
    if w.endswith("ies"):
        return [w[:-3] + "y", w[:-1]]  # "parties", "selfies"
    if w.endswith(("xes", "ches", "shes", "sses", "zes")):
        return [w[:-2]]
    return [w[:-1]]


def _edits1(w: str) -> set[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    return ({a + b[1:] for a, b in splits if b}
            | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in letters}
            | {a + c + b for a, b in splits for c in letters}) - {w}
