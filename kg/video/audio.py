"""The acoustic sequence (paper §4.1): one 128-dimensional vector per 0.2 s
clip, 60 clips per video at uniform positions.

Each clip's vector is its log-mel spectrum (128 bands) averaged over the
clip's STFT frames, in bels (dB / 10) so that the values stay in a range an
LSTM takes without saturating (about -10 for silence to +4).

The log-mel is librosa's (``feature.melspectrogram`` with its defaults:
centred periodic-Hann STFT, zero padding, power 2, Slaney mel filterbank
with Slaney normalisation; then ``power_to_db(ref=1, amin=1e-10,
top_db=None)``), computed here with numpy alone: importing librosa's
filters and its numba-compiled helpers cost about 3 s per process, more
than a dozen videos' audio. tests/test_video_features.py checks the result
against librosa itself (equal to 1e-4 bels)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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


# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    mel = f / _F_SP
    log = f >= _MIN_LOG_HZ
    return np.where(log, _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) float32: librosa.filters.mel(sr, n_fft,
    n_mels) with its defaults (fmin 0, fmax sr / 2, Slaney scale and norm)."""
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]  # Slaney: each band's area constant
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def _filterbank_t(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    return np.ascontiguousarray(mel_filterbank(sample_rate, n_fft, n_mels).T)


@lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """Periodic Hann window (scipy.signal.get_window('hann', n, fftbins=True))."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


def log_mel_bels(clips: np.ndarray, sample_rate: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """(clips, L) float32 → (clips, n_mels) float32: each clip's log-mel power
    spectrum in bels, averaged over its STFT frames (centred, zero-padded)."""
    half = n_fft // 2
    clips = np.asarray(clips, dtype=np.float32)
    n_frames = 1 + clips.shape[1] // hop_length
    step = max(1, _BLOCK_VALUES // (n_frames * n_fft))  # clips per block: bounded memory on long clips
    out = np.empty((len(clips), n_mels), dtype=np.float32)
    for i in range(0, len(clips), step):
        y = np.pad(clips[i:i + step], ((0, 0), (half, half)))
        frames = np.lib.stride_tricks.sliding_window_view(y, n_fft, axis=-1)[:, ::hop_length]  # (clips, t, n_fft)
        spec = np.fft.rfft(frames * _hann(n_fft), axis=-1)  # float64, as librosa (and faster than numpy's float32 FFT)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)  # (clips, t, bins)
        n, t, bins = power.shape
        mel = (power.reshape(n * t, bins) @ _filterbank_t(sample_rate, n_fft, n_mels)).reshape(n, t, n_mels)
        db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        out[i:i + n] = db.mean(axis=1) / 10.0
    return out


_BLOCK_VALUES = 1 << 22  # windowed samples per STFT block (32 MB of float64)


def clip_features(signal: np.ndarray, s: AudioSettings) -> np.ndarray:
    """(clips, n_mels) float32 for a mono signal at ``s.sample_rate``."""
    y = np.asarray(signal, dtype=np.float32)
    L = s.clip_samples
    starts = clip_starts(len(y), s.clips, L)
    if len(y) < L:
        y = np.pad(y, (0, L - len(y)))
    clips = y[starts[:, None] + np.arange(L)[None, :]]  # (clips, L): one batched STFT for all
    return log_mel_bels(clips, s.sample_rate, min(s.n_fft, _pow2_at_most(L)), s.hop_length, s.n_mels)


def _pow2_at_most(n: int) -> int:
    return 1 << max(int(n).bit_length() - 1, 4)


def no_audio(s: AudioSettings) -> np.ndarray:
    """The fallback for a video without an audio track: all zeros, which the
    data pipeline reads as "no signal" (gnn.data: all-zero steps are padding)."""
    return np.zeros((s.clips, s.n_mels), dtype=np.float32)
