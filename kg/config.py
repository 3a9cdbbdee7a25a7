"""Which graph store to talk to, and with which credentials.

``--store`` (or env ``V2HT_STORE``) names a Bolt URI (``bolt://host:7687``,
``neo4j://...``); without one the project runs its embedded ArcadeDB server
on the work directory's files. Passwords come from the environment or a
config file, never from the command line (it would show in ``ps``).
"""
from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError

DEFAULT_DATABASE = "neo4j"
EMBEDDED_USER = "root"  # ArcadeDB's server user
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


@dataclass(frozen=True)
class StoreConfig:
    """``uri`` is None for the embedded server (its port is known only once it
    runs). ``password`` is kept out of repr so a logged config leaks nothing."""

    uri: str | None
    user: str
    password: str = field(repr=False)
    database: str = DEFAULT_DATABASE
    embedded_root: Path | None = None  # <workdir>/store for the embedded server

    @property
    def embedded(self) -> bool:
        return self.uri is None

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)


def store_dir(workdir: Path) -> Path:
    return Path(workdir) / "store"


def embedded_password(workdir: Path) -> str:
    return password_file_value(store_dir(workdir))


def password_file_value(root: Path) -> str:
    """The embedded server's root password in ``<root>/.password``: generated
    once, kept 0600 beside the database files. ArcadeDB fixes it when it first
    creates its users, so it must stay stable across runs."""
    root = Path(root)
    path = root / ".password"
    if path.exists():
        pw = path.read_text(encoding="utf-8").strip()
        if pw:
            return pw
    root.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_urlsafe(24)
    tmp = path.with_name(f".password.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(pw + "\n")
    os.replace(tmp, path)
    return pw


def _config_files(workdir: Path) -> list[Path]:
    return [Path(workdir) / "v2ht.toml", Path.home() / ".config" / "v2ht-kg" / "config.toml"]


def _file_settings(workdir: Path) -> dict:
    for path in _config_files(workdir):
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
                raise StoreError(f"{path}: not valid TOML ({e})") from None
            section = data.get("store", {})
            if not isinstance(section, dict):
                raise StoreError(f"{path}: [store] must be a table")
            return section
    return {}


def resolve_store(store: str | None, workdir: Path) -> StoreConfig:
    """``store``: the ``--store`` option; falls back to env ``V2HT_STORE``,
    then the config file's ``[store] uri``; None everywhere means embedded."""
    settings = _file_settings(workdir)
    uri = store or os.environ.get("V2HT_STORE") or settings.get("uri")
    database = os.environ.get("NEO4J_DATABASE") or settings.get("database") or DEFAULT_DATABASE
    if not uri or uri == "embedded":
        return StoreConfig(
            uri=None,
            user=EMBEDDED_USER,
            password=embedded_password(workdir),
            database=DEFAULT_DATABASE,
            embedded_root=store_dir(workdir),
        )
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in _SCHEMES:
        raise StoreError(f"store URI {uri!r}: expected bolt://host:port or neo4j://host:port, or 'embedded'")
    user = os.environ.get("NEO4J_USER") or settings.get("user") or "neo4j"
    password = os.environ.get("NEO4J_PASSWORD") or settings.get("password")
    if password is None:
        raise StoreError(
            f"no password for {uri}: set NEO4J_PASSWORD or [store] password in "
            f"{_config_files(workdir)[0]}"
        )
    return StoreConfig(uri=uri, user=str(user), password=str(password), database=str(database))
