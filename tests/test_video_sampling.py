"""Frame and clip sampling: counts and uniform positions, on real decoded
video (frames that carry their own index) and real audio."""
from __future__ import annotations

import numpy as np
import pytest

from v2ht_kg.kg.video.audio import AudioSettings, clip_features
from v2ht_kg.kg.video.ffmpeg import decode_audio, decode_frames, probe
from v2ht_kg.kg.video.sampling import clip_starts, frame_times, uniform_indices
from video_fixtures import indexed_video, make_clip


def test_uniform_indices_are_the_centres_of_equal_parts():
    idx = uniform_indices(75, 40)
    assert len(idx) == 40 and idx[0] == 0 and idx[-1] == 74
    assert np.all(np.diff(idx) >= 1) and set(np.diff(idx)) <= {1, 2}
    np.testing.assert_array_equal(idx, np.floor((np.arange(40) + 0.5) * 75 / 40).astype(int))
    short = uniform_indices(10, 40)  # fewer frames than asked: each repeats four times, in order
    assert len(short) == 40 and np.all(np.diff(short) >= 0)
    np.testing.assert_array_equal(np.bincount(short), [4] * 10)
    with pytest.raises(ValueError):
        uniform_indices(0, 40)


def test_clip_starts_are_uniform_and_inside_the_signal():
    n, L = 66150, 4410  # 3 s at 22050 Hz, 0.2 s clips
    s = clip_starts(n, 60, L)
    assert len(s) == 60 and s.min() >= 0 and s.max() <= n - L
    centres = s + L / 2
    inner = slice(6, 54)  # away from the clamped ends
    np.testing.assert_allclose(centres[inner], ((np.arange(60) + 0.5) * n / 60)[inner], atol=1)
    gaps = np.diff(s[inner])
    assert gaps.max() - gaps.min() <= 1
    np.testing.assert_array_equal(clip_starts(1000, 60, L), np.zeros(60))  # shorter than one clip
    np.testing.assert_allclose(frame_times(3.0, 40)[[0, -1]], [0.0375, 2.9625])


@pytest.mark.parametrize("frames", [75, 10])
def test_decoded_frames_sit_at_uniform_positions(tmp_path, frames):
    path = indexed_video(tmp_path / f"idx{frames}.mkv", frames)
    info = probe(path)
    assert info.duration == pytest.approx(frames / 25, abs=0.05) and not info.has_audio
    got = decode_frames(path, info, 40, 224)
    assert got.shape == (40, 48, 48, 3) and got.dtype == np.uint8  # short side 48 (never upscaled), square crop
    assert np.all(got == got[:, :1, :1, :1])  # uniform grey frames, exact (lossless)
    index = got[:, 0, 0, 0].astype(int) / 3
    expected = (np.arange(40) + 0.5) * frames / 40
    assert np.all(np.abs(index - expected) <= 1.0), (index, expected)
    assert np.all(np.diff(index) >= 0)
    if frames < 40:
        assert set(index.astype(int)) == set(range(frames))  # every frame used, none invented


def test_audio_clips_follow_the_sound_over_time(tmp_path):
    """A tone for the first 1.5 s, silence after: the clips of the first
    half are loud, those of the second half quiet, with the change in the middle."""
    from video_fixtures import _run

    path = tmp_path / "half.mp4"
    _run(["-f", "lavfi", "-i", "color=c=blue:s=64x48:r=25:d=3", "-f", "lavfi",
          "-i", "aevalsrc=exprs='0.5*sin(2*PI*660*t)*lt(t\\,1.5)':sample_rate=22050:duration=3",
          "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-c:a", "pcm_s16le", "-t", "3", str(path.with_suffix(".mov"))])
    path = path.with_suffix(".mov")
    s = AudioSettings()
    y = decode_audio(path, s.sample_rate)
    assert abs(len(y) - 3 * s.sample_rate) < s.sample_rate * 0.05
    f = clip_features(y, s)
    assert f.shape == (60, 128) and f.dtype == np.float32 and np.isfinite(f).all()
    energy = f.mean(axis=1)
    assert energy[:28].min() > energy[32:].max() + 2  # bels: the tone is far above silence
    band = int(np.argmax(f[5]))
    assert 0 < band < 64  # 660 Hz sits in the lower mel bands


def test_clip_features_differ_by_tone(tmp_path):
    s = AudioSettings()
    a = clip_features(decode_audio(make_clip(tmp_path / "a.mp4", tone=220), s.sample_rate), s)
    b = clip_features(decode_audio(make_clip(tmp_path / "b.mp4", tone=1760), s.sample_rate), s)
    assert np.argmax(a.mean(0)) < np.argmax(b.mean(0))
