"""`features extract`: a folder of videos → the project's raw folder
(posts.jsonl, features/visual.npy, features/acoustic.npy and their ids),
ready for ``v2ht-kg build RAW_DIR --format jsonl``.

Per video (paper §4.1): ``frames`` frames at uniform times through the CNN
(one vector each), ``clips`` audio clips of ``clip_seconds`` at uniform
positions (librosa's log-mel, computed with numpy: one vector each), the description cut
to ``words`` English lemmas. A video without an audio track gets the
``zeros`` fallback (all-zero clips, which training reads as "no signal"),
named in the manifest with the list of such posts.

Resumable: each video's features go to ``features/parts/<key>.npz``
(written under a temporary name, then renamed), keyed by the settings and
the video file's size and mtime; a rerun skips the videos already done.
The final arrays are assembled from the parts, each file atomically.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import DataError, V2HTError, VideoError
from ..fsio import named
from ..records import UNKNOWN_USER, Post
from ..rawdata import json_objects
from .audio import AudioSettings, clip_features, no_audio
from .cnn import FEATURE_DIM, MODEL_NAME, FrameEncoder

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".mkv")
MANIFEST = "extraction.json"
NO_AUDIO_FALLBACK = "zeros"
EXTRACTION_FORMAT = 1
_PREFETCH = 3  # videos decoded ahead of the CNN (a few MB each)


@dataclass(frozen=True)
class ExtractSettings:
    frames: int = 40  # paper: 40 frames per video, uniform
    frame_size: int = 224  # short side, then a centre square crop (never upscaled)
    clips: int = 60  # paper: 60 clips per video, uniform
    clip_seconds: float = 0.2  # paper: 0.2 s clips
    sample_rate: int = 22050
    n_mels: int = 128  # paper: 128-dimensional acoustic vectors
    words: int = 6  # paper: at most 6 description words
    cnn: str = MODEL_NAME

    def __post_init__(self):
        for name in ("frames", "frame_size", "clips", "sample_rate", "n_mels"):
            if int(getattr(self, name)) < 1:
                raise V2HTError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be a positive integer")
        if not 0 < self.clip_seconds <= 60:
            raise V2HTError(f"--clip-seconds {self.clip_seconds}: must lie in (0, 60]")
        if self.words < 0:
            raise V2HTError(f"--words {self.words}: must not be negative")
        if self.cnn != MODEL_NAME:
            raise V2HTError(f"--cnn {self.cnn!r}: only {MODEL_NAME} is available")
        if self.frame_size < 2:
            raise V2HTError(f"--frame-size {self.frame_size}: must be at least 2")

    @property
    def audio(self) -> AudioSettings:
        return AudioSettings(clips=self.clips, clip_seconds=self.clip_seconds, sample_rate=self.sample_rate,
                             n_mels=self.n_mels)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> "ExtractSettings":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)

    def key(self) -> str:
        """Settings that change the arrays (the words do not)."""
        d = self.to_json()
        d.pop("words")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class VideoPost:
    id: str
    file: Path
    user: str = UNKNOWN_USER
    hashtags: list[str] = field(default_factory=list)
    description: str = ""
    time: str | int | float | None = None
    split: str | None = None


@dataclass
class VideoFeatures:
    visual: np.ndarray  # (frames, 1280) float32
    acoustic: np.ndarray  # (clips, n_mels) float32
    has_audio: bool
    seconds: dict[str, float]  # per stage: decode, cnn, audio


# ----------------------------------------------------------------------------- input listing
def _video_files(video_dir: Path) -> list[Path]:
    return sorted(p for p in video_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)


def _tags(value, path: Path, line: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [t for t in re.split(r"[\s,]+", value) if t]
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        return [t for t in value if t.strip()]
    raise DataError("'hashtags' must be a list of strings or a string", str(path), line)


def _post_from(d: dict, video_dir: Path, path: Path, line: int) -> VideoPost:
    pid = d.get("id")
    file = d.get("file")
    if file is not None and not isinstance(file, str):
        raise DataError("'file' must be a string", str(path), line)
    if pid is None or (isinstance(pid, str) and not pid.strip()):
        if not file:
            raise DataError("each post needs an 'id' or a 'file'", str(path), line)
        pid = Path(file).stem
    if isinstance(pid, bool) or not isinstance(pid, (str, int)):
        raise DataError("'id' must be a string or an integer", str(path), line)
    pid = str(pid).strip()
    if not file:
        hits = [video_dir / f"{pid}{e}" for e in VIDEO_EXTENSIONS if (video_dir / f"{pid}{e}").is_file()]
        file = hits[0].name if hits else f"{pid}.mp4"
    split = d.get("split") or None
    if split is not None and split not in ("train", "valid", "test"):
        raise DataError(f"split must be train, valid or test, not {split!r}", str(path), line)
    desc = d.get("description", d.get("text")) or ""
    if not isinstance(desc, str):
        raise DataError("'description' must be a string", str(path), line)
    user = d.get("user")
    return VideoPost(id=pid, file=(video_dir / file), user=str(user).strip() if user not in (None, "") else UNKNOWN_USER,
                     hashtags=_tags(d.get("hashtags"), path, line), description=desc,
                     time=d.get("time") or None, split=split)


def list_posts(video_dir: Path) -> list[VideoPost]:
    """The posts of a video folder: from its posts.jsonl or posts.csv (id,
    user, hashtags, description, file; file relative to the folder), else
    one post per video file (id = file name without extension, no tags)."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise DataError("no such video folder", str(video_dir))
    found = [video_dir / n for n in ("posts.jsonl", "posts.csv") if (video_dir / n).is_file()]
    if len(found) > 1:
        raise DataError("both posts.jsonl and posts.csv here; keep one", str(video_dir))
    posts: list[VideoPost] = []
    if not found:
        posts = [VideoPost(id=p.stem, file=p) for p in _video_files(video_dir)]
    elif found[0].suffix == ".jsonl":
        path = found[0]
        for i, d in json_objects(path):
            posts.append(_post_from(d, video_dir, path, i))
    else:
        path = found[0]
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise DataError("not UTF-8", str(path)) from None
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not ({"id", "file"} & set(reader.fieldnames)):
            raise DataError("header needs an id or a file column (id,user,hashtags,description,file)", str(path), 1)
        for row in reader:
            posts.append(_post_from({k: v for k, v in row.items() if k is not None}, video_dir, path,
                                    reader.line_num))
    seen: dict[str, Path] = {}
    for p in posts:
        if p.id in seen:
            raise DataError(f"two videos have the post id {p.id!r} ({seen[p.id].name}, {p.file.name})", str(video_dir))
        seen[p.id] = p.file
    if not posts:
        raise DataError(f"no videos here ({', '.join(VIDEO_EXTENSIONS)}) and no posts file", str(video_dir))
    return posts


