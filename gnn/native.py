"""The ranking's fused tile-input kernel (pair_input.c), built on first use.

The exact full rank spends most of its time building each tile's input p0
(gathers, the blend of Eq. 9's pooled vector, Eq. 14's Bi-Interaction), not
in its GEMMs. The C loop writes p0 in one pass. It is compiled with the
system's C compiler (``$CC``, else ``cc``) into a per-user cache and called
through ctypes; its OpenMP threads are torch's own (see pair_input.c).

It is used only where it reproduces the eager kernel bit for bit: the first
load checks, for float32 and for bfloat16, the float contraction with FMA
and then without against torch's own ops on random data and keeps the one
that matches. No compiler, a failed build or no match: ``available()`` is
False and ranking runs the eager kernel, same results. Tensors whose shapes
or dtypes are not what the loop reads take the eager kernel too (it reads
raw memory). ``V2HT_NATIVE=0`` turns it off.
"""
from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch

from .encoders import ModalityEncoder, ModalityStates

_SOURCE = Path(__file__).with_name("pair_input.c")
_FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fPIC", "-shared"]
_STATE: dict = {}
_MIN_SPLIT = 1024  # pairs per thread below which one thread does them all


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "v2ht-kg" / "native"


def _trusted(path: Path) -> bool:
    """Only a library this user owns and no one else can write gets loaded."""
    st = path.stat()
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _build(cc: str, fma: bool, openmp: bool) -> Path | None:
    """The compiled library (built now if the cache lacks it), or None: no
    cache to write, an untrusted one, or a failed build."""
    flags = _FLAGS + (["-DV2HT_FMA"] if fma else []) + (["-fopenmp"] if openmp else [])
    src = _SOURCE.read_bytes()
    key = hashlib.sha256(src + " ".join([cc, *flags, platform.machine(), platform.node()]).encode()).hexdigest()[:16]
    out_dir = _cache_dir()
    lib = out_dir / f"pair_input-{key}.so"
    tmp = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _trusted(out_dir):
            return None
        if lib.exists():
            return lib if _trusted(lib) else None
        fd, tmp = tempfile.mkstemp(suffix=".so.tmp", dir=out_dir)
        os.close(fd)
        subprocess.run([cc, *flags, "-o", tmp, str(_SOURCE)], check=True, capture_output=True, timeout=120)
        os.chmod(tmp, 0o700)
        os.replace(tmp, lib)  # atomic: a concurrent or killed build leaves no half-written library
        return lib
    except (OSError, subprocess.SubprocessError):  # a read-only home, no space, a compile error
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return None


class _Modality(ctypes.Structure):
    """pair_input.c's v2ht_modality."""
    _fields_ = [(name, ctypes.c_void_p) for name in ("neg_sorted", "pw", "n_inactive", "yd", "c", "ef", "k")] + \
        [(name, ctypes.c_int64) for name in ("t", "c_post_stride", "k_post_stride")]


def step_counts(tab, c: torch.Tensor) -> torch.Tensor:
    """k (B, H) int32: for each post and each of H hashtag scores c, the number
    of the post's steps with -a < c, what segment_lookup's searchsorted finds,
    for all hashtags at once: sort c, place each step among the sorted scores,
    and a prefix sum over the placements counts the steps below each score."""
    b = tab.neg_sorted.shape[0]
    h = c.shape[0]
    order = torch.argsort(c)
    at = torch.searchsorted(c[order].contiguous(), tab.neg_sorted, right=True)  # (B, T) in [0, H]
    below = torch.zeros(b, h + 1, dtype=torch.int32).scatter_add_(1, at, torch.ones_like(at, dtype=torch.int32))
    k = torch.empty(b, h, dtype=torch.int32)
    k[:, order] = below.cumsum(1, dtype=torch.int32)[:, :h]
    return k


def _load(fma: bool):
    cc = os.environ.get("CC") or "cc"
    if shutil.which(cc) is None:
        return None
    # a compiler without OpenMP (clang without libomp, say) still gets the loop, on one thread
    lib = _build(cc, fma, openmp=True) or _build(cc, fma, openmp=False)
    if lib is None:
        return None
    fn = ctypes.CDLL(str(lib)).v2ht_pair_input
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    fn.argtypes = [i64, i64, i64, i64, i64, i64, ctypes.POINTER(_Modality), ptr, i64, ptr, ptr]
    fn.restype = ctypes.c_int
    return fn


