"""Where things live in a work directory (``--workdir``, env V2HT_WORKDIR,
default ./v2ht-work). One work directory holds one data set, its graph
snapshot, the embedded store's files and the training runs."""
from __future__ import annotations

import fcntl
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .embedded import _pid_alive  # one liveness check for store and work-dir owners
from .errors import V2HTError

DEFAULT_WORKDIR = "v2ht-work"
LOCK_FILE = ".build.lock"
# Temporary folders a writer makes beside its target: <name>.tmp-<pid>.
_TMP_DIR = re.compile(r"^(?P<name>.+)\.tmp-(?P<pid>\d+)$")


@dataclass(frozen=True)
class Workdir:
    root: Path

    @classmethod
    def resolve(cls, value: str | Path | None) -> "Workdir":
        root = Path(value or os.environ.get("V2HT_WORKDIR") or DEFAULT_WORKDIR).expanduser()
        return cls(root.resolve())

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw_synthetic(self) -> Path:
        return self.root / "raw-synthetic"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def graph(self) -> Path:
        return self.root / "graph.pt"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def ensure(self) -> "Workdir":
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    @contextmanager
    def exclusive(self, what: str = "build") -> Iterator["Workdir"]:
        """Hold the work directory's writer lock (``<workdir>/.build.lock``,
        an flock released by the kernel when the process dies, so a killed
        build never leaves it held). A second writer gets a one-line error
        at once instead of racing the first one. Inside the lock, temporary
        folders of dead processes are removed first."""
        self.ensure()
        path = self.root / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            finally:
                os.close(fd)
            raise V2HTError(f"{self.root}: another {holder or 'build'} is writing this work directory "
                            f"(lock {path}); wait for it to finish, or use another --workdir") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{what} (pid {os.getpid()})".encode("ascii", "replace"), 0)
            self.clean_orphans()
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def clean_orphans(self) -> list[Path]:
        """Remove ``*.tmp-<pid>`` folders of the work directory (data.tmp-PID
        and the like) whose process is gone; returns what was removed.
        Only call it while holding ``exclusive()``."""
        removed = []
        if not self.root.is_dir():
            return removed
        for p in self.root.iterdir():
            m = _TMP_DIR.match(p.name)
            if m and p.is_dir() and not p.is_symlink() and int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"])):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed
