"""The ranking's fused tile-input kernel (pair_input.c), built on first use.

The exact full rank spends most of its time building each tile's input p0
(gathers, the blend of Eq. 9's pooled vector, Eq. 14's Bi-Interaction), not
in its GEMMs. The C loop writes p0 in one pass. It is compiled with the
system's C compiler (``$CC``, else ``cc``) into a per-user cache and called
through ctypes; its OpenMP threads are torch's own (see pair_input.c).

It is used only where it reproduces the eager kernel bit for bit: the first
load checks the float contraction with FMA and then without against torch's
own ops on random data and keeps the one that matches. p0 is float32 (a
bfloat16 MLP gets it rounded once: ranking.PairKernel). No compiler, a
failed build or no match: ``available()`` is False and ranking runs the
eager kernel, same results. Tensors whose shapes
or dtypes are not what the loop reads take the eager kernel too (it reads
raw memory). ``V2HT_NATIVE=0`` turns it off.

The same library holds the tile with the MLP's hidden layers fused in
(pair_mlp.c, used through native_mlp.py), the step counts of every
(post, hashtag) pair (``step_counts``, checked against torch.searchsorted)
and propagation's sparse products (csr.c), checked the same way against
torch.sparse.mm and torch.sparse.sampled_addmm, once per width, before
``csr_spmm`` and ``csr_sddmm`` use them (torch's kernels sum in another
order at some widths on some CPUs: spmm at 8 and 16 on an Intel Xeon).
``off()`` turns all of them off at once.
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

_SOURCES = [Path(__file__).with_name(name) for name in ("pair_input.c", "pair_mlp.c", "csr.c")]
_HEADERS = [Path(__file__).with_name("pair_body.h")]
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
    src = b"".join(path.read_bytes() for path in _SOURCES + _HEADERS)
    key = hashlib.sha256(src + " ".join([cc, *flags, platform.machine(), platform.node()]).encode()).hexdigest()[:16]
    out_dir = _cache_dir()
    lib = out_dir / f"v2ht-native-{key}.so"
    tmp = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _trusted(out_dir):
            return None
        if lib.exists():
            return lib if _trusted(lib) else None
        fd, tmp = tempfile.mkstemp(suffix=".so.tmp", dir=out_dir)
        os.close(fd)
        subprocess.run([cc, *flags, "-o", tmp, *map(str, _SOURCES)], check=True, capture_output=True, timeout=120)
        os.chmod(tmp, 0o700)
        os.replace(tmp, lib)  # atomic: a concurrent or killed build leaves no half-written library
        return lib
    except (OSError, subprocess.SubprocessError):  # a read-only home, no space, a compile error
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return None


class _Layer(ctypes.Structure):
    """pair_mlp.c's v2ht_layer."""
    _fields_ = [("k", ctypes.c_int64), ("n", ctypes.c_int64), ("w", ctypes.c_void_p), ("bias", ctypes.c_void_p)]


class _Modality(ctypes.Structure):
    """pair_input.c's v2ht_modality."""
    _fields_ = [(name, ctypes.c_void_p) for name in ("neg_sorted", "pw", "n_inactive", "yd", "c", "ef", "k")] + \
        [(name, ctypes.c_int64) for name in ("t", "c_post_stride", "k_post_stride")]