# ----------------------------------------------------------------------------- one video
def decode_video(path: Path, s: ExtractSettings) -> tuple[np.ndarray, np.ndarray | None, bool, dict[str, float]]:
    """(frames uint8, audio features or None, has_audio, seconds per stage):
    everything but the CNN, so it can run ahead of it in another thread."""
    from .ffmpeg import decode_audio, decode_frames, probe

    t0 = time.perf_counter()
    info = probe(path)
    frames = decode_frames(path, info, s.frames, s.frame_size)
    t1 = time.perf_counter()
    acoustic = None
    if info.has_audio:
        signal = decode_audio(path, s.sample_rate)
        acoustic = clip_features(signal, s.audio) if len(signal) else None
    t2 = time.perf_counter()
    return frames, acoustic, acoustic is not None, {"decode": t1 - t0, "audio": t2 - t1}


def finish_video(decoded, s: ExtractSettings, encoder: FrameEncoder) -> VideoFeatures:
    frames, acoustic, has_audio, secs = decoded
    t0 = time.perf_counter()
    visual = encoder.encode(frames)
    secs = dict(secs, cnn=time.perf_counter() - t0)
    return VideoFeatures(visual=visual, acoustic=acoustic if has_audio else no_audio(s.audio), has_audio=has_audio,
                         seconds=secs)


def extract_video(path: Path, s: ExtractSettings, encoder: FrameEncoder) -> VideoFeatures:
    return finish_video(decode_video(Path(path), s), s, encoder)


# ----------------------------------------------------------------------------- parts (resume)
def _part_path(parts: Path, pid: str) -> Path:
    return parts / (hashlib.sha1(pid.encode("utf-8")).hexdigest()[:20] + ".npz")


