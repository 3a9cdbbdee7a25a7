"""The exact ranking's tile with its hidden layers fused in (gnn/pair_mlp.c,
gnn/native_mlp.py): the last hidden activation bit-identical to p0 through
torch's own linears (oneDNN's, else MKL's) in float32, and the same but for
rare near-ties in bfloat16 (p0 built in float32, rounded once; see
native_mlp.matches), at one and two threads, for widths the vector path
takes and ones it does not; anything it would misread is refused; a full
rank is the same with and without it."""
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
    hashtags with their counted-ahead steps, a user (all float32), and
    hidden layers in ``dtype``."""
    gen = torch.Generator().manual_seed(seed)
    tabs = native.random_tables(gen, b, d) + native.random_tables(gen, b, d)[:1]
    cs = [3 * torch.randn(n, generator=gen) for _ in tabs]
    ks = [native.step_counts(t, c) for t, c in zip(tabs, cs)]
    e_h = torch.randn(1, n, d, generator=gen)
    e_u = torch.randn(b, 1, d, generator=gen)
    weights, k = [], 3 * d
    for width in widths:
        w = (torch.randn(k, width, generator=gen) / k ** 0.5).to(dtype)
        weights.append((w, (0.1 * torch.randn(width, generator=gen)).to(dtype) if bias else None))
        k = width
    return tabs, cs, ks, e_h, e_u, weights


def want(tabs, cs, e_h, e_u, weights):
    b, n, d = tabs[0].yd.shape[0], e_h.shape[1], e_h.shape[-1]
    p0 = native.eager_input(tabs, cs, e_h, e_u, torch.empty(b, n, len(tabs) * d)).to(weights[0][0].dtype)
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
        assert got is not None and native_mlp.matches(expect, got), widths
        # without the counted-ahead steps (the rerank's per-post binary search) and without a user
        no_user = want(tabs, cs, e_h, None, weights)
        got = native_mlp.pair_mlp(tabs, cs, e_h, None, native_mlp.layers(weights, dtype), out.clone())
        assert got is not None and native_mlp.matches(no_user, got), widths


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
    assert native_mlp.pair_mlp(tabs, cs, e_h.bfloat16(), e_u, packed, out, ks) is None  # the input is float32
    with native.off():
        assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, out, ks) is None


# the test model's widths, and ones AMX tiles take (inputs 3 x 32 = 96, outputs 64 and 32)
@pytest.mark.parametrize("widths", [{}, {"d_hashtag": 32, "d_common": 32, "mlp_hidden": (64, 32)}])
def test_a_full_rank_is_the_same_with_and_without_the_fused_layers(own_cache, monkeypatch, widths):
    m = model(config(("visual", "acoustic", "text"), "full", n_hashtags=400, **widths), 0).eval()
    bt = batch(b=6, n=400)
    calls = []
    real = native_mlp._call
    monkeypatch.setattr(native_mlp, "_call", lambda *a, **k: calls.append(1) or real(*a, **k))
    hidden = [(lin.weight.t(), None) for lin in m.mlp if isinstance(lin, torch.nn.Linear)][:-1]
    for bf16 in (False, True):
        # bf16 with AMX: the loop's AMX tiles for widths they take, else torch's GEMMs
        if not native_mlp.wanted(torch.bfloat16 if bf16 else torch.float32, hidden):
            continue
        calls.clear()
        fast = m.score_all(bt, bf16=bf16)
        assert calls  # the fused loop ran
        with native.off():
            slow = m.score_all(bt, bf16=bf16)
        if bf16:  # near-ties may round the other way (native_mlp.matches): a rare score moves a little
            assert int((fast != slow).sum()) <= 0.01 * fast.numel()
            assert torch.allclose(fast, slow, rtol=0.05, atol=0.05 * float(slow.abs().max()))
        else:
            assert torch.equal(fast, slow)


def test_denormal_and_nan_inputs_are_torchs(own_cache):
    """p0 among the denormals, and a NaN, as torch's ops give them."""
    tabs, cs, ks, e_h, _, _ = case(torch.float32, (64, 32), b=4, n=60)
    e_h = e_h * 1e-38  # p0 = e~ * e_h: down among the denormals
    e_h[0, 7, 2] = float("nan")
    for e_u in (None, torch.zeros(4, 1, 64)):
        expect = native.eager_input(tabs, cs, e_h, e_u, torch.empty(4, 60, 3 * 64))
        got = native.pair_input(tabs, cs, e_h, e_u, torch.full_like(expect, 7.0), ks)
        assert got is not None
        nan = expect.isnan()
        assert bool(nan.any()) and torch.equal(got.isnan(), nan)
        # to the bit elsewhere; a NaN's payload is not compared
        assert torch.equal(got.view(torch.int32)[~nan], expect.view(torch.int32)[~nan])
        tiny = expect.abs()
        assert bool(((tiny < 1.1754944e-38) & (tiny > 0)).any())  # denormals were there


