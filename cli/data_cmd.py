"""`v2ht-kg data ...`: generate, prepare and describe data sets."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..kg.dataset import PreparedDataset
from ..kg.prepare import default_params
from ..kg.readers import FORMATS, guess_format, read_posts
from ..kg.stats import plot_frequency, prepared_stats, raw_stats
from .common import JsonOpt, WorkdirOpt, check_options, console, print_json, progress_bar, readable, workdir

app = typer.Typer(help="Generate, prepare and describe data sets.", no_args_is_help=True)

FormatOpt = typer.Option(None, "--format", "-f", help=f"Source format: {', '.join(FORMATS)} (default: guessed from the folder).")


# The preparation options shared by `data prepare` and `build`.
MinTagCountOpt = typer.Option(None, help="Drop hashtags used fewer times (all splits) (default: per data set).")
MinUserPostsOpt = typer.Option(None, help="Drop users with fewer posts (default: per data set).")
SplitOpt = typer.Option(None, help="auto | given (the source's own) | time (chronological 80/10/10) | random (seeded 80/10/10).")
LongtailOpt = typer.Option(None, help="A hashtag used fewer times than this is long-tail (paper: 100).")
MaxPostsOpt = typer.Option(None, help="Keep only the first N posts (quick runs).")
SeedOpt = typer.Option(42, help="Seed for the random split and the synthetic generator.")


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (posts.jsonl + features/)."),
    preset: str = typer.Option("small", help="tiny | small | insvideo (214k posts, 15.7k tags)."),
    seed: int = typer.Option(42, help="Same seed, same bytes."),
    json_out: bool = JsonOpt,
):
    """Write a synthetic micro-video data set in the raw folder format (read it back with --format synthetic)."""
    from ..kg import synthetic

    check_options(seed=seed)
    info = synthetic.generate_preset(preset, out, seed=seed)
    if json_out:
        print_json(info)
    else:
        console.print(f"wrote synthetic data set [bold]{preset}[/] (seed {seed}) to {out}")


@app.command("generate-videos")
def generate_videos(
    out: Path = typer.Argument(..., help="Folder to write (clip-NNNN.mp4 + posts.jsonl), for `v2ht-kg features extract`."),
    n: int = typer.Option(60, "--n", help="Clips (spread evenly over the 6 topics)."),
    seed: int = typer.Option(0, help="Same seed, same posts and clips."),
    size: str = typer.Option("160x120", help="WIDTHxHEIGHT in pixels (even)."),
    seconds: float = typer.Option(3.0, help="Length of each clip."),
    json_out: bool = JsonOpt,
):
    """Render the demo micro-video set: 6 hashtag topics that differ in picture and sound, with posts.jsonl."""
    from ..kg.errors import V2HTError
    from ..kg.video.demo import generate_videos as render

    check_options(seed=seed)
    try:
        w, h = (int(x) for x in size.lower().split("x"))
    except ValueError:
        raise V2HTError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 160x120") from None
    with progress_bar(not json_out) as prog:
        info = render(out, n=n, seed=seed, width=w, height=h, seconds=seconds, progress=prog)
    if json_out:
        print_json(info)
    else:
        console.print(f"wrote {info['clips']} demo clips ({info['size']}, {info['seconds']} s, "
                      f"{info['silent']} without audio) and posts.jsonl to {out}")


@app.command()
def prepare(
    source: Optional[Path] = typer.Argument(None, help="Data folder (not needed for --format synthetic)."),
    fmt: Optional[str] = FormatOpt,
    wd: Optional[Path] = WorkdirOpt,
    preset: str = typer.Option("small", help="Synthetic preset when no source is given."),
    min_tag_count: Optional[int] = MinTagCountOpt,
    min_user_posts: Optional[int] = MinUserPostsOpt,
    split: Optional[str] = SplitOpt,
    longtail_threshold: Optional[int] = LongtailOpt,
    max_posts: Optional[int] = MaxPostsOpt,
    seed: int = SeedOpt,
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed lines (counted) instead of stopping at the first."),
    json_out: bool = JsonOpt,
):
    """Normalise, filter and split a source into the work directory's prepared data set."""
    from ..kg.pipeline import prepare_source

    check_options(min_tag_count=min_tag_count, min_user_posts=min_user_posts, longtail_threshold=longtail_threshold,
                  max_posts=max_posts, seed=seed)
    fmt = fmt or ("synthetic" if source is None else guess_format(source))
    params = default_params(fmt, min_tag_count=min_tag_count, min_user_posts=min_user_posts, split=split,
                            longtail_threshold=longtail_threshold, max_posts=max_posts, seed=seed)
    w = workdir(wd)
    with w.exclusive("data prepare"), progress_bar(not json_out) as prog:
        ds, report = prepare_source(source, fmt, w, params, skip_bad=skip_bad, preset=preset, progress=prog)
    stats, counts = prepared_stats(ds)
    stats["bad_lines_skipped"] = report["bad_lines_skipped"]
    if json_out:
        print_json(stats)
    else:
        _render_stats("prepared data set", stats)


def _render_stats(title: str, stats: dict) -> None:
    t = Table(title=title, show_header=False)
    for k, v in stats.items():
        t.add_row(k.replace("_", " "), readable(v))
    console.print(t)


@app.command()
def stats(
    source: Optional[Path] = typer.Argument(None, help="Raw data folder; without it, the work directory's prepared data set."),
    fmt: Optional[str] = FormatOpt,
    wd: Optional[Path] = WorkdirOpt,
    longtail_threshold: Optional[int] = typer.Option(None, help="Long-tail threshold for raw data (default: per data set)."),
    png: Optional[Path] = typer.Option(None, "--png", help="Write the hashtag frequency plot (paper Fig. 4) here (default: <workdir>/reports/hashtag-frequency.png)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed lines (counted)."),
    json_out: bool = JsonOpt,
):
    """Posts, users, hashtags, tags per post, long-tail share, and the frequency plot.

    With a SOURCE the figures are those of the raw input, before normalisation
    and filters (e.g. 33,881 posts and 2,571 users for twitter-hashtags-2013).
    """
    w = workdir(wd)
    if source is not None:
        fmt = fmt or guess_format(source)
        thr = longtail_threshold or default_params(fmt).longtail_threshold
        posts, bad = read_posts(source, fmt, skip_bad=skip_bad)
        figures, counts = raw_stats(posts, thr)
        figures = {"source": str(source), "format": fmt, **figures, "bad_lines_skipped": bad.count}
        title = f"{source.name} (raw)"
    else:
        ds = PreparedDataset(w.data)
        figures, counts = prepared_stats(ds)
        thr = figures["longtail_threshold"]
        title = f"{ds.manifest['source'].get('format', '')} (prepared)"
    out_png = png or (w.reports / "hashtag-frequency.png")
    plot_frequency(counts, out_png, title=f"Hashtag frequency — {title}", longtail_threshold=thr)
    figures["frequency_png"] = str(out_png)
    if json_out:
        print_json(figures)
    else:
        _render_stats(title, figures)
