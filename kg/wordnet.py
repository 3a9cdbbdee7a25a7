"""WordNet 3.0 through nltk's reader, found wherever it already is.

Order of attempts in :func:`load_wordnet`:

1. nltk's own data (``nltk.download("wordnet")`` done earlier by the user);
2. a system WordNet in the original Princeton layout (Debian/Ubuntu
   ``wordnet-base`` installs it in ``/usr/share/wordnet``; ``$V2HT_WORDNET_DIR``
   points elsewhere), turned once into the layout nltk reads and cached under
   ``~/.cache/v2ht-kg/nltk_data`` (``$V2HT_NLTK_DATA`` overrides);
3. ``nltk.download("wordnet")`` into that cache (users online);
4. otherwise a :class:`V2HTError` that says how to install it.

Why step 2 needs a copy: nltk 3.10 only opens corpora below a directory on
``nltk.data.path`` (a sandbox against path tricks), wants them at
``<root>/corpora/wordnet``, and expects a ``lexnames`` file that Debian does
not ship. Copies rather than symlinks, because the sandbox resolves links.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from .errors import V2HTError

SYSTEM_WORDNET_DIR = Path("/usr/share/wordnet")
INSTALL_HINT = (
    "WordNet is not available: install it with `apt-get install wordnet-base` "
    "(Debian/Ubuntu) or `python -m nltk.downloader wordnet`"
)

# The 45 lexicographer files of WordNet 3.0 in file-number order, with their
# syntactic category (1 noun, 2 verb, 3 adjective, 4 adverb), as listed in
# lexnames(5WN). nltk numbers synsets' lexnames by line, so the order matters.
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1),
    ("noun.act", 1), ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1),
    ("noun.body", 1), ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1),
    ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1), ("noun.location", 1),
    ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
    ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1),
    ("noun.relation", 1), ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1),
    ("noun.time", 1), ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2),
    ("verb.communication", 2), ("verb.competition", 2), ("verb.consumption", 2),
    ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2),
    ("verb.weather", 2), ("adj.ppl", 3),
)

# Files the reader needs; cntlist.rev (sense counts) is optional.
_REQUIRED = tuple(f"{k}.{p}" for k in ("data", "index") for p in ("noun", "verb", "adj", "adv")) + tuple(
    f"{p}.exc" for p in ("noun", "verb", "adj", "adv")
)
_OPTIONAL = ("cntlist.rev", "index.sense")  # sense counts; sense keys (Debian: wordnet-sense-index)

_CACHE: dict[tuple, object] = {}


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def default_cache_dir() -> Path:
    env = os.environ.get("V2HT_NLTK_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "v2ht-kg" / "nltk_data"


def default_source_dir() -> Path:
    env = os.environ.get("V2HT_WORDNET_DIR")
    return Path(env).expanduser() if env else SYSTEM_WORDNET_DIR


def _is_complete(corpus_dir: Path) -> bool:
    return all((corpus_dir / f).is_file() for f in _REQUIRED + ("lexnames",))


def build_wordnet_copy(source_dir: Path, cache_dir: Path) -> Path:
    """Make ``<cache_dir>/corpora/wordnet`` from a Princeton-layout WordNet dict
    folder; return the corpus folder. Does nothing when a complete copy exists.

    Built in a temporary sibling folder and renamed into place, so a crash or
    a concurrent builder never leaves a half-copied corpus behind.
    """
    source_dir, cache_dir = Path(source_dir), Path(cache_dir)
    target = cache_dir / "corpora" / "wordnet"
    if _is_complete(target):
        return target
    missing = [f for f in _REQUIRED if not (source_dir / f).is_file()]
    if missing:
        raise V2HTError(f"{source_dir}: not a WordNet dict folder (missing {missing[0]}); {INSTALL_HINT}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the corpus is public data
    try:
        for f in _REQUIRED + _OPTIONAL:
            if (source_dir / f).is_file():
                shutil.copyfile(source_dir / f, tmp / f)
        if (source_dir / "lexnames").is_file():
            shutil.copyfile(source_dir / "lexnames", tmp / "lexnames")
        else:
            (tmp / "lexnames").write_text(lexnames_text(), encoding="utf-8")
        if target.exists():
            # An incomplete leftover (a complete one returned above): replace it.
            shutil.rmtree(target)
        try:
            os.replace(tmp, target)
        except OSError:
            if not _is_complete(target):  # lost a race to another builder, who finished
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _register(data_dir: Path) -> None:
    import nltk

    d = str(data_dir)
    if d not in nltk.data.path:
        nltk.data.path.append(d)


_READER_CLASS = None


def _reader(root):
    global _READER_CLASS
    if _READER_CLASS is None:
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        class EnglishWordNet(WordNetCorpusReader):
            # The stock reader maps sense keys to other WordNet versions at
            # load time, for the Open Multilingual Wordnet only; that needs
            # index.sense, which Debian's wordnet-base lacks. Only English is used.
            def map_wn(self, version="wordnet"):
                return None

        _READER_CLASS = EnglishWordNet
    with warnings.catch_warnings():
        # Without the Open Multilingual Wordnet nltk warns on every load.
        warnings.simplefilter("ignore")
        return _READER_CLASS(root, None)


def _from_nltk_data():
    import nltk

    for name in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            root = nltk.data.find(name)
        except LookupError:
            continue
        try:
            return _reader(root)
        except (OSError, ValueError, LookupError, AssertionError):
            return None  # a broken install: fall through to the other sources
    return None


def load_wordnet(
    cache_dir: Path | None = None,
    *,
    source_dir: Path | None = None,
    use_nltk_data: bool = True,
    download: bool = True,
):
    """Return an nltk ``WordNetCorpusReader`` for WordNet 3.0 (see the module
    docstring for where it looks). Cached in-process: the load takes seconds.

    ``source_dir`` defaults to ``$V2HT_WORDNET_DIR`` or ``/usr/share/wordnet``;
    ``cache_dir`` to ``$V2HT_NLTK_DATA`` or ``~/.cache/v2ht-kg/nltk_data``.
    Raises V2HTError with the install command when no source works.
    """
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    source_dir = Path(source_dir).expanduser() if source_dir is not None else default_source_dir()
    key = (str(cache_dir.resolve()), str(source_dir.resolve()), use_nltk_data, download)
    if key in _CACHE:
        return _CACHE[key]

    wn = _from_nltk_data() if use_nltk_data else None
    if wn is None and all((source_dir / f).is_file() for f in _REQUIRED):
        try:
            corpus = build_wordnet_copy(source_dir, cache_dir)
            _register(cache_dir)
            wn = _reader(str(corpus))
        except OSError as e:
            raise V2HTError(f"cannot prepare WordNet from {source_dir} in {cache_dir}: {e.strerror or e}") from None
    if wn is None and download:
        wn = _try_download(cache_dir)
    if wn is None:
        raise V2HTError(INSTALL_HINT)
    _CACHE[key] = wn
    return wn


def _try_download(cache_dir: Path):
    import nltk

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # nltk prints its failures even when quiet; the caller reports instead.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            ok = nltk.download(
                "wordnet", download_dir=str(cache_dir), quiet=True, raise_on_error=False, print_error_to=io.StringIO()
            )
    except Exception:  # offline, proxy, permissions: any failure means "not this way"
        return None
    if not ok:
        return None
    _register(cache_dir)
    return _from_nltk_data()
