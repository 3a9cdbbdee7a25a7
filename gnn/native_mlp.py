"""The exact ranking's tile with its MLP fused in (pair_mlp.c).

native.pair_input writes a whole tile's p0 (8k pairs x 192 values, 6 MB in
float32) and the MLP's GEMMs then read it back from memory. pair_mlp.c
builds p0 a few dozen pairs at a time in a per-thread buffer that stays in
cache and multiplies it through the hidden layers there; the logit layer
stays in torch for float32 (MKL's one-column product sums in an order of
its own) and joins the loop for bfloat16. Its sums run in the order of
oneDNN's and MKL's GEMMs at these shapes, so it is used only where a probe
on random data finds the hidden activations (and bfloat16 logits)
bit-identical to p0 through ``torch_hidden`` and ``torch_logit``
(bfloat16: see ``matches``); otherwise the tile takes pair_input and the
torch GEMMs, same results.
"""
from __future__ import annotations

import ctypes

import torch

from . import native

_ONEDNN: dict = {}
DTYPES = (torch.float32, torch.bfloat16)  # the layers'; p0 is built in float32


def onednn_linear(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> torch.Tensor | None:
    """relu?(x @ w.T + bias) through oneDNN's linear on plain tensors (the op
    torch.compile's CPU backend calls), or None where this torch build or
    device has none: the caller then multiplies itself. On this machine's
    AMD CPU, torch.mm's fp32 GEMM (MKL) ran at 196-200 GFLOP/s at the
    scoring MLP's shapes and this one at 446-459, with the same results."""
    if x.device.type != "cpu" or _ONEDNN.get("ok") is False:
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise(x, w, bias, "relu" if relu else "none", [], "")
    except (AttributeError, RuntimeError, NotImplementedError):
        _ONEDNN["ok"] = False
        return None


def torch_hidden(x: torch.Tensor, weights: list) -> torch.Tensor:
    """relu(x @ w + bias) through each hidden layer (w (in, out), bias), as
    PairKernel multiplies them without pair_mlp.c."""
    for w, bias in weights:
        y = onednn_linear(x, w.t().contiguous(), bias, relu=True)
        x = y if y is not None else (x @ w if bias is None else torch.addmm(bias, x, w)).relu_()
    return x


# The order in which oneDNN sums bfloat16 products is not documented and
# depends on the CPU: pair_mlp.c's (VDPBF16PS over the pairs of k
# ascending) matched every activation on a Zen 5 VM, and all but about 2 in
# 100,000 on an Intel CPU with AMX, where oneDNN uses AMX tiles and a
# near-tie between two bfloat16 values rounds the other way: one bfloat16
# step, which later layers carry on. So bfloat16 is compared by ``matches``,
# float32 to the bit.
BF16_DIFFERING = 1e-3  # the most activations in this share may differ


def matches(want: torch.Tensor, got: torch.Tensor) -> bool:
    """float32: bit for bit (NaNs where torch has them). bfloat16: the same
    but for at most BF16_DIFFERING of the values, each within a few
    bfloat16 steps (2^-6 relative to the largest value)."""
    if want.dtype != torch.bfloat16:
        return torch.equal(want, got)
    w, g = want.float(), got.float()
    if not torch.equal(w.isnan(), g.isnan()):
        return False
    w, g = w.nan_to_num(), g.nan_to_num()
    if int((w != g).sum()) > max(1, int(BF16_DIFFERING * w.numel())):
        return False
    return bool(((w - g).abs() <= 2 ** -6 * float(w.abs().max())).all())


def layers(weights: list, dtype: torch.dtype) -> list | None:
    """The hidden layers (w (in, out), bias) in pair_mlp.c's layout: (w
    float32 (in, out), or bfloat16 (in / 2, out, 2); bias float32 or None),
    or None where the loop does not take them."""
    out = []
    for w, bias in weights:
        k, n = w.shape
        if w.dtype != dtype or (bias is not None and (bias.dtype != dtype or bias.shape != (n,))):
            return None
        if dtype == torch.bfloat16:
            if k % 2:
                return None
            w = w.reshape(k // 2, 2, n).transpose(1, 2)
        out.append((w.contiguous(), None if bias is None else bias.float().contiguous()))
    return out or None


def _call(fn, tables, cs, e_h, e_u, packed, out, ks=None, logit=None) -> bool:
    b, n = out.shape[:2]
    d = e_h.shape[-1]
    ptr = native._pointers()
    mods = native._modalities(tables, cs, ks, b, n, ptr)
    lys = (native._Layer * len(packed))()
    for ly, (w, bias) in zip(lys, packed):
        ly.k, ly.n = w.shape[0] * (2 if w.dim() == 3 else 1), w.shape[1]
        ly.w, ly.bias = ptr(w), None if bias is None else ptr(bias)
    bf16 = packed[0][0].dtype == torch.bfloat16
    lw, biased = logit if logit is not None else (None, False)
    return fn(int(bf16), b * n, native._threads(b * n), n, len(tables), d, mods, ptr(e_h),
              0 if e_h.shape[0] == 1 else n * d, None if e_u is None else ptr(e_u), len(packed), lys,
              None if lw is None else ptr(lw), 0 if lw is None else 1 + biased,
              n if lw is None else out.stride(0), out.data_ptr()) == 0


def logit_layer(w: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, bool]:
    """The logit layer (w (k, 1), bias (1,) or None) in pair_mlp.c's layout:
    the k weights, then the bias, in one contiguous array; and whether
    there is a bias."""
    flat = w.reshape(-1)
    return (torch.cat([flat, bias.reshape(-1)]) if bias is not None else flat.contiguous()), bias is not None


def _probe(fn, dtype: torch.dtype) -> bool:
    """pair_mlp.c's hidden activations bit-identical to eager_input then
    torch_hidden, on random posts, weights of widths that take the vector
    path and ones that do not, with and without a user and biases? The
    inputs and p0 are float32 (rounded once to bfloat16 for bfloat16
    layers, as PairKernel rounds them)."""
    gen = torch.Generator().manual_seed(2)
    b, n, d = 3, 41, 64  # 123 pairs: two full blocks of 48 and a part
    tables = native.random_tables(gen, b, d)
    for widths, biased in (((64, 48), True), ((20, 16), False)):
        weights, k = [], 2 * d
        for width in widths:
            w = (torch.randn(k, width, generator=gen) / k ** 0.5).to(dtype)
            weights.append((w, (0.1 * torch.randn(width, generator=gen)).to(dtype) if biased else None))
            k = width
        packed = layers(weights, dtype)
        cs = [3 * torch.randn(n, generator=gen) for _ in tables]
        e_h = torch.randn(1, n, d, generator=gen)
        for e_u in (None, torch.randn(b, 1, d, generator=gen)):
            p0 = native.eager_input(tables, cs, e_h, e_u, torch.empty(b, n, 2 * d)).to(dtype)
            want = torch_hidden(p0.view(b * n, -1), weights).view(b, n, -1)
            got = torch.full((b, n, widths[-1]), float("nan"), dtype=dtype)
            if packed is None or not _call(fn, tables, cs, e_h, e_u, packed, got) or not matches(want, got):
                return False
            if dtype == torch.bfloat16:  # the logit layer too, which the loop takes for bfloat16
                lw = (torch.randn(widths[-1], 1, generator=gen) / widths[-1] ** 0.5).to(dtype)
                lb = (0.1 * torch.randn(1, generator=gen)).to(dtype) if biased else None
                want_l = torch_logit(want.view(b * n, -1), lw, lb).view(b, n)
                got_l = torch.full((b, n), float("nan"))
                if not _call(fn, tables, cs, e_h, e_u, packed, got_l, logit=logit_layer(lw, lb)) or \
                        not matches(want_l.bfloat16(), got_l.bfloat16()):
                    return False
    return True


def torch_logit(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Eq. 16's logit of hidden activations x (pairs, k) with w (k, 1), in
    x's dtype (bfloat16: rounded after the product and after the bias), as
    float32."""
    logit = (x @ w).view(-1)
    return (logit if bias is None else logit + bias).float()


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Is pair_mlp.c here, with its register tiles for ``dtype`` (AVX-512;
    AVX512-BF16 for bfloat16), and bit-identical to the torch path? It comes
    in the library whose pair_input passed native's probe."""
    if native._STATE.get("mlp") is None:
        found = {}
        if native.available():
            for fma in (True, False):
                lib = native._load(fma)
                for dt in DTYPES:
                    ok = lib is not None and native._STATE["fn"] == lib.v2ht_pair_input
                    # without its register tiles (no AVX-512) the loop is slower than torch's GEMMs
                    ok = ok and lib.v2ht_pair_mlp_vectors(int(dt == torch.bfloat16)) == 1
                    if dt not in found and ok and _probe(lib.v2ht_pair_mlp, dt):
                        found[dt] = lib.v2ht_pair_mlp
                        if dt == torch.bfloat16:  # the probe ran on AMX tiles where this is true
                            native._STATE["amx_tiles"] = bool(lib.v2ht_pair_mlp_amx())
        native._STATE["mlp"] = found
    return native._STATE["mlp"].get(dtype) is not None


def amx() -> bool:
    """Has this CPU AMX tiles? torch's bfloat16 GEMMs (oneDNN's) then run on
    them."""
    f = getattr(torch.cpu, "_is_amx_tile_supported", None)
    try:
        return bool(f()) if f is not None else False
    except RuntimeError:
        return False


def amx_tiles() -> bool:
    """Will pair_mlp.c run bfloat16 layers on AMX tiles? (Built with them,
    the kernel lends this process their state, and the probe passed there.)"""
    return available(torch.bfloat16) and native._STATE.get("amx_tiles", False)


def tile_shapes(weights: list) -> bool:
    """Do the hidden layers (w (in, out), bias) fit pair_mlp.c's AMX tiles
    (in and out multiples of 32)? Other widths take its VDPBF16PS register
    tiles."""
    return all(w.shape[0] % 32 == 0 and w.shape[1] % 32 == 0 for w, _ in weights)


def wanted(dtype: torch.dtype = torch.float32, weights: list | None = None) -> bool:
    """``available`` and faster than the alternative. Without AMX, always.
    With AMX, torch's bfloat16 GEMMs (oneDNN's, on AMX tiles) on the C
    loop's p0 ran the bench's full rank 2.1x faster (712 against 337
    posts/s) than the VDPBF16PS register tiles, so there bfloat16 takes
    this loop only on its own AMX tiles, for hidden layers (``weights``,
    when given) of widths they take: there it sums as oneDNN does (the same
    scores), and ran the bench's full rank 11-19% faster than the unfused
    tile (docs/benchmarks.md)."""
    if not available(dtype) or dtype == torch.float32 or not amx():
        return available(dtype)
    return amx_tiles() and (weights is None or tile_shapes(weights))


def pair_mlp(tables: list, cs: list, e_h: torch.Tensor, e_u: torch.Tensor | None, packed: list,
             out: torch.Tensor, ks: list | None = None, logit: tuple | None = None) -> torch.Tensor | None:
    """The last hidden layer's activation (B, n, width) for every pair into
    ``out``, through pair_mlp.c; ``packed`` from ``layers``, in out's dtype;
    the tables, e_h and e_u float32 (p0 is built in float32, and rounded
    once for bfloat16 layers). With ``logit`` (``logit_layer``'s; bfloat16
    layers only) each pair's logit instead, float32 (B, n) (rows of any
    stride: the columns of a wider table), as ``torch_logit`` gives it. None
    where the loop is unavailable for the layers' dtype or the tensors are
    not what it reads: the caller then runs pair_input and the torch GEMMs."""
    dt = packed[0][0].dtype if packed else out.dtype
    if out.device.type != "cpu" or dt not in DTYPES or not available(dt):
        return None
    # logits may go into the columns of a wider (B, H) table in place: rows of any stride
    strided = logit is not None and out.dim() == 2 and out.stride(1) == 1 and out.stride(0) >= out.shape[1]
    if not (out.is_contiguous() or strided):
        return None
    if logit is not None:
        lw, biased = logit
        width = lw.numel() - biased
        if dt != torch.bfloat16 or out.dtype != torch.float32 or out.dim() != 2 or lw.dtype != dt or \
                not lw.is_contiguous() or width != packed[-1][0].shape[1]:
            return None
        b, n = out.shape
    else:
        if out.dtype != dt or out.dim() != 3:
            return None
        b, n, width = out.shape
    d = e_h.shape[-1]
    if not packed or packed[0][0].shape[0] * (2 if dt == torch.bfloat16 else 1) != len(tables) * d:
        return None
    if packed[-1][0].shape[1] != width or any(w.dtype != dt for w, _ in packed):
        return None
    p0 = torch.empty(b, n, len(tables) * d, device="meta")  # the shape native's checks expect
    if not native._fits(tables, cs, e_h, e_u, p0, ks):
        return None
    return out if _call(native._STATE["mlp"][dt], tables, cs, e_h, e_u, packed, out, ks, logit) else None
