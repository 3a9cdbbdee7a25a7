"""FFmpeg as a subprocess: where the binary is, what a file holds, and
decoding sampled frames and the audio track through raw pipes.

One process per stage and file (probe, frames, audio): raw pipes carry only
the sampled frames at the CNN's size, which is faster than seeking per frame.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ToolError, VideoError

# Environment variable naming an ffmpeg binary to use instead of the bundled one.
FFMPEG_ENV = "V2HT_FFMPEG"


@functools.lru_cache(maxsize=None)
def _find(override: str | None) -> str:
    if override:
        path = shutil.which(override) or (override if os.access(override, os.X_OK) else None)
        if path is None:
            raise ToolError(f"{FFMPEG_ENV}={override}: no such executable ffmpeg")
        return path
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and os.access(exe, os.X_OK):
            return exe
    except (ImportError, RuntimeError):
        pass
    path = shutil.which("ffmpeg")
    if path is None:
        raise ToolError("ffmpeg not found: install the Python package imageio-ffmpeg (it bundles one), "
                        f"put ffmpeg on PATH or set {FFMPEG_ENV}")
    return path


def ffmpeg_exe() -> str:
    """The ffmpeg binary: $V2HT_FFMPEG, else imageio-ffmpeg's bundled one, else
    ``ffmpeg`` on PATH. Raises ToolError when there is none."""
    return _find(os.environ.get(FFMPEG_ENV) or None)


@functools.lru_cache(maxsize=None)
def _version(exe: str) -> str:
    try:
        out = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30).stdout
    except OSError as e:
        raise ToolError(f"{exe}: cannot run ffmpeg ({e.strerror or e})") from None
    m = re.search(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else "unknown"


def ffmpeg_version() -> str:
    return _version(ffmpeg_exe())


def _run(args: list[str], path: Path, timeout: float) -> subprocess.CompletedProcess:
    exe = ffmpeg_exe()
    try:
        return subprocess.run([exe, "-hide_banner", "-nostdin", *args], capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise ToolError(f"{exe}: ffmpeg vanished (not found)") from None
    except subprocess.TimeoutExpired:
        raise VideoError(f"ffmpeg took over {timeout:.0f} s", str(path)) from None


_PREFIX = re.compile(r"^(\[[^\]]* @ 0x[0-9a-f]+\] ?)+")


def _last_error(stderr: bytes, path: Path) -> str:
    """ffmpeg's reason, one line, without the file name it repeats."""
    lines = [_PREFIX.sub("", l).strip() for l in stderr.decode("utf-8", "replace").splitlines() if l.strip()]
    name = str(path)
    def clean(l: str) -> str:
        return l.replace(name + ": ", "").replace(name, "").strip(" :")[:160]

    # the demuxer's own words ("moov atom not found") come before the generic ones
    for l in lines:
        if not l.startswith(("Error opening input", "At least one output", "Exiting", "Input #", "Metadata",
                             "Duration", "Stream #")):
            return clean(l)
    for l in reversed(lines):
        for lead in ("Error opening input files: ", "Error opening input: "):
            if l.startswith(lead):
                return clean(l.removeprefix(lead))
    return "ffmpeg failed"


@dataclass(frozen=True)
class VideoInfo:
    duration: float | None  # seconds; None when the container does not say
    fps: float | None
    width: int
    height: int
    has_audio: bool


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: .*?(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"([\d.]+) (?:fps|tbr)")


def probe(path: Path, timeout: float = 60) -> VideoInfo:
    """What ffmpeg reads from the container header. VideoError when the file
    is empty, not a media file, or has no video stream."""
    path = Path(path)
    if not path.is_file():
        raise VideoError("no such file", str(path))
    if path.stat().st_size == 0:
        raise VideoError("empty file (0 bytes)", str(path))
    p = _run(["-i", str(path)], path, timeout)  # no output named: ffmpeg prints the header and exits 1
    err = p.stderr.decode("utf-8", "replace")
    if "Input #" not in err:
        raise VideoError(f"not a readable video ({_last_error(p.stderr, path)})", str(path))
    if "Stream #" not in err:
        # what muxers write for a clip of zero frames: a header, no stream
        raise VideoError("no frame in it: the video is shorter than one frame (its container holds no stream)",
                         str(path))
    v = next((l for l in err.splitlines() if "Video:" in l and "Stream #" in l), None)
    if v is None:
        raise VideoError("no video stream (an audio or data file?)", str(path))
    m = _VIDEO.search(v)
    if m is None:
        raise VideoError("video stream without a frame size", str(path))
    d = _DURATION.search(err)
    duration = int(d.group(1)) * 3600 + int(d.group(2)) * 60 + float(d.group(3)) if d else None
    f = _FPS.search(v)
    fps = float(f.group(1)) if f else None
    return VideoInfo(duration=duration if duration and duration > 0 else None, fps=fps if fps and fps > 0 else None,
                     width=int(m.group(1)), height=int(m.group(2)),
                     has_audio=any("Audio:" in l and "Stream #" in l for l in err.splitlines()))


