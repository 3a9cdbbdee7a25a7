"""A new post's tokens from a forked child (kg/tokens_ahead.py): the same
tokens as the parent's own Normalizer, and the parent's when the child fails."""
from __future__ import annotations

import os

import pytest

from v2ht_kg.kg import tokens_ahead as ta
from v2ht_kg.kg.normalize import Normalizer

TEXTS = [
    "Watching the Lakers games tonight with my friends &amp; family http://t.co/x @bob #nba",
    "",
    "les enfants jouent au parc 🙂 " * 400,  # larger than a pipe's buffer as JSON
]


@pytest.mark.parametrize("text", TEXTS, ids=["tweet", "empty", "long"])
def test_the_child_gives_the_normalizers_tokens(text):
    want = Normalizer().tokens(text)
    assert ta.tokens_ahead(text)() == want


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_failing_child_leaves_the_tokens_to_the_parent(monkeypatch):
    parent = os.getpid()
    real = ta._inline
    calls = []

    def inline(text):
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        calls.append(text)
        return real(text)

    monkeypatch.setattr(ta, "_inline", inline)
    assert ta.tokens_ahead("dancing cats")() == Normalizer().tokens("dancing cats")
    assert calls == ["dancing cats"]  # made again in the parent
