"""Where the frames and audio clips of a video are taken: uniform positions
over its length (paper §4.1: 40 frames and 60 clips of 0.2 s per video)."""
from __future__ import annotations

import numpy as np


def uniform_indices(total: int, n: int) -> np.ndarray:
    """``n`` indices into ``total`` items at the centres of n equal parts,
    floor((k + 1/2)·total/n): spread over the whole range, the first and
    last parts alike. With total < n items repeat (a short video)."""
    if total < 1 or n < 1:
        raise ValueError(f"need total >= 1 and n >= 1, got {total}, {n}")
    return np.minimum(((np.arange(n) + 0.5) * total / n).astype(np.int64), total - 1)


def frame_times(duration: float, n: int) -> np.ndarray:
    """Seconds of the n sampled frames: (k + 1/2)·D/n."""
    return (np.arange(n) + 0.5) * float(duration) / n


def clip_starts(n_samples: int, n_clips: int, clip_samples: int) -> np.ndarray:
    """Start sample of each of ``n_clips`` clips of ``clip_samples``, their
    centres uniform over the signal and each clip inside it (clips overlap
    when the signal is shorter than n_clips·clip; a signal shorter than one
    clip gives starts of 0, its clips zero-padded)."""
    if n_clips < 1 or clip_samples < 1:
        raise ValueError(f"need n_clips >= 1 and clip_samples >= 1, got {n_clips}, {clip_samples}")
    centres = (np.arange(n_clips) + 0.5) * n_samples / n_clips
    starts = np.round(centres - clip_samples / 2).astype(np.int64)
    return np.clip(starts, 0, max(n_samples - clip_samples, 0))