def crop_filter(size: int, info: VideoInfo) -> tuple[str, int]:
    """Scale the short side to ``size`` (never up) and centre-crop a square:
    the ImageNet evaluation crop, which also bounds the CNN's cost per frame."""
    side = max(1, min(size, info.width, info.height))
    side -= side % 2  # yuv sources: even sizes avoid a chroma row of padding
    side = max(side, 2)
    scale = f"scale='if(lt(iw,ih),{side},-2)':'if(lt(iw,ih),-2,{side})':flags=area"
    return f"{scale},crop={side}:{side}", side


def decode_frames(path: Path, info: VideoInfo, n_frames: int, size: int, timeout: float = 300) -> np.ndarray:
    """``n_frames`` RGB frames (n, S, S, 3) uint8 at uniform positions: frame
    numbers sampling.uniform_indices(N, n) of the N = duration·fps frames.

    ffmpeg's select filter passes only those frames on to scaling and the
    pipe. When the header's count is off (variable frame rate) and fewer
    frames arrive, the uniform pick is redone over those that did; without
    a duration or rate in the header every frame is decoded and picked here."""
    from .sampling import uniform_indices

    path = Path(path)
    vf, side = crop_filter(size, info)
    want = None
    if info.duration and info.fps:
        total = max(1, int(round(info.duration * info.fps)))
        want = uniform_indices(total, n_frames)
        keep = np.unique(want)
        vf = "select='" + "+".join(f"eq(n\\,{i})" for i in keep) + "'," + vf
    p = _run(["-v", "error", "-i", str(path), "-map", "0:v:0", "-an", "-sn", "-vf", vf, "-fps_mode", "passthrough",
              "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], path, timeout)
    frame_bytes = side * side * 3
    got = len(p.stdout) // frame_bytes
    if p.returncode != 0 and got == 0:
        raise VideoError(f"cannot decode the video ({_last_error(p.stderr, path)})", str(path))
    if p.returncode != 0 or (p.stderr.strip() and _looks_truncated(p.stderr)):
        raise VideoError(f"truncated or corrupt video ({_last_error(p.stderr, path)})", str(path))
    if got == 0:
        raise VideoError("no frame decoded: the video is shorter than one frame", str(path))
    frames = np.frombuffer(p.stdout[:got * frame_bytes], dtype=np.uint8).reshape(got, side, side, 3)
    if want is not None and got == len(keep):
        return frames[np.searchsorted(keep, want)]  # repeats where the video has fewer frames than asked
    return frames[uniform_indices(got, n_frames)]


_TRUNCATED = re.compile(r"partial file|Invalid NAL|error while decoding|Truncat|End of file|corrupt|"
                        r"Invalid data", re.IGNORECASE)


def _looks_truncated(stderr: bytes) -> bool:
    return bool(_TRUNCATED.search(stderr.decode("utf-8", "replace")))


def decode_audio(path: Path, sample_rate: int, timeout: float = 300) -> np.ndarray:
    """The first audio track, mono float32 at ``sample_rate``."""
    path = Path(path)
    p = _run(["-v", "error", "-i", str(path), "-map", "0:a:0", "-vn", "-sn", "-ac", "1", "-ar", str(sample_rate),
              "-f", "f32le", "pipe:1"], path, timeout)
    if p.returncode != 0 and not p.stdout:
        raise VideoError(f"cannot decode the audio track ({_last_error(p.stderr, path)})", str(path))
    n = len(p.stdout) // 4
    return np.frombuffer(p.stdout[:n * 4], dtype="<f4").astype(np.float32)