def _source_stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _save_part(path: Path, pid: str, stamp: str, key: str, f: VideoFeatures) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    try:
        with named(path), open(tmp, "wb") as fh:
            np.savez(fh, visual=f.visual.astype(np.float16), acoustic=f.acoustic.astype(np.float16),
                     has_audio=np.array(f.has_audio), id=np.array(pid), stamp=np.array(stamp), key=np.array(key))
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def _load_part(path: Path, pid: str, stamp: str, key: str) -> dict | None:
    """The part when it is this video's under these settings, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["id"]) != pid or str(z["stamp"]) != stamp or str(z["key"]) != key:
                return None
            return {"visual": z["visual"], "acoustic": z["acoustic"], "has_audio": bool(z["has_audio"])}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # an unreadable part is recomputed


# ----------------------------------------------------------------------------- the folder
@dataclass
class ExtractReport:
    videos: int = 0
    extracted: int = 0
    reused: int = 0
    failed: list[dict] = field(default_factory=list)  # {"file", "id", "error"}
    no_audio: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=lambda: {"decode": 0.0, "cnn": 0.0, "audio": 0.0})
    wall_seconds: float = 0.0
    out: str = ""


def _librosa_version() -> str:
    """The installed librosa, whose log-mel audio.py reproduces (and the tests
    compare it with); read from its metadata, not imported (seconds of numba)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("librosa")
    except PackageNotFoundError:
        return "not installed"


def tool_versions() -> dict:
    import numpy
    import torch

    from .ffmpeg import ffmpeg_exe, ffmpeg_version

    return {"ffmpeg": ffmpeg_version(), "ffmpeg_path": ffmpeg_exe(), "librosa": _librosa_version(),
            "numpy": numpy.__version__, "torch": torch.__version__}


def _warm_text() -> None:
    """Load the text normaliser (spaCy, the word list: seconds) while the
    first videos go through, instead of after the last one."""
    from .text import description_words

    description_words("warm up")


