"""The raw input folder: what a user exports from their own platform, and what
the synthetic generator writes. Preparation (``kg.prepare``) reads it.

Layout::

    <dir>/posts.jsonl              one kg.records.Post per line
      or <dir>/posts.csv           header id,user,hashtags,text,time[,split];
                                   hashtags separated by spaces and/or commas
    <dir>/features/<m>.npy         optional, m in {visual, acoustic}: float16 or
                                   float32 array (n, steps, dim)
    <dir>/features/<m>.ids.txt     post id of each row of <m>.npy, one a line

Feature rows need not follow the order of the posts, and posts without a
feature row are allowed (preparation decides what to do with them).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import re
from pathlib import Path
from typing import Collection, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import DataError
from .fsio import named
from .records import UNKNOWN_USER, Post, parse_category_path

FEATURE_MODALITIES = ("visual", "acoustic")
FEATURE_DTYPES = (np.dtype("float16"), np.dtype("float32"))
CSV_COLUMNS = ("id", "user", "hashtags", "text", "time", "split", "categories")
_CSV_TAG_SEP = re.compile(r"[\s,]+")


def posts_file(raw_dir: Path) -> Path:
    """The posts file of a raw folder (or the file itself when given one)."""
    raw_dir = Path(raw_dir)
    if raw_dir.is_file():
        return raw_dir
    if not raw_dir.is_dir():
        raise DataError("no such raw data folder", str(raw_dir))
    found = [raw_dir / n for n in ("posts.jsonl", "posts.csv") if (raw_dir / n).exists()]
    if not found:
        raise DataError("no posts.jsonl or posts.csv here", str(raw_dir))
    if len(found) > 1:
        # Silently preferring one would hide half of a user's data.
        raise DataError("both posts.jsonl and posts.csv here; keep one", str(raw_dir))
    return found[0]


def _utf8_lines(path: Path) -> Iterator[str]:
    """The file's lines (line ends kept), strict UTF-8: a bad byte is a
    DataError naming the line and column, not a UnicodeDecodeError."""
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})", str(path), i) from None


def _scalar_id(d: dict, key: str, path: Path, line: int, required: bool) -> None:
    """An id is a string or an integer; ``user`` may also be null or "" (the
    unknown user)."""
    v = d.get(key)
    if not required and (v is None or v == ""):
        return
    if isinstance(v, bool) or not isinstance(v, (str, int)) or (isinstance(v, str) and not v.strip()):
        raise DataError(f"{key!r} must be a non-empty string or integer, not {json.dumps(v)[:40]}", str(path), line)


def json_objects(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-blank line of a JSON-lines file; a bad
    byte, bad JSON or a line that is not an object is a DataError naming
    the line."""
    for i, line in enumerate(_utf8_lines(path), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"not valid JSON ({e.msg})", str(path), i) from None
        except RecursionError:
            raise DataError("JSON nested too deeply", str(path), i) from None
        if not isinstance(d, dict):
            raise DataError("each line must be a JSON object", str(path), i)
        yield i, d


def _read_jsonl(path: Path) -> Iterator[tuple[int, Post]]:
    for i, d in json_objects(path):
        if "id" in d:
            _scalar_id(d, "id", path, i, required=True)
        _scalar_id(d, "user", path, i, required=False)
        t = d.get("time")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (str, int, float))):
            raise DataError(f"'time' must be a string or a number, not {json.dumps(t)[:40]}", str(path), i)
        yield i, Post.from_json(d, str(path), i)


def _read_csv(path: Path) -> Iterator[tuple[int, Post]]:
    with contextlib.closing(_utf8_lines(path)) as lines:
        reader = csv.DictReader(lines)
        header = reader.fieldnames or []
        missing = [c for c in ("id", "hashtags") if c not in header]
        if missing:
            raise DataError(f"header lacks column(s) {', '.join(missing)} (expected {','.join(CSV_COLUMNS[:5])})", str(path), 1)
        for row in reader:
            # line_num is where the record ends; a quoted field may span lines.
            values = [v for k, v in row.items() if k is not None] + list(row.get(None) or [])
            line = reader.line_num - sum(str(v).count("\n") for v in values if v)
            if None in row:
                raise DataError(f"{len(header) + len(row[None])} fields, header has {len(header)}", str(path), line)
            if any(v is None for v in row.values()):
                n = sum(v is not None for v in row.values())
                raise DataError(f"{n} field(s), header has {len(header)}", str(path), line)
            pid = (row.get("id") or "").strip()
            if not pid:
                raise DataError("empty id", str(path), line)
            split = (row.get("split") or "").strip() or None
            if split is not None and split not in ("train", "valid", "test"):
                raise DataError(f"split must be train, valid or test, not {split!r}", str(path), line)
            yield line, Post(
                id=pid,
                user=(row.get("user") or "").strip() or UNKNOWN_USER,
                hashtags=[t for t in _CSV_TAG_SEP.split(row.get("hashtags") or "") if t],
                text=row.get("text") or "",
                time=(row.get("time") or "").strip() or None,
                split=split,
                categories=parse_category_path(row.get("categories")),
            )


