"""Every Cypher statement of the project, checked by Neo4j's own Cypher front
end (npm ``@neo4j-cypher/language-support``, offline): the statements only
ever run on ArcadeDB in the tests, and this keeps them valid Neo4j 5 Cypher.

Set up once with ``npm ci --prefix tests/lint``; skipped without node or
tests/lint/node_modules (failed instead when V2HT_REQUIRE_CYPHER_LINT=1).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from v2ht_kg.kg import cypher_lib

LINT_DIR = Path(__file__).resolve().parent / "lint"
NODE = shutil.which("node")


def _missing() -> str | None:
    if NODE is None:
        return "node (Node.js) is not installed"
    if not (LINT_DIR / "node_modules" / "@neo4j-cypher" / "language-support").is_dir():
        return "Cypher linter not installed: run `npm ci --prefix tests/lint`"
    return None


@pytest.fixture
def linter():
    reason = _missing()
    if reason:
        # CI sets V2HT_REQUIRE_CYPHER_LINT=1 so that a broken set-up fails
        # instead of passing as a skip.
        if os.environ.get("V2HT_REQUIRE_CYPHER_LINT") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


# The graph model's vocabulary (kg/schema.py, kg/dataset.py): the linter warns
# on anything outside it, which catches a misspelt label or property that
# Cypher would otherwise answer with a silent null.
LABELS = ["Hashtag", "User", "Post", "Build"]
REL_TYPES = ["CP", "SS", "PO", "CO", "POSTED", "TAGGED"]
PROPERTY_KEYS = [
    # Hashtag
    "name", "words", "count", "train_count", "longtail", "surfaces",
    # typed edges: weight, overrides, evidence (cp, ss, po, co)
    "weight", "overrides", "synset_a", "synset_b", "direction", "depth", "wup",
    "strength", "pmi",
    # Post, Build
    "id", "split", "status", "fingerprint",
]
SCHEMA = {"labels": LABELS, "relationshipTypes": REL_TYPES, "propertyKeys": PROPERTY_KEYS}
# Neo4j 5 databases default to Cypher 5, new Neo4j 2025+ ones to Cypher 25:
# the statements must parse under both.
LANGUAGES = ["CYPHER 5", "CYPHER 25"]

# Folders whose statements read the model written by others: there an unknown
# property is a bug. Write statements (load/, admin/, schema) define the
# properties, so only their labels and relationship types are checked.
READ_FOLDERS = ("queries/", "explain/", "export/")
UNKNOWN_NAME = re.compile(r"^(Label|Relationship type) \S+ is not present in the database")
UNKNOWN_PROPERTY = re.compile(r"^\S+ is not present in the database")


def lint(statements: list[dict]) -> list[dict]:
    proc = subprocess.run(
        [NODE, str(LINT_DIR / "lint.mjs")],
        input=json.dumps({"schema": SCHEMA, "languages": LANGUAGES, "statements": statements}),
        capture_output=True, text=True, timeout=120, cwd=LINT_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def problems(name: str, diagnostics: list[dict]) -> list[str]:
    out = []
    for d in diagnostics:
        msg = d["message"]
        fatal = (
            d["severity"] == 1
            or UNKNOWN_NAME.match(msg)
            or (name.startswith(READ_FOLDERS) and UNKNOWN_PROPERTY.match(msg))
        )
        if fatal:
            out.append(f"cypher/{name}.cypher:{d['line']}:{d['character']}: [{d['language']}] {msg}")
    return out


def all_statements() -> list[dict]:
    return [
        {"name": q.name, "statement": st, "parameters": q.params}
        for q in cypher_lib.all_queries()
        for st in q.statements
    ]


def test_every_statement_is_valid_neo4j_cypher(linter):
    statements = all_statements()
    assert len(statements) >= 17, "the Cypher library looks incomplete"
    results = lint(statements)
    assert [r["name"] for r in results] == [s["name"] for s in statements]
    found = [p for r in results for p in problems(r["name"], r["diagnostics"])]
    assert not found, "\n".join(found)


def test_every_parameter_used_is_declared_and_every_declared_one_used():
    # The linter reports undeclared $names (severity 1, above); this catches
    # the other way round: a header param that no statement uses.
    for q in cypher_lib.all_queries():
        used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", "\n".join(q.statements)))
        assert used == set(q.params), f"cypher/{q.name}.cypher: uses {sorted(used)}, declares {sorted(q.params)}"


def test_read_queries_are_read_mode():
    for folder in ("queries", "explain", "export"):
        for q in cypher_lib.list_queries(folder):
            assert q.mode == "read", q.name
            assert q.description, f"{q.name}: header has no description"


def test_broken_statements_are_reported(linter):
    # Without this the test above could pass with a linter that reports nothing.
    broken = [
        {"name": "queries/syntax", "statement": "MATCH (h:Hashtag {name: $tag}) RETRN h", "parameters": {"tag": "x"}},
        {"name": "queries/param", "statement": "MATCH (h:Hashtag {name: $tg}) RETURN h", "parameters": {"tag": "x"}},
        {"name": "queries/variable", "statement": "MATCH (h:Hashtag) RETURN g.name", "parameters": {}},
        {"name": "queries/label", "statement": "MATCH (h:Hashtg) RETURN h.name", "parameters": {}},
        {"name": "queries/property", "statement": "MATCH (h:Hashtag) RETURN h.nmae", "parameters": {}},
        {"name": "queries/ok", "statement": "MATCH (h:Hashtag {name: $tag})-[r:CP|SS]-(n) RETURN n.name, type(r)", "parameters": {"tag": "x"}},
    ]
    results = {r["name"]: problems(r["name"], r["diagnostics"]) for r in lint(broken)}
    assert "RETRN" in results["queries/syntax"][0]
    assert any("$tg" in p for p in results["queries/param"])
    assert any("g" in p and "not defined" in p for p in results["queries/variable"])
    assert any("Hashtg" in p for p in results["queries/label"])
    assert any("nmae" in p for p in results["queries/property"])
    assert results["queries/ok"] == []
