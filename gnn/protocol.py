"""Evaluation protocols (docs/metrics.md): which posts a system knows when it
scores a post of a split.

- ``deployed`` (the headline): validation posts are scored knowing the
  training posts; test posts knowing every post before the test period
  (train + valid). Validation picks the epoch and the blend/fusion weights.
- ``strict``: the training posts only, for validation and test alike.

The vocabulary, the count filters and the long-tail flag come from the
posts before the test period under both (kg/prepare.py); test tags outside
the vocabulary are misses.
"""
from __future__ import annotations

import numpy as np

from ..kg.errors import DataError

PROTOCOLS = ("deployed", "strict")
DEFAULT_PROTOCOL = "deployed"


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise DataError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)} (or new-to-user for evaluate)")
    return protocol


def known_rows(data, split: str, protocol: str) -> np.ndarray:
    """Rows known when scoring ``split``'s posts."""
    check_protocol(protocol)
    if split == "valid" or protocol == "strict":
        return data.rows["train"]
    if split == "test":
        return np.sort(np.concatenate([data.rows["train"], data.rows["valid"]]))
    raise DataError(f"split must be valid or test, not {split!r}")
