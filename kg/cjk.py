"""Word segmentation of Chinese text and hashtags.

Chinese is written without spaces, so a whitespace tokenizer returns whole
clauses ("邓紫棋酒店隔离洗手间大放歌喉") that no other post repeats: text kNN,
word embeddings and the hashtags' words (cp edges, zero-shot words) then see
nothing in common between posts. jieba, the field's standard segmenter,
cuts them into words (邓紫棋 / 酒店 / 隔离 / 洗手间 / 大 / 放 / 歌喉).

jieba normally caches its prefix dictionary in the temp folder with
``marshal``; loading such a file is loading code-shaped data from a shared
folder, so the dictionary is built from jieba's bundled text file instead
(about 0.4 s, once a process, only when a text holds Han characters).
"""
from __future__ import annotations

import re
from functools import lru_cache

# CJK Unified Ideographs, Extension A and the compatibility block (the
# inside of a regex character class).
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN = re.compile(f"[{HAN_RANGES}]")


def has_han(s: str) -> bool:
    return _HAN.search(s) is not None


@lru_cache(maxsize=1)
def _tokenizer():
    import jieba

    tk = jieba.Tokenizer()
    tk.FREQ, tk.total = tk.gen_pfdict(tk.get_dict_file())
    tk.initialized = True
    return tk


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """The one-character words of spaCy's Chinese stop list (particles and
    pronouns: 的, 了, 我, 吧). The whole list (1,891 entries, shipped with
    spaCy, no model download) also drops content words such as 练习
    (practise) and 坚持 (persist); TF-IDF weighs common words down anyway."""
    from spacy.lang.zh.stop_words import STOP_WORDS

    return frozenset(w for w in STOP_WORDS if len(w) == 1 and has_han(w))


def segment(s: str) -> list[str]:
    """Words of a string holding Han characters, in order; separators and
    whitespace dropped. Words the dictionary lacks are found by jieba's HMM
    (names such as 辰辰)."""
    return [w for w in _tokenizer().cut(s, HMM=True) if w.strip()]