def extract_folder(video_dir: Path, out_dir: Path, settings: ExtractSettings, encoder: FrameEncoder, *,
                   progress: Callable[[str, int, int], None] | None = None,
                   on_error: Callable[[str], None] | None = None) -> ExtractReport:
    """Extract every video of ``video_dir`` into the raw folder ``out_dir``.

    A video that fails (VideoError) is reported through ``on_error`` (one
    line naming the file) and left out; the others go on. Raises DataError
    when no video at all could be extracted."""
    video_dir, out_dir = Path(video_dir).resolve(), Path(out_dir).resolve()
    if out_dir == video_dir:
        raise DataError("--out must be another folder than the videos' (it gets its own posts.jsonl)", str(out_dir))
    posts = list_posts(video_dir)
    prog = progress or (lambda *a: None)
    err = on_error or (lambda m: None)
    parts = out_dir / "features" / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    key = settings.key()
    rep = ExtractReport(videos=len(posts), out=str(out_dir))
    t_start = time.perf_counter()
    done: dict[str, dict] = {}
    todo: list[tuple[VideoPost, str]] = []
    for p in posts:
        try:
            if not p.file.is_file():
                raise VideoError("no such video file", str(p.file))
            stamp = _source_stamp(p.file)
        except VideoError as e:
            rep.failed.append({"id": p.id, "file": str(p.file), "error": str(e)})
            err(str(e))
            continue
        hit = _load_part(_part_path(parts, p.id), p.id, stamp, key)
        if hit is not None:
            done[p.id] = hit
            rep.reused += 1
        else:
            todo.append((p, stamp))
    prog("videos", len(done), len(posts) - len(rep.failed))

    def submit(pool, item) -> Future:
        return pool.submit(decode_video, item[0].file, settings)

    # Decoding (ffmpeg processes, the audio clips) runs one thread ahead of the
    # CNN, which keeps the main thread: the two overlap on two cores. The
    # text normaliser loads meanwhile in a third.
    text_pool = ThreadPoolExecutor(max_workers=1)
    text_ready = text_pool.submit(_warm_text) if settings.words > 0 and any(p.description for p in posts) else None
    text_pool.shutdown(wait=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        queue: list[tuple[tuple[VideoPost, str], Future]] = []
        it = iter(todo)
        for item in it:
            queue.append((item, submit(pool, item)))
            if len(queue) >= _PREFETCH:
                break
        while queue:
            (p, stamp), fut = queue.pop(0)
            nxt = next(it, None)
            if nxt is not None:
                queue.append((nxt, submit(pool, nxt)))
            try:
                feats = finish_video(fut.result(), settings, encoder)
            except VideoError as e:
                rep.failed.append({"id": p.id, "file": str(p.file), "error": str(e)})
                err(str(e))
                continue
            _save_part(_part_path(parts, p.id), p.id, stamp, key, feats)
            for k, v in feats.seconds.items():
                rep.seconds[k] += v
            done[p.id] = {"visual": feats.visual, "acoustic": feats.acoustic, "has_audio": feats.has_audio}
            rep.extracted += 1
            prog("videos", len(done), len(posts) - len(rep.failed))
    ok = [p for p in posts if p.id in done]
    if not ok:
        raise DataError(f"no video could be extracted ({len(rep.failed)} failed)", str(video_dir))
    rep.no_audio = [p.id for p in ok if not done[p.id]["has_audio"]]
    if text_ready is not None:
        text_ready.result()  # its errors, if any, come out here as they would have below
    _write_outputs(out_dir, ok, done, settings, encoder, rep)
    rep.wall_seconds = time.perf_counter() - t_start
    return rep


def _write_outputs(out_dir: Path, ok: Sequence[VideoPost], done: dict, s: ExtractSettings, encoder: FrameEncoder,
                   rep: ExtractReport) -> None:
    from ..rawdata import FeatureWriter, feature_paths, write_ids, write_raw

    ids = [p.id for p in ok]
    shapes = {"visual": (s.frames, FEATURE_DIM), "acoustic": (s.clips, s.n_mels)}
    for m, (steps, dim) in shapes.items():
        npy, ids_path = feature_paths(out_dir, m)
        with FeatureWriter(npy, len(ok), steps, dim, dtype=np.float16) as w:
            for pid in ids:
                w.write(np.asarray(done[pid][m], dtype=np.float16)[None])
        write_ids(ids_path, ids)
    from .text import description_words

    posts = [Post(id=p.id, user=p.user, hashtags=p.hashtags, text=" ".join(description_words(p.description, s.words)),
                  time=p.time, split=p.split) for p in ok]
    write_raw(out_dir, posts)
    manifest = {
        "format": EXTRACTION_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": s.to_json(),
        "cnn": {"name": s.cnn, "weights": Path(encoder.weights).name, "weights_sha256": encoder.weights_sha256,
                "feature": "last convolution, global average pooled", "dim": FEATURE_DIM,
                "preprocessing": "RGB, short side scaled to frame_size (never up), centre square crop, ImageNet mean/std"},
        "audio": {"feature": "log-mel power in bels (librosa power_to_db / 10), averaged over each clip",
                  "n_fft": 2048, "hop_length": 512,
                  "implementation": "numpy reproduction of librosa.feature.melspectrogram (tested equal to 1e-4 bels)"},
        "text": f"at most {s.words} lemmatised English words of the description, stop words dropped",
        "tools": tool_versions(),
        "no_audio_fallback": NO_AUDIO_FALLBACK,
        "no_audio_posts": rep.no_audio,
        "videos": rep.videos,
        "posts": len(ok),
        "failed": rep.failed,
    }
    tmp = out_dir / "features" / (MANIFEST + ".tmp")
    with named(out_dir / "features" / MANIFEST):
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out_dir / "features" / MANIFEST)


def read_manifest(raw_dir: Path) -> dict | None:
    """The extraction manifest of a raw folder, None when it has none."""
    path = Path(raw_dir) / "features" / MANIFEST
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError("corrupt extraction manifest", str(path)) from None
    if not isinstance(d, dict) or "settings" not in d:
        raise DataError("extraction manifest without settings", str(path))
    return d


# ----------------------------------------------------------------------------- one new video
def query_features(video: Path, manifest: dict, *, device: str = "cpu", weights: Path | None = None
                   ) -> tuple[dict[str, np.ndarray], dict]:
    """Features of one new video with the settings and CNN of a data set's
    extraction manifest: ({"visual", "acoustic"}, {"has_audio", "settings"})."""
    from .cnn import load_encoder

    s = ExtractSettings.from_json(manifest["settings"])
    enc = load_encoder(weights, device=device)
    want = (manifest.get("cnn") or {}).get("weights_sha256")
    if want and want != enc.weights_sha256:
        raise V2HTError(f"the data set's features came from other CNN weights (sha256 {want[:16]}...) "
                        f"than {enc.weights} ({enc.weights_sha256[:16]}...)")
    f = extract_video(Path(video), s, enc)
    return {"visual": f.visual, "acoustic": f.acoustic}, {"has_audio": f.has_audio, "settings": s.to_json(),
                                                          "seconds": f.seconds}
