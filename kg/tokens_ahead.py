"""A new post's tokens made in a forked child while the parent loads the run.

A one-shot ``recommend --text`` spends about a second importing spaCy and
its lemma table for one short text, and as long again importing torch and
loading the run: work on two cores that need not wait for each other. The
child forks before torch is imported (no threads of the interpreter's own
yet), normalises the text exactly as ``Normalizer().tokens`` does, writes
the tokens as JSON to a pipe and leaves with ``os._exit`` (no teardown, no
flushing of the parent's buffers). Where fork is missing, or the child
fails, the tokens are made in the parent: the same tokens, and any error is
raised there as it would be without the child.
"""
from __future__ import annotations

import json
import os
from typing import Callable


def _inline(text: str) -> list[str]:
    from .normalize import Normalizer

    return Normalizer().tokens(text)


def tokens_ahead(text: str) -> Callable[[], list[str]]:
    """Start normalising ``text``; the returned call gives its tokens."""
    if not hasattr(os, "fork"):
        return lambda: _inline(text)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 1
        try:
            os.close(r)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)  # the parent's --json owns stdout
            os.dup2(null, 2)  # and its errors are the parent's to report
            with os.fdopen(w, "wb") as f:  # write() retries partial writes to the pipe
                f.write(json.dumps(_inline(text)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(w)

    def result() -> list[str]:
        with os.fdopen(r, "rb") as f:
            data = f.read()  # to EOF: the child has written and closed its end
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            return json.loads(data)
        return _inline(text)

    return result