def read_raw_posts(raw_dir: Path) -> Iterator[Post]:
    """Posts of a raw folder (posts.jsonl or posts.csv), in file order.

    Raises DataError naming the file and line for malformed lines and
    duplicate post ids."""
    path = posts_file(raw_dir)
    reader = _read_csv if path.suffix.lower() == ".csv" else _read_jsonl
    seen: dict[str, int] = {}
    time_kind: tuple[str, int] | None = None  # ("string" | "number", first line)
    for line, post in reader(path):
        if post.id in seen:
            raise DataError(f"duplicate post id {post.id!r} (line {seen[post.id]} has it too)", str(path), line)
        seen[post.id] = line
        if post.time is not None:
            kind = "string" if isinstance(post.time, str) else "number"
            if time_kind is None:
                time_kind = (kind, line)
            elif kind != time_kind[0]:
                raise DataError(f"'time' is a {kind} here but a {time_kind[0]} on line {time_kind[1]}: "
                                "use one kind for the whole file", str(path), line)
        yield post


def feature_paths(raw_dir: Path, modality: str) -> tuple[Path, Path]:
    d = Path(raw_dir) / "features"
    return d / f"{modality}.npy", d / f"{modality}.ids.txt"


def _read_ids(ids_path: Path, rows: int, npy_path: Path, known_ids: Collection[str] | None) -> list[str]:
    ids: list[str] = []
    seen: dict[str, int] = {}
    with contextlib.closing(_utf8_lines(ids_path)) as f:
        for i, line in enumerate(f, 1):
            pid = line.rstrip("\r\n").strip()
            if not pid:
                raise DataError("empty post id", str(ids_path), i)
            if pid in seen:
                raise DataError(f"duplicate post id {pid!r} (line {seen[pid]} has it too)", str(ids_path), i)
            if known_ids is not None and pid not in known_ids:
                raise DataError(f"post id {pid!r} is not in the posts file", str(ids_path), i)
            seen[pid] = i
            ids.append(pid)
    if len(ids) != rows:
        raise DataError(f"{len(ids)} ids but {npy_path.name} has {rows} rows", str(ids_path), min(len(ids), rows) + 1)
    return ids


def raw_features(raw_dir: Path, known_ids: Collection[str] | None = None) -> dict[str, tuple[np.ndarray, list[str]]]:
    """The feature arrays of a raw folder: {modality: (memory-mapped array, ids)}.

    Arrays stay on disk (mmap). ``known_ids``, when given, are the post ids of
    the posts file: every feature row must belong to one of them."""
    out: dict[str, tuple[np.ndarray, list[str]]] = {}
    fdir = Path(raw_dir) / "features"
    if not fdir.is_dir():
        return out
    for m in FEATURE_MODALITIES:
        npy, ids_path = feature_paths(raw_dir, m)
        if not npy.exists():
            if ids_path.exists():
                raise DataError(f"{ids_path.name} has no {npy.name} beside it", str(ids_path))
            continue
        if not ids_path.exists():
            raise DataError(f"no {ids_path.name} beside it (the post id of each row)", str(npy))
        try:
            arr = np.load(npy, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"not a readable .npy array ({e})", str(npy)) from None
        if arr.ndim != 3:
            raise DataError(f"expected a 3-d array (posts, steps, dim), got shape {tuple(arr.shape)}", str(npy))
        if arr.dtype not in FEATURE_DTYPES:
            raise DataError(f"dtype {arr.dtype} is not float16 or float32", str(npy))
        if arr.shape[1] == 0 or arr.shape[2] == 0:
            raise DataError(f"empty steps or dim in shape {tuple(arr.shape)}", str(npy))
        ids = _read_ids(ids_path, arr.shape[0], npy, known_ids)
        check_finite_features(arr, npy, ids_path)
        out[m] = (arr, ids)
    return out


FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: the prepared features are float16
_CHECK_BYTES = 64 << 20


