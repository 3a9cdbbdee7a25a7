"""The stages the CLI chains: source → prepared data set → relations →
graph store → PyG snapshot. Each stage is a function of its inputs; the CLI
only renders."""
from __future__ import annotations

from pathlib import Path

from .dataset import PreparedDataset
from .errors import DataError
from .prepare import PrepareParams, Progress, prepare
from .readers import read_posts
from .workdir import Workdir


def synthetic_source(wd: Workdir, preset: str, seed: int, progress: Progress | None = None) -> Path:
    """Generate (once per preset and seed) the synthetic raw folder in the work dir."""
    from . import synthetic

    out = wd.raw_synthetic / f"{preset}-seed{seed}"
    if not (out / "posts.jsonl").is_file():
        synthetic.generate_preset(out, preset=preset, seed=seed)
    return out


def prepare_source(
    source: Path | None,
    fmt: str,
    wd: Workdir,
    params: PrepareParams,
    skip_bad: bool = False,
    preset: str = "small",
    progress: Progress | None = None,
) -> tuple[PreparedDataset, dict]:
    """Read a source and write ``wd.data``. Returns the data set and a report
    (bad lines skipped, source description)."""
    wd.ensure()
    if fmt == "synthetic" and source is None:
        source = synthetic_source(wd, preset, params.seed, progress)
    if source is None:
        raise DataError("give a data folder (or --format synthetic to generate one)")
    source = Path(source)
    if not source.exists():
        raise DataError("data folder does not exist", str(source))
    posts, bad = read_posts(source, fmt, skip_bad=skip_bad)
    posts = list(posts)
    features = None
    if fmt in ("jsonl", "csv", "synthetic"):
        from .rawdata import raw_features

        features = {m: (arr, ids) for m, (arr, ids) in raw_features(source).items()} or None
    report = {"format": fmt, "path": str(source), "bad_lines_skipped": bad.count, "bad_line_examples": bad.examples}
    ds = prepare(posts, wd.data, params, source=report, features=features, progress=progress)
    return ds, report
