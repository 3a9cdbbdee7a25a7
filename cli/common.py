"""What every command shares: the console, the work directory option,
``--param k=v`` parsing, JSON output, progress bars, and turning
V2HTError into one line on stderr with exit code 2."""
from __future__ import annotations

import json
import math
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..kg.errors import V2HTError
from ..kg.workdir import Workdir

import time as _time

_LOADED = _time.perf_counter()
# A command that has written everything and started no JVM sets this: main()
# then ends the process without the interpreter's teardown.
FAST_EXIT = False
console = Console()
err_console = Console(stderr=True)

WorkdirOpt = typer.Option(None, "--workdir", "-w", envvar="V2HT_WORKDIR",
                          help="Work directory holding the data set, graph snapshot, embedded store and runs (default: ./v2ht-work).")
StoreOpt = typer.Option(None, "--store", envvar="V2HT_STORE",
                        help="Graph database URI (bolt://host:7687 or neo4j://...). Without it an embedded ArcadeDB server is started on loopback. Credentials: NEO4J_USER / NEO4J_PASSWORD.")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON on stdout instead of tables.")


def workdir(value: Optional[Path]) -> Workdir:
    return Workdir.resolve(value)


def parse_params(items: list[str] | None, declared: dict | None = None) -> dict:
    """``k=v`` pairs. A value is JSON when it parses as JSON (numbers, lists,
    booleans), else a string; when a query declares a string sample for the
    key, the raw text is kept (so --param tag=2013 stays "2013")."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise V2HTError(f"--param {item!r}: expected key=value")
        k, v = item.split("=", 1)
        k = k.strip()
        if declared and isinstance(declared.get(k), str):
            out[k] = v
            continue
        try:
            value = json.loads(v)
            finite = _finite(value)
        except json.JSONDecodeError:
            out[k] = v
            continue
        except RecursionError:
            raise V2HTError(f"--param {k}: JSON value nested too deeply") from None
        if not finite:
            raise V2HTError(f"--param {k}={v}: NaN and infinities are not parameter values")
        out[k] = value
    return out


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(x) for x in value)
    if isinstance(value, dict):
        return all(_finite(x) for x in value.values())
    return True


# Numeric options by rule: what a value must be (checked before any work).
_POSITIVE_INT = ("epochs", "batch_size", "d_hashtag", "patience", "valid_posts", "threads", "k", "max_posts",
                 "co_min_count", "candidates", "propagate_every",
                 "co_max_neighbours")
_NON_NEGATIVE_INT = ("min_tag_count", "min_user_posts", "longtail_threshold", "ss_max_depth")
_POSITIVE_FLOAT = ("lr",)
_UNIT_FLOAT = ("wup_threshold",)
_NON_NEGATIVE_FLOAT = ("tail_boost",)
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_options(**values: Any) -> None:
    """One-line errors for numeric options out of range, before any work:
    counts and sizes are positive integers, seeds 0..2**32-1, the learning
    rate a finite number above zero, thresholds in [0, 1], --device cpu,
    cuda or cuda:N. None (option not given) passes."""
    for name, v in values.items():
        if v is None:
            continue
        flag = _flag(name)
        if name in _POSITIVE_INT and v < 1:
            raise V2HTError(f"{flag} {v}: must be a positive integer")
        if name in _NON_NEGATIVE_INT and v < 0:
            raise V2HTError(f"{flag} {v}: must not be negative")
        if name == "seed" and not 0 <= v < 2**32:
            raise V2HTError(f"{flag} {v}: must be between 0 and {2**32 - 1}")
        if name in _POSITIVE_FLOAT and not (math.isfinite(v) and v > 0):
            raise V2HTError(f"{flag} {v}: must be a finite number above zero")
        if name in _NON_NEGATIVE_FLOAT and not (math.isfinite(v) and v >= 0):
            raise V2HTError(f"{flag} {v}: must be a finite number, 0 or more")
        if name in _UNIT_FLOAT and not (math.isfinite(v) and 0 <= v <= 1):
            raise V2HTError(f"{flag} {v}: must be between 0 and 1")
        if name == "device" and not _DEVICE.fullmatch(str(v)):
            raise V2HTError(f"--device {v!r}: choose cpu, cuda or cuda:N")


def process_seconds() -> float:
    """Seconds since this process started (interpreter start-up and imports
    included), from /proc; where /proc is absent, since this module loaded."""
    import os
    import time

    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _LOADED


def readable(value: Any) -> str:
    """A value for a table cell or a line of text: dicts as "key value, ...",
    lists as "a, b", floats to 4 significant digits (--json keeps them whole)."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator:
    """A callback (stage, done, total) drawing one rich bar per stage, on
    stderr so that --json output on stdout stays clean."""
    if not enabled:
        yield lambda *a: None
        return
    prog = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, transient=False)
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = prog.add_task(stage, total=max(total, 1))
        prog.update(tasks[stage], completed=done, total=max(total, 1))

    with prog:
        yield update


def category_path(category: str | None, post: str | None) -> list[str]:
    """--category 'food > noodles' as a path; one-line errors for a data-set
    post (it has its own) and for a path that names nothing."""
    from ..kg.records import parse_category_path

    if category is None:
        return []
    if post is not None:
        raise V2HTError("--category describes a new post: --post reads the post's own categories")
    path = parse_category_path(category)
    if not path:
        raise V2HTError(f"--category {category!r}: name at least one category, as 'food > noodles'")
    return path


def fail(message: str) -> None:
    from rich.markup import escape

    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
