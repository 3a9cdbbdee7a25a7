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
# A second ArcadeDB server user whose group may only read records of the
# database (no create/update/delete, no schema, no security): read-only
# sessions (`v2ht-kg cypher` without --write, `query`) log in as it, so the
# server itself refuses writes, whatever the Cypher text or procedure.
EMBEDDED_READER = "v2ht_reader"
READER_GROUP = "v2ht_reader"
PASSWORD_FILE = ".password"
READER_PASSWORD_FILE = ".password-reader"
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
    read_user: str | None = None  # read-only sessions log in as this user (None: ``user``)
    read_password: str | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        return self.uri is None

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def read_auth(self) -> tuple[str, str]:
        """Credentials of read-only sessions: the embedded server's reader
        user; for Neo4j the configured read user, else the same user (Neo4j
        enforces the READ access mode of the session itself)."""
        if self.read_user is None:
            return self.auth
        return (self.read_user, self.read_password if self.read_password is not None else self.password)


def store_dir(workdir: Path) -> Path:
    return Path(workdir) / "store"


def embedded_password(workdir: Path) -> str:
    root = store_dir(workdir)
    pw_file = root / PASSWORD_FILE
    have = pw_file.exists() and pw_file.read_text(encoding="utf-8").strip()
    if not have and (root / "arcadedb" / "config" / "server-users.jsonl").exists():
        # ArcadeDB fixed the root password when it created its users: a new
        # one would only be refused with a bare "authentication failed"
        raise StoreError(f"{pw_file}: missing or empty, but the store there already has its users; restore "
                         f"the file, or remove {root} and run `v2ht-kg build` again")
    return password_file_value(root)


def password_file_value(root: Path, name: str = PASSWORD_FILE) -> str:
    """The embedded server's root password in ``<root>/.password`` (the
    reader's in ``.password-reader``): generated once, kept 0600 beside the
    database files. ArcadeDB fixes the root password when it first creates
    its users, so it must stay stable across runs."""
    root = Path(root)
    path = root / name
    if path.exists():
        pw = path.read_text(encoding="utf-8").strip()
        if pw:
            return pw
    root.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_urlsafe(24)
    tmp = path.with_name(f"{name}.{os.getpid()}.tmp")
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
            for key, value in section.items():
                if not isinstance(value, str):
                    raise StoreError(f"{path}: [store] {key} must be a string, not {type(value).__name__} ({value!r})")
            return section
    return {}


def redact_uri(uri: str) -> str:
    """``uri`` with any user info (user:password@) masked, for messages."""
    if "://" not in uri:
        return "***@" + uri.rsplit("@", 1)[1] if "@" in uri else uri
    scheme, rest = uri.split("://", 1)
    host, sep, path = rest.partition("/")
    if "@" in host:
        host = "***@" + host.rsplit("@", 1)[1]
    return f"{scheme}://{host}{sep}{path}"


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
            read_user=EMBEDDED_READER,
            read_password=password_file_value(store_dir(workdir), READER_PASSWORD_FILE),
        )
    scheme = uri.split("://", 1)[0] if "://" in uri else ""
    if scheme not in _SCHEMES:
        raise StoreError(f"store URI {redact_uri(uri)!r}: expected bolt://host:port or neo4j://host:port, or 'embedded'")
    if "@" in uri.split("://", 1)[1].split("/", 1)[0]:
        # a password in a URI shows in shell history, process lists and logs
        raise StoreError(f"store URI {redact_uri(uri)!r}: credentials in the URI are not accepted; set "
                         f"NEO4J_USER / NEO4J_PASSWORD or [store] user / password in {_config_files(workdir)[0]}")
    user = os.environ.get("NEO4J_USER") or settings.get("user") or "neo4j"
    password = os.environ.get("NEO4J_PASSWORD") or settings.get("password")
    if password is None:
        raise StoreError(
            f"no password for {uri}: set NEO4J_PASSWORD or [store] password in "
            f"{_config_files(workdir)[0]}"
        )
    read_user = os.environ.get("NEO4J_READ_USER") or settings.get("read_user")
    read_password = os.environ.get("NEO4J_READ_PASSWORD") or settings.get("read_password")
    return StoreConfig(uri=uri, user=str(user), password=str(password), database=str(database),
                       read_user=read_user, read_password=read_password)
