"""The Cypher library: every statement of the project is a file under
``cypher/`` and is loaded here by name (``"queries/neighbours"``).

A file starts with a header of ``//`` comment lines::

    // neighbours of a hashtag, by relation type, with the evidence of each edge
    // mode: read
    // param tag: "kid dancer"
    // param limit: 25

``mode`` is ``read`` or ``write``; each ``param`` line declares one parameter
with a sample JSON value (the Neo4j linter test uses the samples, the CLI
uses them to parse ``--param k=v`` values to the right type). A file may hold
several statements separated by ``;`` (schema.cypher does).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import V2HTError


@dataclass(frozen=True)
class CypherQuery:
    name: str
    text: str
    description: str
    mode: str
    params: dict = field(default_factory=dict)  # name -> sample value

    @property
    def statements(self) -> list[str]:
        body = "\n".join(l for l in self.text.splitlines() if not l.lstrip().startswith("//"))
        return [s.strip() for s in body.split(";") if s.strip()]


def cypher_root() -> Path:
    return Path(str(resources.files("v2ht_kg.cypher")))


def _parse(name: str, text: str) -> CypherQuery:
    desc: list[str] = []
    mode = "read"
    params: dict = {}
    for line in text.splitlines():
        s = line.strip()
        if not s:
            continue
        if not s.startswith("//"):
            break
        s = s[2:].strip()
        if s.startswith("mode:"):
            mode = s.split(":", 1)[1].strip()
        elif s.startswith("param "):
            key, _, sample = s[len("param "):].partition(":")
            params[key.strip()] = json.loads(sample.strip()) if sample.strip() else None
        else:
            desc.append(s)
    if mode not in ("read", "write"):
        raise ValueError(f"cypher/{name}.cypher: mode must be read or write")
    return CypherQuery(name=name, text=text, description=" ".join(desc), mode=mode, params=params)


@lru_cache(maxsize=None)
def load(name: str) -> CypherQuery:
    path = cypher_root() / f"{name}.cypher"
    if not path.is_file():
        raise V2HTError(f"no Cypher file cypher/{name}.cypher")
    return _parse(name, path.read_text(encoding="utf-8"))


def list_queries(folder: str = "queries") -> list[CypherQuery]:
    root = cypher_root() / folder
    return [load(f"{folder}/{p.stem}") for p in sorted(root.glob("*.cypher"))]


def all_queries() -> list[CypherQuery]:
    root = cypher_root()
    return [load(str(p.relative_to(root).with_suffix(""))) for p in sorted(root.rglob("*.cypher"))]
