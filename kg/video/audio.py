"""The acoustic sequence (paper §4.1): one 128-dimensional vector per 0.2 s
clip, 60 clips per video at uniform positions.

Each clip's vector is its log-mel spectrum (librosa, 128 bands) averaged
over the clip's STFT frames, in bels (dB / 10) so that the values stay in a
range an LSTM takes without saturating (about -10 for silence to +4)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sampling import clip_starts


@dataclass(frozen=True)
class AudioSettings:
    clips: int = 60
    clip_seconds: float = 0.2
    sample_rate: int = 22050
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512

    @property
    def clip_samples(self) -> int:
        return max(1, int(round(self.clip_seconds * self.sample_rate)))


def clip_features(signal: np.ndarray, s: AudioSettings) -> np.ndarray:
    """(clips, n_mels) float32 for a mono signal at ``s.sample_rate``."""
    import librosa

    y = np.asarray(signal, dtype=np.float32)
    L = s.clip_samples
    starts = clip_starts(len(y), s.clips, L)
    if len(y) < L:
        y = np.pad(y, (0, L - len(y)))
    clips = y[starts[:, None] + np.arange(L)[None, :]]  # (clips, L): one batched STFT for all
    mel = librosa.feature.melspectrogram(y=clips, sr=s.sample_rate, n_fft=min(s.n_fft, _pow2_at_most(L)),
                                         hop_length=s.hop_length, n_mels=s.n_mels)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    return (db.mean(axis=-1) / 10.0).astype(np.float32)


def _pow2_at_most(n: int) -> int:
    return 1 << max(int(n).bit_length() - 1, 4)


def no_audio(s: AudioSettings) -> np.ndarray:
    """The fallback for a video without an audio track: all zeros, which the
    data pipeline reads as "no signal" (gnn.data: all-zero steps are padding)."""
    return np.zeros((s.clips, s.n_mels), dtype=np.float32)
