"""A demo micro-video set the project renders itself with ffmpeg's test
sources: short clips whose pictures and sounds depend on a hashtag topic
(background and shape colours, shape sizes and motion, a colour cycle or
grain, a tone, a chord, beeps or noise), with per-clip jitter, plus a
posts.jsonl (id, user, hashtags, description, file, split).

Deterministic: the same seed gives the same posts and, with the same
ffmpeg, the same bytes (single-threaded bit-exact encoding). Splits are
balanced per topic (60/20/20), so a small set still has test posts of
every topic."""
from __future__ import annotations

import json
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError, V2HTError


@dataclass(frozen=True)
class Topic:
    name: str
    tags: tuple[str, ...]  # the first is on every post of the topic
    bg: tuple[int, int, int]
    fg: tuple[int, int, int]
    box: tuple[int, int]  # shape size at 160x120
    motion: str  # horizontal | vertical | circle | still
    extra: str  # "" | hue (colour cycle) | grain
    audio: str  # sine:F | chord:F | beeps:F | noise:COLOUR
    words: tuple[str, ...]


TOPICS = (
    Topic("ocean", ("beach", "ocean", "surfing"), (16, 96, 192), (240, 240, 250), (60, 14), "horizontal", "",
          "sine:220", ("wave", "sand", "sunny", "swim", "shore")),
    Topic("forest", ("nature", "forest", "hiking"), (30, 110, 40), (110, 70, 30), (18, 90), "still", "grain",
          "noise:pink", ("tree", "trail", "green", "walk", "moss")),
    Topic("party", ("party", "dance", "nightlife"), (20, 10, 40), (250, 40, 200), (36, 36), "circle", "hue",
          "beeps:880", ("music", "night", "club", "friend", "light")),
    Topic("food", ("food", "cooking", "yummy"), (230, 140, 40), (200, 30, 20), (50, 50), "still", "",
          "chord:330", ("dinner", "recipe", "tasty", "kitchen", "bake")),
    Topic("sport", ("sport", "football", "workout"), (235, 235, 235), (10, 10, 10), (24, 24), "vertical", "",
          "noise:white", ("goal", "match", "team", "train", "run")),
    Topic("winter", ("winter", "snow", "christmas"), (190, 200, 215), (255, 255, 255), (12, 12), "vertical", "grain",
          "sine:1760", ("cold", "ice", "holiday", "frost", "ski")),
)
FILLER = ("the", "a", "my", "today", "with", "and", "so", "really", "wow", "déjà", "schön", "love")


def _hex(c: tuple[int, int, int]) -> str:
    return "0x%02x%02x%02x" % tuple(max(0, min(255, int(v))) for v in c)


def _jitter(c: tuple[int, int, int], rng: random.Random, amount: int = 18) -> tuple[int, int, int]:
    return tuple(v + rng.randint(-amount, amount) for v in c)  # type: ignore[return-value]


def _video_graph(t: Topic, rng: random.Random, w: int, h: int, fps: int, seconds: float) -> str:
    sx, sy = w / 160, h / 120
    bw, bh = max(2, int(t.box[0] * sx * rng.uniform(0.8, 1.2))), max(2, int(t.box[1] * sy * rng.uniform(0.8, 1.2)))
    x0, y0 = rng.uniform(0.25, 0.6) * w, rng.uniform(0.25, 0.6) * h
    speed = rng.uniform(0.6, 1.4)
    motion = {
        "horizontal": (f"mod({x0:.1f}+{speed * w / 2:.1f}*t\\,{w})", f"{y0:.1f}+{0.08 * h:.1f}*sin(2*PI*t)"),
        "vertical": (f"{x0:.1f}+{0.08 * w:.1f}*sin(PI*t)", f"mod({y0:.1f}+{speed * h / 2:.1f}*t\\,{h})"),
        "circle": (f"{w / 2 - bw / 2:.1f}+{0.25 * w:.1f}*cos({speed * 2:.2f}*PI*t)",
                   f"{h / 2 - bh / 2:.1f}+{0.25 * h:.1f}*sin({speed * 2:.2f}*PI*t)"),
        "still": (f"{w / 2 - bw / 2 + rng.uniform(-0.1, 0.1) * w:.1f}", f"{h / 2 - bh / 2 + rng.uniform(-0.1, 0.1) * h:.1f}"),
    }[t.motion]
    d = f"{seconds:.3f}"
    g = (f"color=c={_hex(_jitter(t.bg, rng))}:s={w}x{h}:r={fps}:d={d}[bg];"
         f"color=c={_hex(_jitter(t.fg, rng))}:s={bw}x{bh}:r={fps}:d={d}[fg];"
         f"[bg][fg]overlay=x='{motion[0]}':y='{motion[1]}':eval=frame:shortest=1")
    if t.motion == "still":  # a second shape, so still topics are not a plain square
        g = (f"color=c={_hex(_jitter(t.bg, rng))}:s={w}x{h}:r={fps}:d={d}[bg];"
             f"color=c={_hex(_jitter(t.fg, rng))}:s={bw}x{bh}:r={fps}:d={d}[fg];"
             f"color=c={_hex(_jitter(t.fg, rng, 30))}:s={max(2, bw // 2)}x{max(2, bh // 2)}:r={fps}:d={d}[fg2];"
             f"[bg][fg]overlay=x='{motion[0]}':y='{motion[1]}':shortest=1[a];"
             f"[a][fg2]overlay=x='{w * rng.uniform(0.1, 0.3):.1f}':y='{h * rng.uniform(0.1, 0.3):.1f}':shortest=1")
    if t.extra == "hue":
        g += f",hue=H='{rng.uniform(1.5, 2.5):.2f}*PI*t'"
    elif t.extra == "grain":
        g += f",noise=alls={rng.randint(18, 30)}:allf=t:all_seed={rng.randint(1, 10 ** 6)}"
    return g + ",format=yuv420p"


