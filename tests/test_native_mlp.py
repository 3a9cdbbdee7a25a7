"""The exact ranking's tile with its hidden layers fused in (gnn/pair_mlp.c,
gnn/native_mlp.py): the last hidden activation bit-identical to p0 through
torch's own linears (oneDNN's, else MKL's), at one and two threads, in
float32 and bfloat16, for widths the vector path takes and ones it does
not; anything it would misread is refused; a full rank is the same with
and without it."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from test_model import batch, config, model
from test_native import own_cache  # noqa: F401  (a fixture)
from v2ht_kg.gnn import native, native_mlp

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None, reason="no C compiler here")]

DTYPES = [torch.float32, torch.bfloat16]


def case(dtype, widths, *, b=8, n=400, d=64, bias=True, seed=0):
    """Three modalities' tables (the probe's two and one more), shared
    hashtags with their counted-ahead steps, a user, and hidden layers."""
    gen = torch.Generator().manual_seed(seed)
    tabs = native.random_tables(gen, b, d, dtype) + native.random_tables(gen, b, d, dtype)[:1]
    cs = [3 * torch.randn(n, generator=gen) for _ in tabs]
    ks = [native.step_counts(t, c) for t, c in zip(tabs, cs)]
    e_h = torch.randn(1, n, d, generator=gen).to(dtype)
    e_u = torch.randn(b, 1, d, generator=gen).to(dtype)
    weights, k = [], 3 * d
    for width in widths:
        w = (torch.randn(k, width, generator=gen) / k ** 0.5).to(dtype)
        weights.append((w, (0.1 * torch.randn(width, generator=gen)).to(dtype) if bias else None))
        k = width
    return tabs, cs, ks, e_h, e_u, weights


def want(tabs, cs, e_h, e_u, weights):
    b, n, d = tabs[0].yd.shape[0], e_h.shape[1], e_h.shape[-1]
    p0 = native.eager_input(tabs, cs, e_h, e_u, torch.empty(b, n, len(tabs) * d, dtype=e_h.dtype))
    return native_mlp.torch_hidden(p0.view(b * n, -1), weights).view(b, n, -1)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_layers_match_torch_bit_for_bit(own_cache, threads, dtype):
    torch.set_num_threads(threads)
    if dtype == torch.bfloat16 and not native_mlp.available(dtype):
        pytest.skip("bfloat16 GEMMs here sum in another order (no AVX512-BF16?)")
    assert native_mlp.available(torch.float32)
    for widths, bias in (((64, 32), True), ((48,), False), ((64, 20), True)):  # 20: not a whole vector
        tabs, cs, ks, e_h, e_u, weights = case(dtype, widths, bias=bias)
        expect = want(tabs, cs, e_h, e_u, weights)
        out = torch.full(expect.shape, float("nan"), dtype=dtype)
        got = native_mlp.pair_mlp(tabs, cs, e_h, e_u, native_mlp.layers(weights, dtype), out, ks)
        assert got is not None and torch.equal(got, expect), widths
        # without the counted-ahead steps (the rerank's per-post binary search) and without a user
        no_user = want(tabs, cs, e_h, None, weights)
        got = native_mlp.pair_mlp(tabs, cs, e_h, None, native_mlp.layers(weights, dtype), out.clone())
        assert got is not None and torch.equal(got, no_user), widths


def test_what_it_would_misread_is_refused(own_cache):
    tabs, cs, ks, e_h, e_u, weights = case(torch.float32, (64, 32), b=2, n=30)
    packed = native_mlp.layers(weights, torch.float32)
    out = torch.empty(2, 30, 32)
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, out, ks) is not None
    assert native_mlp.pair_mlp(tabs[:2], cs[:2], e_h, e_u, packed, out, ks[:2]) is None  # 2 modalities, 3 d wide
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed[::-1], out, ks) is None  # layers that do not chain
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, torch.empty(2, 30, 64), ks) is None  # out's width
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, torch.empty(2, 30, 32, dtype=torch.bfloat16), ks) is None
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, torch.empty(2, 31, 32), ks) is None  # pairs
    assert native_mlp.pair_mlp(tabs, cs, e_h[:, 1:], e_u, packed, torch.empty(2, 29, 32), ks) is None
    odd = [(torch.randn(191, 64).bfloat16(), None)]
    assert native_mlp.layers(odd, torch.bfloat16) is None  # VDPBF16PS takes k in pairs
    assert native_mlp.layers(weights, torch.bfloat16) is None  # float32 weights for bfloat16 tiles
    with native.off():
        assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, out, ks) is None


def test_a_full_rank_is_the_same_with_and_without_the_fused_layers(own_cache, monkeypatch):
    m = model(config(("visual", "acoustic", "text"), "full", n_hashtags=400), 0).eval()
    bt = batch(b=6, n=400)
    calls = []
    real = native_mlp._call
    monkeypatch.setattr(native_mlp, "_call", lambda *a, **k: calls.append(1) or real(*a, **k))
    for bf16 in (False, True):
        if not native_mlp.available(torch.bfloat16 if bf16 else torch.float32):
            continue
        calls.clear()
        fast = m.score_all(bt, bf16=bf16)
        assert calls  # the fused loop ran
        with native.off():
            assert torch.equal(fast, m.score_all(bt, bf16=bf16))


@pytest.mark.parametrize("dtype", DTYPES)
def test_denormal_and_nan_values_keep_torchs_rounding(own_cache, dtype):
    """The bf16 input rounds with VCVTNEPS2BF16, which flushes denormals;
    vectors holding one (or a NaN) must take torch's rounding."""
    tabs, cs, ks, e_h, _, _ = case(dtype, (64, 32), b=4, n=60)
    e_h = (e_h.float() * 1e-38).to(dtype)  # p0 = e~ * e_h: down among the denormals
    e_h[0, 7, 2] = float("nan")
    for e_u in (None, torch.zeros(4, 1, 64, dtype=dtype)):
        expect = native.eager_input(tabs, cs, e_h, e_u, torch.empty(4, 60, 3 * 64, dtype=dtype))
        got = native.pair_input(tabs, cs, e_h, e_u, torch.full_like(expect, 7.0), ks)
        assert got is not None
        bits = torch.int16 if dtype == torch.bfloat16 else torch.int32
        nan = expect.isnan()
        assert bool(nan.any()) and torch.equal(got.isnan(), nan)
        # to the bit elsewhere; a NaN's payload is torch's own choice by code path
        # (its vector bf16 rounding writes 0xFFFF, its scalar one 0x7FC0), and so not compared
        assert torch.equal(got.view(bits)[~nan], expect.view(bits)[~nan])
        tiny = expect.float().abs()
        assert bool(((tiny < 1.1754944e-38) & (tiny > 0)).any())  # denormals were there