def test_bf16_layers_round_denormal_inputs_as_torch(own_cache):
    """p0 is rounded to bfloat16 by VCVTNEPS2BF16, which flushes denormals;
    blocks holding one must round as torch's .to(bfloat16). (What a NaN
    becomes after a ReLU is the GEMM library's choice, and differs between
    its kernels, so none is fed here.)"""
    if not native_mlp.available(torch.bfloat16):
        pytest.skip("no bfloat16 register tiles here (no AVX512-BF16?)")
    tabs, cs, ks, e_h, _, weights = case(torch.bfloat16, (64, 32), b=4, n=60)
    e_h = e_h * 1e-38  # p0 = e~ * e_h: down among the denormals
    assert bool(((e_h.abs() < 1.1754944e-38) & (e_h != 0)).any())
    # weights near 1e36 lift the denormals back among the normal values, so a
    # flushed one changes the result
    big = [(torch.full_like(w, 1e38 / w.shape[0]).bfloat16(), None) for w, _ in weights[:1]]
    expect = want(tabs, cs, e_h, None, big)
    got = native_mlp.pair_mlp(tabs, cs, e_h, None, native_mlp.layers(big, torch.bfloat16),
                              torch.full_like(expect, 7.0), ks)
    assert got is not None and native_mlp.matches(expect, got)
    assert bool((expect != 0).any())
    with native.off():  # what flushing them would give: nothing left
        flushed = want(tabs, cs, torch.zeros_like(e_h), None, big)
    assert not native_mlp.matches(flushed, got)


def test_bf16_matching_refuses_what_is_more_than_a_near_tie():
    want = torch.linspace(0.0, 4.0, 5000).bfloat16()
    assert native_mlp.matches(want, want.clone())
    one = want.clone()
    one[10] += 0.02  # a step or two up
    assert native_mlp.matches(want, one)
    many = want.clone()
    many[::100] += 0.02  # 1 in 100 differ
    assert not native_mlp.matches(want, many)
    far = want.clone()
    far[10] += 1.0
    assert not native_mlp.matches(want, far)
    nan = want.clone()
    nan[3] = float("nan")
    assert not native_mlp.matches(want, nan)
    assert not native_mlp.matches(want.float(), one.float())  # float32: to the bit


@pytest.mark.parametrize("threads", [1, 2])
def test_amx_tiles_sum_as_onednn_does(own_cache, threads):
    """Where the loop runs bfloat16 layers on AMX tiles, oneDNN's bfloat16
    GEMMs run on them too, and sum in the same order: the same bits, not
    only ``matches``."""
    torch.set_num_threads(threads)
    if not native_mlp.amx_tiles():
        pytest.skip("no AMX tiles here (or the kernel does not lend them)")
    for widths, bias in (((64, 32), True), ((128, 64, 32), False), ((32,), True)):
        tabs, cs, ks, e_h, e_u, weights = case(torch.bfloat16, widths, bias=bias, seed=len(widths))
        assert native_mlp.tile_shapes(weights)
        expect = want(tabs, cs, e_h, e_u, weights)
        got = native_mlp.pair_mlp(tabs, cs, e_h, e_u, native_mlp.layers(weights, torch.bfloat16),
                                  torch.full(expect.shape, float("nan"), dtype=torch.bfloat16), ks)
        assert got is not None and torch.equal(expect, got), widths


@pytest.mark.parametrize("threads", [1, 2])
def test_bf16_logits_are_torchs(own_cache, threads):
    """The loop's logit layer (bfloat16 layers) gives what torch_logit gives
    on the hidden activations: the same bits where it sums as oneDNN does
    (each row in one lane, the pairs of k in order), at most near-ties
    elsewhere; a width the loop cannot take is refused."""
    torch.set_num_threads(threads)
    if not native_mlp.available(torch.bfloat16):
        pytest.skip("no bfloat16 register tiles here (no AVX512-BF16?)")
    gen = torch.Generator().manual_seed(5)
    # a last width of 48: its 24 pairs of k in two passes of the loop's 16 x 16 transposes
    for widths, bias in (((64, 32), True), ((64, 32), False), ((48, 20), True), ((64, 48), True)):
        tabs, cs, ks, e_h, e_u, weights = case(torch.bfloat16, widths, bias=bias, n=500)
        packed = native_mlp.layers(weights, torch.bfloat16)
        hidden = want(tabs, cs, e_h, e_u, weights)
        lw = (torch.randn(widths[-1], 1, generator=gen) / 4).bfloat16()
        lb = torch.tensor([0.3]).bfloat16() if bias else None
        expect = native_mlp.torch_logit(hidden.view(-1, widths[-1]), lw, lb).view(hidden.shape[:2])
        got = native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, torch.full(expect.shape, float("nan")), ks,
                                  logit=native_mlp.logit_layer(lw, lb))
        assert got is not None and got.dtype == torch.float32
        assert native_mlp.matches(expect.bfloat16(), got.bfloat16()), widths
        if native_mlp.amx_tiles() and native_mlp.tile_shapes(weights):
            assert torch.equal(expect, got), widths
        # into the columns of a wider table in place (the full rank's): the same
        # logits there, and nothing written beside them
        wide = torch.full((expect.shape[0], expect.shape[1] + 7), float("nan"))
        cols = wide[:, 3:3 + expect.shape[1]]
        assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, cols, ks, logit=native_mlp.logit_layer(lw, lb)) is cols
        assert torch.equal(cols, got), widths
        assert wide[:, :3].isnan().all() and wide[:, 3 + expect.shape[1]:].isnan().all()
    tabs, cs, ks, e_h, e_u, weights = case(torch.bfloat16, (64, 32), n=50)
    packed = native_mlp.layers(weights, torch.bfloat16)
    out = torch.empty(8, 50)
    odd, fp32 = (native_mlp.logit_layer(w, None) for w in (torch.randn(31, 1).bfloat16(), torch.randn(32, 1)))
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, out, ks, logit=odd) is None
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, out, ks, logit=fp32) is None
    assert native_mlp.pair_mlp(tabs, cs, e_h, e_u, packed, out.bfloat16(), ks,
                               logit=native_mlp.logit_layer(torch.randn(32, 1).bfloat16(), None)) is None
