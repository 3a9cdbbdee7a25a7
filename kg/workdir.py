"""Where things live in a work directory (``--workdir``, env V2HT_WORKDIR,
default ./v2ht-work). One work directory holds one data set, its graph
snapshot, the embedded store's files and the training runs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_WORKDIR = "v2ht-work"


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
