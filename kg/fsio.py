"""Write errors that name their file.

A full disk fails ``write()`` with ENOSPC and no file name, and torch's
stream writer turns it into a bare RuntimeError; the user then reads
"No space left on device" without knowing where. Every writer of the
project wraps its file in ``named(path)``. A memory-mapped output is
reserved in full first (``reserve``): writing into a sparse page the disk
cannot back raises SIGBUS, which kills the process (and the JVM beside it)
instead of raising.
"""
from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def disk_free(path) -> int | None:
    """Free bytes on the file system holding ``path`` (None if unknown)."""
    try:
        return shutil.disk_usage(Path(path)).free
    except OSError:
        return None


def _disk_full(path: Path) -> bool:
    free = disk_free(Path(path).parent)
    return free is not None and free < (1 << 20)


@contextmanager
def named(path) -> Iterator[None]:
    """OSErrors (and torch's write failures) raised inside carry ``path``."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
        raise
    except RuntimeError as e:
        text = str(e)
        if "write failed" in text or "failed writing" in text or "unexpected pos" in text:
            code = errno.ENOSPC if _disk_full(Path(path)) else errno.EIO
            raise OSError(code, os.strerror(code), str(path)) from None
        raise


def reserve(path, nbytes: int | None = None) -> None:
    """Allocate the whole of ``path`` on disk now (its current size unless
    ``nbytes``), so a memory map over it cannot meet a full disk later."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size if nbytes is None else int(nbytes)
        if size > 0:
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as e:
                if e.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    _fill(fd, size)  # a file system without fallocate: write the blocks
                else:
                    raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        os.close(fd)


def _fill(fd: int, size: int) -> None:
    """Touch every block of a sparse file by writing zeros over its holes."""
    step = 1 << 20
    zeros = bytes(step)
    pos = 0
    while pos < size:
        n = min(step, size - pos)
        existing = os.pread(fd, n, pos)
        if existing.count(0) == len(existing):
            os.pwrite(fd, zeros[:n], pos)
        pos += n