def eager_input(tables: list, cs: list, e_h: torch.Tensor, e_u: torch.Tensor | None, out: torch.Tensor,
                buf=None) -> torch.Tensor:
    """p0 (B, n, M d) of Eqs. 9 and 14 through torch ops: each modality's
    pooled vector (ModalityEncoder.pool_tables; tables' yd in out's dtype),
    then the Bi-Interaction; ``buf(name, *shape)`` gives scratch tensors
    (fresh ones without it)."""
    buf = buf or (lambda name, *shape: torch.empty(shape, dtype=out.dtype, device=out.device))
    b, n = out.shape[:2]
    d = e_h.shape[-1]
    if e_u is None:
        g, hu = e_h, None
    else:
        g = torch.add(e_h, e_u, out=buf("g", b, n, d))
        hu = torch.mul(e_h, e_u, out=buf("hu", b, n, d))
    for i, (tab, c) in enumerate(zip(tables, cs)):
        e = ModalityEncoder.pool_tables(tab, c, out=buf("e", b, n, d), rows_out=buf("yd", b * n, 2 * d))
        block = out[..., i * d:(i + 1) * d]  # written in place: no cat
        # Eq. 14: e~ * (e_h + e_u) + e_h * e_u, as in V2HT._interact
        if hu is None:
            torch.mul(e, g, out=block)
        else:
            torch.addcmul(hu, e, g, out=block)
    return out


def _probe(fn, dtype: torch.dtype) -> bool:
    """Bit-identical to the eager ops in ``dtype`` on random posts (padded, of
    several lengths), with and without a user, for shared and per-post hashtags?"""
    gen = torch.Generator().manual_seed(0)
    b, n, d = 3, 37, 64
    tables = []
    for t in (9, 2):
        lengths = torch.randint(1, t + 1, (b,), generator=gen)
        mask = torch.arange(t) < lengths.unsqueeze(1)
        z = torch.randn(b, t, d, generator=gen)
        enc = ModalityStates(states=z, mask=mask, lengths=lengths, a=torch.randn(b, t, generator=gen), z=z)
        tab = ModalityEncoder.segment_tables(enc)
        tables.append(dataclasses.replace(tab, yd=tab.yd.to(dtype)))
    for shared in (True, False):
        shape = (n,) if shared else (b, n)
        cs = [3 * torch.randn(shape, generator=gen) for _ in tables]
        e_h = torch.randn((1, n, d) if shared else (b, n, d), generator=gen).to(dtype)
        for e_u in (None, torch.randn(b, 1, d, generator=gen).to(dtype)):
            want = eager_input(tables, cs, e_h, e_u, torch.empty(b, n, 2 * d, dtype=dtype))
            for ks in ([None, [step_counts(t, c)[:, 5:] for t, c in zip(tables, cs)]] if shared else [None]):
                got = torch.full((b, n - 5 if ks else n, 2 * d), float("nan"), dtype=dtype)
                ok = _call(fn, tables, [c[5:] for c in cs] if ks else cs, e_h[:, 5:] if ks else e_h, e_u, got, ks)
                if not ok or not torch.equal(want[:, 5:] if ks else want, got):
                    return False
    return True


