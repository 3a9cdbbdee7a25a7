"""The `v2ht-kg` command line."""
from __future__ import annotations

import os
import sys

# OpenMP threads that spin briefly at a barrier, then sleep (cli/openmp.py):
# set before torch loads its OpenMP runtime; a user's own setting wins.
from . import openmp

openmp.apply()

import typer

from ..kg.errors import V2HTError
from . import data_cmd, explain_cmd, features_cmd, graph_cmd, runtime, train_cmd
from .common import err_console

app = typer.Typer(
    name="v2ht-kg",
    help="Long-tail hashtag recommendation (V2HT, CIKM'19) over a typed hashtag knowledge graph.\n\n"
    "Typical flow: `v2ht-kg build SOURCE --format F` (prepare data, build the cp/ss/po/co graph in the store), "
    "`v2ht-kg train`, `v2ht-kg recommend RUN --post ID --explain`, and `v2ht-kg cypher` / `v2ht-kg query` to explore.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_cmd.app, name="data")
app.add_typer(features_cmd.app, name="features")
app.command()(graph_cmd.build)
app.command()(graph_cmd.cypher)
app.command()(graph_cmd.query)
app.command()(graph_cmd.export)
app.add_typer(graph_cmd.store_app, name="store")
app.command()(train_cmd.train)
app.command()(train_cmd.evaluate)
app.command()(train_cmd.recommend)
app.command()(train_cmd.results)
app.command()(explain_cmd.explain)


def _die(message: str) -> None:
    from rich.markup import escape

    # escape: a message is text, not markup ("[store] uri" must stay visible)
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


def main() -> None:
    import logging

    # The driver logs each retried transient error (it retries them itself):
    # noise on a CLI whose output users read.
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    # Store files, data sets, runs and graph snapshots are private to the user
    # (folders 0700, files 0600), like the password file: the in-process JVM
    # inherits the mask too.
    os.umask(os.umask(0o077) | 0o077)
    # large tensors reuse freed pages; the garbage collector runs far less
    # often (imports and data loading make millions of objects, no garbage)
    runtime.apply()
    # Standalone mode: click prints usage errors itself (exit 2); everything
    # else propagates here, so user errors become one line instead of a trace.
    try:
        try:
            app()
        except SystemExit as e:
            from . import common

            if e.code in (0, None) and common.FAST_EXIT:
                # nothing left to write and no JVM to stop: skip the
                # interpreter's teardown of torch and friends (about 0.8 s)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
            raise
    except V2HTError as e:
        _die(str(e))
    except OSError as e:  # unreadable files, full disks: the user's to fix, not a bug
        _die(f"{e.filename or ''}: {e.strerror or e}")
    except KeyboardInterrupt:
        _die("interrupted")


if __name__ == "__main__":
    main()