def check_finite_features(arr: np.ndarray, npy: Path, ids_path: Path | None = None) -> None:
    """Every value finite and within float16's range (the prepared features
    are float16: a larger float32 would become inf). Raises DataError naming
    the file, the first bad row (0-based row of the array, and its line in
    the ids file) and the value. Reads the array in chunks of about 64 MB,
    so arrays larger than memory are fine."""
    rows = arr.shape[0]
    per_row = max(1, int(np.prod(arr.shape[1:])) * arr.dtype.itemsize)
    step = max(1, _CHECK_BYTES // per_row)
    for start in range(0, rows, step):
        block = np.asarray(arr[start:start + step])
        bad = ~np.isfinite(block)
        if arr.dtype != np.float16:
            with np.errstate(invalid="ignore"):
                bad |= np.abs(block) > FLOAT16_MAX
        if bad.any():
            flat = np.flatnonzero(bad.reshape(block.shape[0], -1).any(axis=1))
            r = int(flat[0])
            value = block[r][bad[r]].flat[0]
            what = ("not finite" if not np.isfinite(value)
                    else f"outside float16's range (|x| > {FLOAT16_MAX:g}), it would become inf")
            where = f" (post on line {start + r + 1} of {ids_path.name})" if ids_path is not None else ""
            raise DataError(f"row {start + r}{where}: value {float(value)!r} is {what}", str(npy))


class FeatureWriter:
    """Writes a (n, steps, dim) .npy file chunk by chunk, so that arrays far
    larger than memory never sit in RAM.

    Sequential writes after a standard .npy header (not a writable memmap):
    dirty memmap pages count as resident memory until flushed, which a
    streaming generator must not pay. The file appears under its final name
    only when all n rows were written (temporary name, then os.replace)."""

    def __init__(self, path: Path, n: int, steps: int, dim: int, dtype=np.float16):
        self.path = Path(path)
        self.shape = (int(n), int(steps), int(dim))
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._f = open(self._tmp, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": self.shape}
        np.lib.format.write_array_header_1_0(self._f, header)

    def write(self, chunk: np.ndarray) -> None:
        if chunk.ndim != 3 or chunk.shape[1:] != self.shape[1:]:
            raise ValueError(f"chunk shape {chunk.shape} does not fit {self.shape}")
        if self.rows + chunk.shape[0] > self.shape[0]:
            raise ValueError("more rows than announced")
        with named(self.path):
            self._f.write(np.ascontiguousarray(chunk, dtype=self.dtype).data)  # no bytes copy
        self.rows += chunk.shape[0]

    def close(self) -> None:
        with named(self.path):
            self._f.close()
        if self.rows != self.shape[0]:
            os.unlink(self._tmp)
            raise ValueError(f"{self.rows} rows written, {self.shape[0]} announced")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._f.close()
        if self._tmp.exists():
            os.unlink(self._tmp)

    def __enter__(self) -> "FeatureWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _write_text_atomic(path: Path, lines: Iterable[str]) -> int:
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with named(path), open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
                n += 1
        os.replace(tmp, path)
    except BaseException:
        if tmp.exists():
            os.unlink(tmp)
        raise
    return n


def write_ids(path: Path, ids: Iterable[str]) -> int:
    return _write_text_atomic(Path(path), ids)


def write_raw(
    raw_dir: Path,
    posts: Iterable[Post],
    features: Mapping[str, tuple[np.ndarray, Sequence[str]]] | None = None,
) -> int:
    """Write a raw folder: posts.jsonl and, optionally, feature arrays with
    their id files. Each file is written atomically. Returns the post count."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    n = _write_text_atomic(raw_dir / "posts.jsonl", (json.dumps(p.to_json(), ensure_ascii=False) for p in posts))
    for m, (arr, ids) in (features or {}).items():
        if m not in FEATURE_MODALITIES:
            raise DataError(f"unknown feature modality {m!r} (expected one of {', '.join(FEATURE_MODALITIES)})")
        arr = np.asarray(arr)
        if arr.ndim != 3:
            raise DataError(f"{m} features must be a 3-d array (posts, steps, dim), got shape {arr.shape}")
        if len(ids) != arr.shape[0]:
            raise DataError(f"{m} features: {len(ids)} ids for {arr.shape[0]} rows")
        dtype = arr.dtype if arr.dtype in FEATURE_DTYPES else np.dtype("float32")
        npy, ids_path = feature_paths(raw_dir, m)
        with FeatureWriter(npy, *arr.shape, dtype=dtype) as w:
            w.write(arr)
        write_ids(ids_path, ids)
    return n