DTYPES = (torch.float32, torch.bfloat16)


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Is the C loop here, and bit-identical to the torch ops in ``dtype``?
    Each dtype takes the first build (with, then without FMA) that is."""
    if "fns" not in _STATE:
        _STATE["fns"] = dict.fromkeys(DTYPES)
        if os.environ.get("V2HT_NATIVE", "1") != "0":
            for fma in (True, False):  # torch's own kernels contract to FMA on most CPUs: one build
                fn = _load(fma)
                for dt in DTYPES:
                    if fn is not None and _STATE["fns"][dt] is None and _probe(fn, dt):
                        _STATE["fns"][dt] = fn
    return _STATE["fns"].get(dtype) is not None


@contextmanager
def off():
    """Torch ops for every dtype while inside: the path of a machine without
    a compiler, for benchmarks and tests to compare against."""
    available()
    saved = _STATE["fns"]
    _STATE["fns"] = dict.fromkeys(DTYPES)
    try:
        yield
    finally:
        _STATE["fns"] = saved


def _call(fn, tables, cs, e_h, e_u, out, ks=None) -> bool:
    b, n = out.shape[:2]
    d = e_h.shape[-1]
    keep = []  # every tensor the C loop reads, alive until it returns

    def ptr(t: torch.Tensor) -> int:
        t = t.contiguous()
        keep.append(t)
        return t.data_ptr()

    mods = (_Modality * len(tables))()
    for md, tab, c, k in zip(mods, tables, cs, ks or [None] * len(tables)):
        c = c.float()
        ef = torch.exp(-(c + tab.top).clamp_min(0))  # as segment_lookup computes it, so bit for bit
        md.neg_sorted, md.pw, md.n_inactive, md.yd = (ptr(tab.neg_sorted), ptr(tab.pw), ptr(tab.n_inactive),
                                                       ptr(tab.yd))
        md.c, md.ef = ptr(c), ptr(ef.expand(b, n))
        md.t, md.c_post_stride = tab.neg_sorted.shape[1], 0 if c.dim() == 1 else n
        if k is not None:  # a (B, n) view of step_counts' (B, H): rows of stride H
            keep.append(k)
            md.k, md.k_post_stride = k.data_ptr(), k.stride(0)
    pairs = b * n
    threads = max(1, min(torch.get_num_threads(), pairs // _MIN_SPLIT))
    return fn(int(out.dtype == torch.bfloat16), pairs, threads, n, len(tables), d, mods, ptr(e_h),
              0 if e_h.shape[0] == 1 else n * d, None if e_u is None else ptr(e_u), out.data_ptr()) == 0


def pair_input(tables: list, cs: list, e_h: torch.Tensor, e_u: torch.Tensor | None,
               out: torch.Tensor, ks: list | None = None) -> torch.Tensor | None:
    """p0 (B, n, M d) into ``out`` (contiguous, float32 or bfloat16, on the
    CPU) through the C loop, or None where it is unavailable for out's dtype
    or e_h, e_u and the tables' yd are not of that dtype.
    ``ks``: each modality's step_counts for these hashtags, if counted ahead."""
    dt = out.dtype
    if out.device.type != "cpu" or not out.is_contiguous() or dt not in DTYPES or not available(dt):
        return None
    if not _fits(tables, cs, e_h, e_u, out, ks):
        return None  # the torch ops then raise their own error, if any
    return out if _call(_STATE["fns"][dt], tables, cs, e_h, e_u, out, ks) else None


def _fits(tables, cs, e_h, e_u, out, ks) -> bool:
    """Every shape and dtype the C loop assumes: it reads raw memory, so a
    mismatch must never reach it."""
    b, n, width = out.shape
    d = e_h.shape[-1]
    dt = out.dtype
    if width != len(tables) * d or e_h.dtype != dt or e_h.shape[:2] not in ((1, n), (b, n)) or e_h.dim() != 3:
        return False
    if e_u is not None and (e_u.dtype != dt or e_u.numel() != b * d or e_u.shape[0] != b):
        return False
    if len(cs) != len(tables) or (ks is not None and len(ks) != len(tables)):
        return False
    for i, (tab, c) in enumerate(zip(tables, cs)):
        t = tab.neg_sorted.shape[1]
        if tab.yd.dtype != dt or tab.yd.shape != (b, t + 1, 2 * d) or tab.neg_sorted.shape[0] != b:
            return False
        if any(x.dtype != torch.float32 or x.shape != (b, t + 1) for x in (tab.pw, tab.n_inactive)):
            return False
        if tab.neg_sorted.dtype != torch.float32 or tab.top.shape != (b, 1) or c.shape not in ((n,), (b, n)):
            return False
        k = None if ks is None else ks[i]
        if k is not None and (k.dtype != torch.int32 or k.shape != (b, n) or k.stride(1) != 1):
            return False
    return True
