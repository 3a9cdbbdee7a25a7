"""Small real videos for the video tests, rendered with the same ffmpeg the
pipeline uses (no mocks: every file goes through real decoding)."""
from __future__ import annotations

import subprocess
from pathlib import Path


def ffmpeg() -> str:
    from v2ht_kg.kg.video.ffmpeg import ffmpeg_exe

    return ffmpeg_exe()


def _run(args: list[str]) -> None:
    p = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def make_clip(path: Path, *, seconds: float = 1.0, fps: int = 25, size: str = "64x48", color: str = "red",
              tone: float | None = 440.0) -> Path:
    """An H.264 mp4 of one colour with a moving white box and, unless tone
    is None, a sine tone (no audio track at all without one)."""
    v = (f"color=c={color}:s={size}:r={fps}:d={seconds}[bg];color=c=white:s=12x12:r={fps}:d={seconds}[fg];"
         f"[bg][fg]overlay=x='mod(40*t\\,50)':y=10:shortest=1,format=yuv420p")
    args = ["-f", "lavfi", "-i", v]
    if tone is not None:
        args += ["-f", "lavfi", "-i", f"sine=frequency={tone}:sample_rate=22050:duration={seconds}",
                 "-map", "0:v", "-map", "1:a", "-c:a", "aac"]
    _run(args + ["-c:v", "libx264", "-t", str(seconds), str(path)])
    return Path(path)


def indexed_video(path: Path, frames: int, fps: int = 25) -> Path:
    """A lossless RGB video (ffv1 in mkv) whose frame n is grey level 3n:
    decoded frames tell which source frame they were."""
    assert frames * 3 < 256
    _run(["-f", "lavfi", "-i", f"color=c=black:s=64x48:r={fps}:d={frames / fps},format=gbrp,geq=r='3*N':g='3*N':b='3*N'",
          "-frames:v", str(frames), "-c:v", "ffv1", "-pix_fmt", "gbrp", str(path)])
    return Path(path)


def zero_frame_video(path: Path) -> Path:
    """What ffmpeg writes for a clip of no frame: a container without a stream."""
    _run(["-f", "lavfi", "-i", "color=s=64x48:r=25:d=1", "-frames:v", "0", "-c:v", "libx264", str(path)])
    return Path(path)
