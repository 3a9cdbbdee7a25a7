"""Feature shapes and dtypes, the CNN's weights check, resumable extraction
into the raw folder format, the description's words."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from v2ht_kg.kg.errors import ToolError
from v2ht_kg.kg.video.cnn import FEATURE_DIM, WEIGHTS_SHA256, check_weights, default_weights, load_encoder
from v2ht_kg.kg.video.extract import ExtractSettings, extract_folder, extract_video
from video_fixtures import make_clip

SMALL = ExtractSettings(frames=8, frame_size=64, clips=20)


@pytest.fixture(scope="module")
def encoder(one_torch_thread):
    return load_encoder()


def test_weights_are_checked_before_they_are_read(tmp_path):
    assert check_weights(default_weights()) == WEIGHTS_SHA256
    bad = tmp_path / "efficientnet-lite0-57934424.pth"
    data = bytearray(default_weights().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep inside a tensor: torch would load it silently
    bad.write_bytes(bytes(data))
    with pytest.raises(ToolError) as e:
        load_encoder(bad)
    msg = str(e.value)
    assert "sha256" in msg and str(bad) in msg and "\n" not in msg
    with pytest.raises(ToolError, match="not found"):
        load_encoder(tmp_path / "missing.pth")


def test_frame_vectors(encoder):
    rng = np.random.default_rng(0)
    red = np.zeros((3, 64, 64, 3), np.uint8)
    red[..., 0] = 220
    noise = rng.integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    out = encoder.encode(np.concatenate([red, noise]))
    assert out.shape == (5, FEATURE_DIM) and out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0  # ReLU6 activations, averaged
    np.testing.assert_allclose(out[0], out[1], atol=1e-5)  # same frame, same vector
    assert np.linalg.norm(out[0] - out[3]) > 1.0
    # batching changes nothing: frames one by one give the same vectors
    single = np.concatenate([encoder.encode(f[None]) for f in np.concatenate([red[:1], noise])])
    np.testing.assert_allclose(single, out[[0, 3, 4]], atol=1e-4)


def test_folded_batchnorm_matches_the_original_network(encoder):
    """The fold is exact: the package's unfolded EfficientNet-Lite0 with the
    same weights gives the same frame vectors and ImageNet logits."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(default_weights(), map_location="cpu", weights_only=True))
    ref.eval()
    frames = np.random.default_rng(1).integers(0, 255, (2, 96, 96, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    with torch.no_grad():
        want = ref.extract_features((x - mean) / std).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(encoder.encode(frames), want, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("side", [120, 75, 32, 224])
def test_padding_inside_the_convolutions_is_exact(encoder, side):
    """The encoder's forward (TF "same" padding as symmetric conv padding and
    an output offset, ReLU6 fused on CPU) equals the package's own network
    (ZeroPad2d then conv) on even and odd sizes, the demo's 120x120 included,
    whichever batch size."""
    import torch
    from dataclasses import replace

    frames = np.random.default_rng(side).integers(0, 255, (3, side, side, 3), dtype=np.uint8)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    with torch.inference_mode():
        want = encoder.model.extract_features(((x - mean) / std).contiguous(memory_format=torch.channels_last))
    want = want.mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(encoder.encode(frames), want, atol=1e-4, rtol=1e-4)
    plain = replace(encoder, fused=False, batch_size=2, chunk=1)
    np.testing.assert_allclose(plain.encode(frames), want, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(replace(encoder, chunk=2).encode(frames), want, atol=1e-4, rtol=1e-4)


def test_one_video_shapes_dtypes_and_no_audio_fallback(tmp_path, encoder):
    f = extract_video(make_clip(tmp_path / "a.mp4"), ExtractSettings(), encoder)
    assert f.visual.shape == (40, FEATURE_DIM) and f.visual.dtype == np.float32
    assert f.acoustic.shape == (60, 128) and f.acoustic.dtype == np.float32
    assert f.has_audio and np.isfinite(f.acoustic).all() and np.abs(f.acoustic).min() > 0
    silent = extract_video(make_clip(tmp_path / "b.mp4", tone=None), SMALL, encoder)
    assert silent.visual.shape == (8, FEATURE_DIM) and silent.acoustic.shape == (20, 128)
    assert not silent.has_audio and not silent.acoustic.any()  # zeros: "no signal" for training


def test_folder_extraction_is_resumable_and_in_the_raw_format(tmp_path, encoder):
    from v2ht_kg.kg.rawdata import raw_features, read_raw_posts

    vids = tmp_path / "videos"
    vids.mkdir()
    make_clip(vids / "one.mp4", color="red")
    make_clip(vids / "two.mov", color="green", tone=None)
    (vids / "notes.txt").write_text("not a video, not listed")
    out = tmp_path / "raw"
    first = extract_folder(vids, out, SMALL, encoder)
    assert (first.extracted, first.reused, first.failed, first.no_audio) == (2, 0, [], ["two"])
    make_clip(vids / "three.webm".replace("webm", "mkv"), color="blue")
    second = extract_folder(vids, out, SMALL, encoder)
    assert (second.extracted, second.reused) == (1, 2)  # the two done before are skipped
    posts = list(read_raw_posts(out))
    assert [p.id for p in posts] == ["one", "three", "two"] and all(p.hashtags == [] for p in posts)
    feats = raw_features(out, {p.id for p in posts})
    v, vids_ids = feats["visual"]
    a, a_ids = feats["acoustic"]
    assert v.shape == (3, 8, FEATURE_DIM) and a.shape == (3, 20, 128)
    assert v.dtype == np.float16 and a.dtype == np.float16 and vids_ids == a_ids == ["one", "three", "two"]
    assert not a[2].any() and a[0].any()
    m = json.loads((out / "features" / "extraction.json").read_text())
    assert m["cnn"]["weights_sha256"] == WEIGHTS_SHA256 and m["cnn"]["name"] == "efficientnet-lite0"
    assert m["tools"]["ffmpeg"] and m["tools"]["librosa"].startswith("0.")
    assert m["settings"]["frames"] == 8 and m["no_audio_fallback"] == "zeros" and m["no_audio_posts"] == ["two"]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # nothing half-written left
    # the settings are part of a video's key: other settings recompute it
    third = extract_folder(vids, out, ExtractSettings(frames=4, frame_size=64, clips=20), encoder)
    assert (third.extracted, third.reused) == (3, 0)


def test_posts_file_and_description_words(tmp_path, encoder):
    from v2ht_kg.kg.rawdata import read_raw_posts
    from v2ht_kg.kg.video.text import description_words

    assert description_words("The kids were running on the sunny beaches with Straßenbahn 東京 and dogs surfing") \
        == ["kid", "run", "sunny", "beach", "dog", "surf"]
    assert description_words("apple pear plum fig kiwi lime lemon melon", 6) == ["apple", "pear", "plum", "fig", "kiwi", "lime"]
    # the description's English word list is the segmenter's vocabulary, read without building the segmenter
    from v2ht_kg.kg.normalize import default_segmenter
    from v2ht_kg.kg.video.text import _english_words

    assert _english_words() == frozenset(default_segmenter().cost)
    vids = tmp_path / "v"
    vids.mkdir()
    make_clip(vids / "clip.mp4")
    (vids / "posts.jsonl").write_text(json.dumps({"id": "p1", "user": "ann", "hashtags": ["#Beach", "SunnyDay"],
                                                  "description": "Running on the beaches!", "file": "clip.mp4",
                                                  "split": "train"}) + "\n")
    extract_folder(vids, tmp_path / "raw", SMALL, encoder)
    (p,) = read_raw_posts(tmp_path / "raw")
    assert (p.id, p.user, p.hashtags, p.text, p.split) == ("p1", "ann", ["#Beach", "SunnyDay"], "run beach", "train")


def _librosa_clip_features(signal, s):
    """The acoustic vectors as the first version computed them, with librosa."""
    import librosa

    from v2ht_kg.kg.video.audio import _pow2_at_most
    from v2ht_kg.kg.video.sampling import clip_starts

    y = np.asarray(signal, dtype=np.float32)
    L = s.clip_samples
    starts = clip_starts(len(y), s.clips, L)
    if len(y) < L:
        y = np.pad(y, (0, L - len(y)))
    clips = y[starts[:, None] + np.arange(L)[None, :]]
    mel = librosa.feature.melspectrogram(y=clips, sr=s.sample_rate, n_fft=min(s.n_fft, _pow2_at_most(L)),
                                         hop_length=s.hop_length, n_mels=s.n_mels)
    return (librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).mean(axis=-1) / 10.0).astype(np.float32)


def test_numpy_log_mel_equals_librosa(tmp_path):
    """audio.py's numpy log-mel (no librosa import, no numba) gives librosa's
    vectors to 1e-4 bels: a real decoded track, noise, silence, a constant,
    a signal shorter than a clip, other clip lengths and band counts."""
    import librosa

    from v2ht_kg.kg.video.audio import AudioSettings, clip_features, mel_filterbank
    from v2ht_kg.kg.video.ffmpeg import decode_audio

    for sr, n_fft, n_mels in [(22050, 2048, 128), (16000, 512, 40), (22050, 64, 16)]:
        np.testing.assert_allclose(mel_filterbank(sr, n_fft, n_mels),
                                   librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels), atol=1e-7)
    rng = np.random.default_rng(0)
    t = np.arange(30000) / 22050
    signals = [decode_audio(make_clip(tmp_path / "tone.mp4", seconds=1.5), 22050),
               (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32),
               np.zeros(5000, np.float32), np.full(300, 0.5, np.float32), 1e-4 * rng.standard_normal(3000).astype(np.float32)]
    settings = [AudioSettings(), AudioSettings(clips=20), AudioSettings(clip_seconds=0.01), AudioSettings(clip_seconds=1.0, n_mels=40)]
    for y in signals:
        for s in settings:
            got = clip_features(y, s)
            assert got.shape == (s.clips, s.n_mels) and got.dtype == np.float32
            np.testing.assert_allclose(got, _librosa_clip_features(y, s), atol=1e-4, rtol=0)
