"""Bad input to `features extract`, as a user meets it: each bad video is
one error line naming the file, the others go through, a failure count at
the end; a corrupt weights file and a missing ffmpeg stop with one line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from video_fixtures import make_clip, zero_frame_video
from cli_checks import one_line_error

CLI = [sys.executable, "-m", "v2ht_kg.cli.app"]
SMALL = ["--frames", "4", "--frame-size", "32", "--clips", "10", "--threads", "1"]


def run(*args, env=None):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1", **(env or {})})




@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    make_clip(d / "good.mp4", seconds=1.0)
    make_clip(d / "silent.mkv", seconds=1.0, tone=None)
    (d / "notavideo.mp4").write_text("just some text pretending to be a video\n" * 20)
    (d / "empty.mov").write_bytes(b"")
    whole = make_clip(d / "whole.tmp.mp4", seconds=2.0, size="160x120").read_bytes()  # moov at the end
    (d / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    (d / "whole.tmp.mp4").unlink()
    zero_frame_video(d / "noframe.mp4")
    return d


def test_each_bad_video_is_one_line_and_the_others_go_through(bad_folder, tmp_path):
    out = tmp_path / "raw"
    p = run("features", "extract", str(bad_folder), "--out", str(out), *SMALL)
    assert p.returncode == 1, p.stderr
    assert "Traceback" not in p.stderr
    errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 4, p.stderr
    for name, why in (("notavideo.mp4", "not a readable video"), ("empty.mov", "empty file"),
                      ("truncated.mp4", "moov atom not found"), ("noframe.mp4", "shorter than one frame")):
        (line,) = [l for l in errors if name in l]
        assert why in line, line
    assert "4 of 6 videos failed" in p.stderr
    ids = (out / "features" / "visual.ids.txt").read_text().split()
    assert ids == ["good", "silent"]
    m = json.loads((out / "features" / "extraction.json").read_text())
    assert m["no_audio_posts"] == ["silent"] and len(m["failed"]) == 4
    acoustic = np.load(out / "features" / "acoustic.npy")
    assert acoustic[0].any() and not acoustic[1].any()
    # the folder builds as it is: the failed videos are simply absent
    from v2ht_kg.kg.rawdata import raw_features, read_raw_posts

    assert [x.id for x in read_raw_posts(out)] == ["good", "silent"]
    assert set(raw_features(out)) == {"visual", "acoustic"}


def test_a_truncated_stream_with_its_header_first_is_an_error(tmp_path):
    """moov first (faststart): ffmpeg opens the file and the frames run out."""
    from v2ht_kg.kg.errors import VideoError
    from v2ht_kg.kg.video.ffmpeg import decode_frames, probe
    from video_fixtures import _run

    whole = tmp_path / "w.mp4"
    _run(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3", "-c:v", "libx264", "-movflags",
          "+faststart", str(whole)])
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(VideoError) as e:
        decode_frames(cut, probe(cut), 40, 224)
    assert str(cut) in str(e.value) and "\n" not in str(e.value)


def test_corrupt_weights_stop_with_one_line(bad_folder, tmp_path):
    from v2ht_kg.kg.video.cnn import default_weights

    bad = tmp_path / "w.pth"
    data = bytearray(default_weights().read_bytes())
    data[-100] ^= 1
    bad.write_bytes(bytes(data))
    line = one_line_error(run("features", "extract", str(bad_folder), "--out", str(tmp_path / "o"), "--weights",
                              str(bad), *SMALL))
    assert "sha256" in line and str(bad) in line
    assert not (tmp_path / "o" / "posts.jsonl").exists()


def test_missing_ffmpeg_is_one_line(bad_folder, tmp_path):
    # no bundled binary (imageio-ffmpeg is pointed at nothing) and none on PATH
    env = {"IMAGEIO_FFMPEG_EXE": str(tmp_path / "nothing"), "PATH": str(tmp_path / "empty-bin")}
    line = one_line_error(run("features", "extract", str(bad_folder), "--out", str(tmp_path / "o"), *SMALL, env=env))
    assert "ffmpeg not found" in line
    line = one_line_error(run("features", "extract", str(bad_folder), "--out", str(tmp_path / "o"), *SMALL,
                              env={"V2HT_FFMPEG": str(tmp_path / "no-ffmpeg")}))
    assert "V2HT_FFMPEG" in line


def test_bad_folders_and_options(tmp_path):
    assert "no such video folder" in one_line_error(run("features", "extract", str(tmp_path / "none"), "--out",
                                                        str(tmp_path / "o")))
    (tmp_path / "v").mkdir()
    assert "no videos here" in one_line_error(run("features", "extract", str(tmp_path / "v"), "--out",
                                                  str(tmp_path / "o")))
    assert "--frames" in one_line_error(run("features", "extract", str(tmp_path / "v"), "--out", str(tmp_path / "o"),
                                            "--frames", "0"))
    assert "another folder" in one_line_error(run("features", "extract", str(tmp_path), "--out", str(tmp_path)))
