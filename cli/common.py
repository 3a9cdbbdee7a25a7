"""What every command shares: the console, the work directory option,
``--param k=v`` parsing, JSON output, progress bars, and turning
V2HTError into one line on stderr with exit code 2."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..kg.errors import V2HTError
from ..kg.workdir import Workdir

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
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


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


def fail(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