def step_counts(tab, c: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:
    """k (B, H) int32: for each post and each of H hashtag scores c, the number
    of the post's steps with -a < c, what segment_lookup's searchsorted finds,
    for all hashtags at once: sort c once, then walk each post's steps and the
    sorted scores together (pair_input.c), or, without the C loop, place each
    step among the sorted scores and count by a prefix sum. ``order``:
    torch.argsort(c), where the caller keeps it (c is the model's, the same
    for every batch)."""
    c = c.float().contiguous()
    order = torch.argsort(c) if order is None else order
    ns = tab.neg_sorted
    fn = _steps_fn()
    if fn is not None and ns.dtype == torch.float32 and ns.is_contiguous() and c.device.type == "cpu":
        return _call_steps(fn, ns, c[order].contiguous(), order)
    return _torch_step_counts(ns, c, order)


def _torch_step_counts(ns: torch.Tensor, c: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    b, h = ns.shape[0], c.shape[0]
    at = torch.searchsorted(c[order].contiguous(), ns, right=True)  # (B, T) in [0, H]
    below = torch.zeros(b, h + 1, dtype=torch.int32).scatter_add_(1, at, torch.ones_like(at, dtype=torch.int32))
    k = torch.empty(b, h, dtype=torch.int32)
    k[:, order] = below.cumsum(1, dtype=torch.int32)[:, :h]
    return k


def _call_steps(fn, ns: torch.Tensor, c_sorted: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    b, t = ns.shape
    h = c_sorted.shape[0]
    k = torch.empty(b, h, dtype=torch.int32)
    fn(b, t, h, ns.data_ptr(), c_sorted.data_ptr(), order.data_ptr(), k.data_ptr(),
       max(1, min(torch.get_num_threads(), b)))
    return k


def _steps_fn():
    """pair_input.c's v2ht_step_counts where it agrees with searchsorted on
    random steps with padding and with scores that tie them, are infinite or
    NaN; else None (the torch ops)."""
    if "steps" not in _STATE:
        _STATE["steps"] = None
        lib = _load(True) or _load(False)
        if lib is not None:
            gen = torch.Generator().manual_seed(3)
            ns = torch.sort(torch.randn(7, 12, generator=gen), 1).values
            ns[2, 5:] = float("inf")  # a short post's padding
            c = torch.cat([torch.randn(300, generator=gen), ns[0, :4], ns[2, :2],
                           torch.tensor([float("inf"), float("-inf"), float("nan")])])
            want = torch.searchsorted(ns, c.unsqueeze(0).expand(7, -1).contiguous()).int()
            order = torch.argsort(c)
            if torch.equal(_call_steps(lib.v2ht_step_counts, ns, c[order].contiguous(), order), want):
                _STATE["steps"] = lib.v2ht_step_counts
    return _STATE["steps"]


def _load(fma: bool):
    """The library built with or without FMA contraction (ctypes.CDLL), or None."""
    libs = _STATE.setdefault("libs", {})
    if fma not in libs:
        libs[fma] = None
        cc = os.environ.get("CC") or "cc"
        if os.environ.get("V2HT_NATIVE", "1") == "0" or shutil.which(cc) is None:
            return None
        # a compiler without OpenMP (clang without libomp, say) still gets the loops, on one thread
        path = _build(cc, fma, openmp=True) or _build(cc, fma, openmp=False)
        if path is None:
            return None
        lib = ctypes.CDLL(str(path))
        i64, ptr = ctypes.c_int64, ctypes.c_void_p
        lib.v2ht_pair_input.argtypes = [i64, i64, i64, i64, i64, ctypes.POINTER(_Modality), ptr, i64, ptr, ptr]
        lib.v2ht_pair_input.restype = ctypes.c_int
        lib.v2ht_pair_input_bf16.argtypes = lib.v2ht_pair_input.argtypes
        lib.v2ht_pair_input_bf16.restype = ctypes.c_int
        lib.v2ht_pair_mlp.argtypes = [i64, i64, i64, i64, i64, i64, ctypes.POINTER(_Modality), ptr, i64, ptr, i64,
                                      ctypes.POINTER(_Layer), ptr, i64, i64, ptr]
        lib.v2ht_pair_mlp.restype = ctypes.c_int
        lib.v2ht_pair_mlp_vectors.argtypes = [i64]
        lib.v2ht_pair_mlp_vectors.restype = ctypes.c_int
        lib.v2ht_pair_mlp_amx.argtypes = []
        lib.v2ht_pair_mlp_amx.restype = ctypes.c_int
        lib.v2ht_step_counts.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, i64]
        lib.v2ht_step_counts.restype = None
        lib.v2ht_csr_spmm.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, i64]
        lib.v2ht_csr_spmm.restype = ctypes.c_int
        lib.v2ht_csr_sddmm.argtypes = [i64, i64, i64, ptr, ptr, ptr, ptr, ptr, i64, i64, i64]
        lib.v2ht_csr_sddmm.restype = ctypes.c_int
        libs[fma] = lib
    return libs[fma]


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


def random_tables(gen: torch.Generator, b: int, d: int) -> list:
    """Segment tables of two modalities of random posts (padded, of several
    lengths; one of at most 9 steps, one of at most 2): the probes' data."""
    tables = []
    for t in (9, 2):
        lengths = torch.randint(1, t + 1, (b,), generator=gen)
        mask = torch.arange(t) < lengths.unsqueeze(1)
        z = torch.randn(b, t, d, generator=gen)
        enc = ModalityStates(states=z, mask=mask, lengths=lengths, a=torch.randn(b, t, generator=gen), z=z)
        tab = ModalityEncoder.segment_tables(enc)
        tables.append(tab)
    return tables


def _probe(fn, dtype: torch.dtype = torch.float32) -> bool:
    """Bit-identical to the eager ops (float32; bfloat16: rounded once after
    them) on random posts (padded, of several lengths), with and without a
    user, for shared and per-post hashtags?"""
    gen = torch.Generator().manual_seed(0)
    b, n, d = 3, 37, 64
    tables = random_tables(gen, b, d)
    for shared in (True, False):
        shape = (n,) if shared else (b, n)
        cs = [3 * torch.randn(shape, generator=gen) for _ in tables]
        e_h = torch.randn((1, n, d) if shared else (b, n, d), generator=gen)
        for e_u in (None, torch.randn(b, 1, d, generator=gen)):
            want = eager_input(tables, cs, e_h, e_u, torch.empty(b, n, 2 * d)).to(dtype)
            for ks in ([None, [step_counts(t, c)[:, 5:] for t, c in zip(tables, cs)]] if shared else [None]):
                got = torch.full((b, n - 5 if ks else n, 2 * d), float("nan"), dtype=dtype)
                ok = _call(fn, tables, [c[5:] for c in cs] if ks else cs, e_h[:, 5:] if ks else e_h, e_u, got, ks)
                if not ok or not torch.equal((want[:, 5:] if ks else want).view(torch.int16 if dtype == torch.bfloat16
                                                                                else torch.int32),
                                             got.view(torch.int16 if dtype == torch.bfloat16 else torch.int32)):
                    return False
    return True


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Is the C loop here, and bit-identical to the torch ops, for a p0 of
    ``dtype``? float32: the ops themselves; bfloat16: their float32 result
    rounded once (the bfloat16 MLP's input). The first build (with, then
    without FMA) that is bit-identical in float32 is kept."""
    if "fn" not in _STATE:
        _STATE["fn"] = _STATE["fn_bf16"] = None
        for fma in (True, False):  # torch's own kernels contract to FMA on most CPUs: one build
            lib = _load(fma)
            if lib is not None and _probe(lib.v2ht_pair_input):
                _STATE["fn"] = lib.v2ht_pair_input
                if _probe(lib.v2ht_pair_input_bf16, torch.bfloat16):
                    _STATE["fn_bf16"] = lib.v2ht_pair_input_bf16
                break
    return _fn(dtype) is not None


def _fn(dtype: torch.dtype):
    return {torch.float32: _STATE.get("fn"), torch.bfloat16: _STATE.get("fn_bf16")}.get(dtype)


@contextmanager
def off():
    """Torch ops for every dtype while inside: the path of a machine without
    a compiler, for benchmarks and tests to compare against."""
    available()
    _spmm_fn()
    _sddmm_fn()
    _steps_fn()
    keys = ("fn", "fn_bf16", "spmm", "sddmm", "mlp", "steps")
    saved = [_STATE.get(key) for key in keys]
    _STATE.update(fn=None, fn_bf16=None, spmm=None, sddmm=None, mlp={}, steps=None)
    try:
        yield
    finally:
        _STATE.update(zip(keys, saved))


def _modalities(tables, cs, ks, b: int, n: int, ptr):
    """pair_body.h's v2ht_modality for each table; ``ptr`` keeps what it points to alive."""
    mods = (_Modality * len(tables))()
    for md, tab, c, k in zip(mods, tables, cs, ks or [None] * len(tables)):
        c = c.float()
        # exp(-max(c + top, 0)) as segment_lookup computes it, so bit for bit; in place
        ef = torch.add(c, tab.top).clamp_min_(0).neg_().exp_()
        md.neg_sorted, md.pw, md.n_inactive, md.yd = (ptr(tab.neg_sorted), ptr(tab.pw), ptr(tab.n_inactive),
                                                       ptr(tab.yd))
        md.c, md.ef = ptr(c), ptr(ef.expand(b, n))
        md.t, md.c_post_stride = tab.neg_sorted.shape[1], 0 if c.dim() == 1 else n
        if k is not None:  # a (B, n) view of step_counts' (B, H): rows of stride H
            md.k, md.k_post_stride = ptr(k, contiguous=False), k.stride(0)
    return mods


def _pointers():
    keep = []  # every tensor the C loop reads, alive until it returns

    def ptr(t: torch.Tensor, contiguous: bool = True) -> int:
        t = t.contiguous() if contiguous else t
        keep.append(t)
        return t.data_ptr()

    return ptr


def _threads(pairs: int) -> int:
    return max(1, min(torch.get_num_threads(), pairs // _MIN_SPLIT))


def _call(fn, tables, cs, e_h, e_u, out, ks=None) -> bool:
    b, n = out.shape[:2]
    d = e_h.shape[-1]
    ptr = _pointers()
    mods = _modalities(tables, cs, ks, b, n, ptr)
    return fn(b * n, _threads(b * n), n, len(tables), d, mods, ptr(e_h),
              0 if e_h.shape[0] == 1 else n * d, None if e_u is None else ptr(e_u), out.data_ptr()) == 0


def pair_input(tables: list, cs: list, e_h: torch.Tensor, e_u: torch.Tensor | None,
               out: torch.Tensor, ks: list | None = None) -> torch.Tensor | None:
    """p0 (B, n, M d) into ``out`` (contiguous, on the CPU; float32, or
    bfloat16: the float32 values rounded once) through the C loop, or None
    where it is unavailable or e_h, e_u and the tables' yd are not all
    float32. ``ks``: each modality's step_counts for these hashtags, if
    counted ahead."""
    if out.device.type != "cpu" or not out.is_contiguous() or not available(out.dtype):
        return None
    if not _fits(tables, cs, e_h, e_u, out, ks):
        return None  # the torch ops then raise their own error, if any
    return out if _call(_fn(out.dtype), tables, cs, e_h, e_u, out, ks) else None


def _fits(tables, cs, e_h, e_u, out, ks) -> bool:
    """Every shape and dtype the C loop assumes: it reads raw memory, so a
    mismatch must never reach it."""
    b, n, width = out.shape
    d = e_h.shape[-1]
    dt = torch.float32  # the inputs; out may be bfloat16
    if out.dtype not in (torch.float32, torch.bfloat16) or width != len(tables) * d or e_h.dtype != dt or e_h.shape[:2] not in ((1, n), (b, n)) or e_h.dim() != 3:
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


def _csr_tensor(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n_cols: int) -> torch.Tensor:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, values, (crow.numel() - 1, n_cols), check_invariants=False)


def _csr_fits(crow: torch.Tensor, col: torch.Tensor) -> bool:
    """int32 CSR indices whose row pointers run from 0 to the entries, never
    back: the C loops bound every column themselves, not these."""
    if crow.dtype != torch.int32 or col.dtype != torch.int32 or crow.numel() < 1:
        return False
    if not (crow.is_contiguous() and col.is_contiguous()):
        return False
    return int(crow[0]) == 0 and int(crow[-1]) == col.numel() and not bool((crow[1:] < crow[:-1]).any())


def torch_spmm(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """S @ x through torch.sparse.mm: what csr_spmm must reproduce, and the
    path where it cannot run."""
    return torch.sparse.mm(_csr_tensor(crow, col, values, x.shape[0]), x)


def _random_csr(gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """int32 (crow, col) of n rows: empty rows, short ones and one of 20,000 entries."""
    counts = torch.randint(0, 40, (n,), generator=gen)
    counts[::17] = 0
    counts[5] = 20_000
    crow = torch.zeros(n + 1, dtype=torch.int32)
    crow[1:] = torch.cumsum(counts, 0)
    return crow, torch.randint(0, n, (int(crow[-1]),), generator=gen, dtype=torch.int32)


def _probe_spmm(fn, d: int) -> bool:
    """Bit-identical to torch.sparse.mm on a random CSR matrix with empty rows
    and a 20,000-entry row, at width ``d`` (torch's kernel, and so its order
    of sums, can change with the width and the CPU: on one machine widths
    64, 32 and 7 matched and 16 did not)?"""
    gen = torch.Generator().manual_seed(0)
    n = 400
    crow, col = _random_csr(gen, n)
    vals = torch.rand(col.numel(), generator=gen)
    x = torch.randn(n, d, generator=gen)
    got = torch.full((n, d), float("nan"))
    return _call_spmm(fn, crow, col, vals, x, got) and torch.equal(got, torch_spmm(crow, col, vals, x))


def _per_width(key: str, width: int, find):
    """``find(width)``'s answer, once per width, kept in _STATE[key]; None
    while off()."""
    found = _STATE.setdefault(key, {})
    if found is None:  # off()
        return None
    if width not in found:
        found[width] = find(width)
    return found[width]


def _spmm_fn(d: int = 64):
    """The first build whose loop matches torch.sparse.mm at width ``d``, or
    None; probed once per width."""
    def find(d):
        for fma in (False, True):  # the sum a row at a time, without FMA, is what matched here
            lib = _load(fma)
            if lib is not None and _probe_spmm(lib.v2ht_csr_spmm, d):
                return lib.v2ht_csr_spmm
        return None

    return _per_width("spmm", d, find)


def _call_spmm(fn, crow, col, values, x, out) -> bool:
    n = crow.numel() - 1
    return fn(n, x.shape[0], x.shape[1], crow.data_ptr(), col.data_ptr(), values.data_ptr(), x.data_ptr(),
              out.data_ptr(), torch.get_num_threads()) == 0


def csr_spmm(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
    """S @ x for S in CSR form (int32 crow and col, float32 values, n rows; x
    (n_cols, d) float32) through csr.c, or None where it is unavailable,
    the tensors are not of those forms (it reads raw memory), or an index is
    out of range: the caller then uses torch."""
    if any(t.device.type != "cpu" for t in (crow, col, values, x)):
        return None
    if x.dim() != 2 or x.dtype != torch.float32 or values.dtype != torch.float32 or not values.is_contiguous():
        return None
    if torch.is_grad_enabled() and (x.requires_grad or values.requires_grad):
        return None  # no autograd through the C loop: _CSRMatmul gives the gradients
    if values.numel() != col.numel() or not _csr_fits(crow, col):
        return None
    fn = _spmm_fn(x.shape[1])
    if fn is None:
        return None
    x = x.contiguous()
    out = torch.empty(crow.numel() - 1, x.shape[1])
    return out if _call_spmm(fn, crow, col, values, x, out) else None


def torch_sddmm(crow: torch.Tensor, col: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """csr_sddmm through torch.sparse.sampled_addmm (int64 indices, its faster form)."""
    s = _csr_tensor(crow.long(), col.long(), a.new_zeros(col.numel()), b.shape[0])
    return torch.sparse.sampled_addmm(s, a, b.t(), beta=0.0).values()


def _sddmm_fn(kd: int = 64):
    """(function, lane width, fma) of the first variant bit-identical to
    torch.sparse.sampled_addmm on random data at width ``kd``, or None;
    probed once per width (as for spmm, torch's kernel and the CPU decide
    its order)."""
    def find(kd):
        gen = torch.Generator().manual_seed(1)
        n = 300
        crow, col = _random_csr(gen, n)
        a, b = torch.randn(n, kd, generator=gen), torch.randn(n, kd, generator=gen)
        want = torch_sddmm(crow, col, a, b)
        for fma_build in (False, True):
            lib = _load(fma_build)
            if lib is None:
                continue
            for width in (16, 8):
                for fma in (1, 0):
                    variant = (lib.v2ht_csr_sddmm, width, fma)
                    got = _call_sddmm(variant, crow, col, a, b, nan=True)
                    if got is not None and torch.equal(got, want):
                        return variant
            break  # the variants do not depend on the build's own contraction
        return None

    return _per_width("sddmm", kd, find)


def _call_sddmm(variant, crow, col, a, b, nan: bool = False) -> torch.Tensor | None:
    """``nan``: start from NaN (the probe: an entry the loop missed cannot
    pass for torch's); else from uninitialised memory, as the loop writes
    every entry whenever it returns 0 (filling 3.6M NaNs cost 4.5 ms)."""
    fn, width, fma = variant
    out = torch.full((col.numel(),), float("nan")) if nan else torch.empty(col.numel())
    ok = fn(crow.numel() - 1, b.shape[0], a.shape[1], crow.data_ptr(), col.data_ptr(), a.data_ptr(), b.data_ptr(),
            out.data_ptr(), width, fma, torch.get_num_threads()) == 0
    return out if ok else None


def csr_sddmm(crow: torch.Tensor, col: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    """The values <a[r], b[c]> at S's entries (r, c), S in CSR form with int32
    crow and col; a (rows, k) and b (cols, k) float32. What
    torch.sparse.sampled_addmm(S, a, b.t(), beta=0).values() gives, through
    csr.c; None where it is unavailable or the tensors are not of those forms."""
    if any(t.device.type != "cpu" for t in (crow, col, a, b)):
        return None
    if (a.dim() != 2 or b.dim() != 2 or a.dtype != torch.float32 or b.dtype != torch.float32
            or a.shape[0] != crow.numel() - 1 or a.shape[1] != b.shape[1]):
        return None
    if torch.is_grad_enabled() and (a.requires_grad or b.requires_grad):
        return None
    if not _csr_fits(crow, col):
        return None
    variant = _sddmm_fn(a.shape[1])
    if variant is None:
        return None
    return _call_sddmm(variant, crow, col, a.contiguous(), b.contiguous())