def _audio_graph(t: Topic, rng: random.Random, rate: int, seconds: float) -> str:
    kind, _, arg = t.audio.partition(":")
    d = f"{seconds:.3f}"
    vol = rng.uniform(0.3, 0.6)
    if kind == "noise":
        return f"anoisesrc=color={arg}:amplitude={vol:.3f}:sample_rate={rate}:duration={d}:seed={rng.randint(1, 10 ** 6)}"
    f = float(arg) * rng.uniform(0.92, 1.08)
    if kind == "sine":
        expr = f"{vol:.3f}*sin(2*PI*{f:.2f}*t)"
    elif kind == "chord":
        expr = f"{vol / 2:.3f}*(sin(2*PI*{f:.2f}*t)+sin(2*PI*{f * 1.5:.2f}*t))"
    else:  # beeps: the tone on and off four times a second
        expr = f"{vol:.3f}*sin(2*PI*{f:.2f}*t)*gt(sin(2*PI*{rng.uniform(3, 5):.2f}*t)\\,0)"
    return f"aevalsrc=exprs='{expr}':sample_rate={rate}:duration={d}"


def generate_videos(out: Path, *, n: int = 60, seed: int = 0, width: int = 160, height: int = 120,
                    seconds: float = 3.0, fps: int = 25, users: int = 8, silent_every: int = 20,
                    progress=None) -> dict:
    """Render ``n`` clips into ``out`` (``clip-NNNN.mp4`` + posts.jsonl).
    Every ``silent_every``-th clip has no audio track (0: none), to show
    the extraction's fallback."""
    from .ffmpeg import ffmpeg_exe

    if n < len(TOPICS):
        raise V2HTError(f"--n {n}: at least {len(TOPICS)} clips (one per topic)")
    if not (16 <= width <= 4096 and 16 <= height <= 4096) or width % 2 or height % 2:
        raise V2HTError(f"--size {width}x{height}: even sizes between 16 and 4096")
    if not 0.2 <= seconds <= 600:
        raise V2HTError(f"--seconds {seconds}: between 0.2 and 600")
    exe = ffmpeg_exe()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    # topics round-robin, then shuffled: every topic gets n/6 clips, their order seeded
    topic_of = [TOPICS[i % len(TOPICS)] for i in range(n)]
    rng.shuffle(topic_of)
    seen: dict[str, int] = {}
    posts = []
    for i, t in enumerate(topic_of):
        k = seen.get(t.name, 0)
        seen[t.name] = k + 1
        per_topic = sum(1 for x in topic_of if x is t)
        frac = k / per_topic
        split = "train" if frac < 0.6 else ("valid" if frac < 0.8 else "test")
        tags = [t.tags[0], rng.choice(t.tags[1:])]
        words = rng.sample(t.words, 3) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        user = f"u{rng.randrange(users)}" if rng.random() < 0.5 else f"u{TOPICS.index(t) % users}"
        name = f"clip-{i:04d}.mp4"
        silent = silent_every > 0 and i % silent_every == silent_every - 1
        clip_rng = random.Random(f"{seed}-{i}")
        cmd = [exe, "-hide_banner", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
               "-i", _video_graph(t, clip_rng, width, height, fps, seconds)]
        if not silent:
            cmd += ["-f", "lavfi", "-i", _audio_graph(t, clip_rng, 22050, seconds)]
        cmd += ["-map", "0:v"] + ([] if silent else ["-map", "1:a", "-c:a", "aac", "-b:a", "48k"])
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-g", str(fps), "-threads", "1",
                "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
                "-map_metadata", "-1", "-t", f"{seconds:.3f}", "-movflags", "+faststart"]
        tmp = out / f".{name}.tmp-{os.getpid()}.mp4"
        p = subprocess.run(cmd + [str(tmp)], capture_output=True, text=True)
        if p.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise ToolError(f"ffmpeg could not render {name}: {p.stderr.strip().splitlines()[-1:]}")
        os.replace(tmp, out / name)
        posts.append({"id": f"v{i:04d}", "user": user, "hashtags": tags, "description": " ".join(words),
                      "file": name, "split": split, "topic": t.name, "audio": not silent})
        if progress:
            progress("render", i + 1, n)
    tmp = out / "posts.jsonl.tmp"
    tmp.write_text("".join(json.dumps(p) + "\n" for p in posts), encoding="utf-8")
    os.replace(tmp, out / "posts.jsonl")
    return {"out": str(out), "clips": n, "topics": [t.name for t in TOPICS], "seed": seed,
            "size": f"{width}x{height}", "seconds": seconds, "silent": sum(not p["audio"] for p in posts)}
