"""The C tile-input loop (gnn/native.py, gnn/pair_input.c): built with the
machine's C compiler, bit-identical to the torch ops it replaces (so exact
ranks and evaluations do not move), counted-ahead steps equal to
searchsorted's, a full rank identical with and without it, and a library in a
cache others can write is never loaded. fp32 and bf16."""
from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
import torch

from test_model import batch, config, model
from v2ht_kg.gnn import native
from v2ht_kg.gnn.encoders import ModalityEncoder, ModalityStates

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(shutil.which(os.environ.get("CC") or "cc") is None, reason="no C compiler here")]


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A fresh build cache and a fresh load: nothing from an earlier build."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_STATE", {})
    return tmp_path / "cache" / "v2ht-kg" / "native"


def tables(b: int, t: int, d: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=gen)
    z = torch.randn(b, t, d, generator=gen)
    enc = ModalityStates(states=z, mask=torch.arange(t) < lengths.unsqueeze(1), lengths=lengths,
                         a=torch.randn(b, t, generator=gen), z=z)
    return ModalityEncoder.segment_tables(enc)


def test_it_builds_and_matches_torch_bit_for_bit(own_cache):
    assert native.available()
    # one library per float contraction tried, no temporary file left
    assert {p.name.startswith("v2ht-native-") and p.suffix == ".so" for p in own_cache.iterdir()} == {True}
    gen = torch.Generator().manual_seed(1)
    b, n, d = 4, 600, 64  # 2,400 pairs: two threads (one below 2 x 1,024)
    tabs = [tables(b, 40, d, 2), tables(b, 7, d, 3), tables(b, 1, d, 4)]
    cs = [2 * torch.randn(n, generator=gen) for _ in tabs]
    e_h, e_u = torch.randn(1, n, d, generator=gen), torch.randn(b, 1, d, generator=gen)
    torch.set_num_threads(2)
    want = native.eager_input(tabs, cs, e_h, e_u, torch.empty(b, n, 3 * d))
    got = native.pair_input(tabs, cs, e_h, e_u, torch.empty(b, n, 3 * d))
    assert torch.equal(got, want)
    ks = [native.step_counts(t, c) for t, c in zip(tabs, cs)]
    got = native.pair_input(tabs, [c[100:] for c in cs], e_h[:, 100:], e_u, torch.empty(b, n - 100, 3 * d),
                            [k[:, 100:] for k in ks])
    assert torch.equal(got, want[:, 100:])
    # per-post hashtags (the rerank), no user
    cs = [torch.randn(b, n, generator=gen) for _ in tabs]
    e_h = torch.randn(b, n, d, generator=gen)
    assert torch.equal(native.pair_input(tabs, cs, e_h, None, torch.empty(b, n, 3 * d)),
                       native.eager_input(tabs, cs, e_h, None, torch.empty(b, n, 3 * d)))
    # a bfloat16 p0 is the float32 one rounded once, as it is written (NaN,
    # infinities, a denormal and ties to even among the values)
    assert native.available(torch.bfloat16)
    e_u[0, 0, :4] = torch.tensor([float("nan"), float("inf"), 1e-40, 1.0 + 2.0 ** -8])
    want = native.eager_input(tabs, cs, e_h, e_u, torch.empty(b, n, 3 * d)).bfloat16()
    got = native.pair_input(tabs, cs, e_h, e_u, torch.empty(b, n, 3 * d, dtype=torch.bfloat16))
    # (NaN's bits differ between torch's own scalar and vector conversions)
    nan = want.isnan()
    assert torch.equal(got.isnan(), nan) and nan.any()
    assert torch.equal(got.view(torch.int16)[~nan], want.view(torch.int16)[~nan])
    # the inputs stay float32: bfloat16 ones are the torch ops' to take
    tabs = [dataclasses.replace(t, yd=t.yd.bfloat16()) for t in tabs]
    out = torch.empty(b, n, 3 * d, dtype=torch.bfloat16)
    assert native.pair_input(tabs, cs, e_h.bfloat16(), e_u.bfloat16(), out) is None


def test_step_counts_are_what_searchsorted_finds():
    tab = tables(5, 12, 8, 0)
    c = torch.cat([torch.randn(300), tab.neg_sorted[0, :3]])  # ties with a step's score too
    k = native.step_counts(tab, c)
    want = torch.searchsorted(tab.neg_sorted, c.unsqueeze(0).expand(5, -1).contiguous())
    assert k.dtype == torch.int32 and torch.equal(k.long(), want)


def test_a_full_rank_is_the_same_with_and_without_the_c_loop(own_cache, monkeypatch):
    m = model(config(("visual", "acoustic", "text"), "full", n_hashtags=400), 0).eval()
    bt = batch(b=6, n=400)
    assert native.available()
    calls = []
    real_call = native._call
    monkeypatch.setattr(native, "_call", lambda *a, **k: calls.append(a[-1]) or real_call(*a, **k))
    monkeypatch.setitem(native._STATE, "mlp", {})  # tiles take pair_input, not the fused layers
    for bf16 in (False, True):
        calls.clear()
        fast = m.score_all(bt, bf16=bf16)
        assert calls and all(ks is not None for ks in calls)  # the loop ran, with the counted-ahead steps
        with native.off():  # as on a machine without a compiler
            assert torch.equal(fast, m.score_all(bt, bf16=bf16))


def test_no_compiler_means_torch_ops(own_cache, monkeypatch):
    monkeypatch.setenv("CC", "/nonexistent/cc")
    assert not native.available()
    tab = tables(2, 3, 4, 0)
    assert native.pair_input([tab], [torch.randn(5)], torch.randn(1, 5, 4), None, torch.empty(2, 5, 4)) is None


def test_off_by_the_environment(own_cache, monkeypatch):
    monkeypatch.setenv("V2HT_NATIVE", "0")
    assert not native.available()
    assert not own_cache.exists()  # nothing compiled either


def test_a_cache_others_can_write_is_not_trusted(own_cache):
    cc = os.environ.get("CC") or "cc"
    lib = native._build(cc, fma=True, openmp=True)
    assert lib is not None and lib.parent == own_cache
    os.chmod(lib, 0o777)  # as if another user could have replaced it
    assert native._build(cc, fma=True, openmp=True) is None
    os.chmod(lib, 0o700)
    os.chmod(own_cache, 0o777)  # or could write into its folder
    assert native._build(cc, fma=True, openmp=True) is None
    assert native._build(cc, fma=False, openmp=False) is None  # nothing new is built there either
    assert list(own_cache.iterdir()) == [lib]
    os.chmod(own_cache, 0o700)
    assert native._build(cc, fma=True, openmp=True) == lib


def test_a_cache_that_cannot_be_written_means_torch_ops(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # mkdir under a file fails, as on a read-only home
    monkeypatch.setattr(native, "_STATE", {})
    assert not native.available()


def test_a_compiler_without_openmp_still_builds_the_loop(own_cache, tmp_path, monkeypatch):
    real = shutil.which(os.environ.get("CC") or "cc")
    wrapper = tmp_path / "cc-without-openmp"
    wrapper.write_text(f'#!/bin/sh\nfor a in "$@"; do [ "$a" = -fopenmp ] && exit 1; done\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    assert native.available()
    b, n, d = 2, 3000, 8  # enough pairs to ask for two threads
    tab = tables(b, 5, d, 0)
    cs, e_h = [torch.randn(n)], torch.randn(1, n, d)
    torch.set_num_threads(2)
    got = native.pair_input([tab], cs, e_h, None, torch.empty(b, n, d))
    assert torch.equal(got, native.eager_input([tab], cs, e_h, None, torch.empty(b, n, d)))


def test_tensors_the_loop_does_not_expect_take_the_torch_ops(own_cache):
    """The loop reads raw memory: a wrong shape or dtype must never reach it."""
    b, n, d = 2, 6, 4
    tab = tables(b, 3, d, 0)
    c, e_h = torch.randn(n), torch.randn(1, n, d)
    assert native.pair_input([tab], [c], e_h, None, torch.empty(b, n, d)) is not None
    assert native.pair_input([tab], [c], e_h, None, torch.empty(b, n, 2 * d)) is None  # width
    assert native.pair_input([tab], [torch.randn(n + 1)], e_h, None, torch.empty(b, n, d)) is None
    assert native.pair_input([tab], [c], torch.randn(1, n, d + 1), None, torch.empty(b, n, d)) is None
    assert native.pair_input([tab], [c], e_h, torch.randn(b + 1, 1, d), torch.empty(b, n, d)) is None
    assert native.pair_input([tab], [c], e_h.double(), None, torch.empty(b, n, d)) is None
    short = dataclasses.replace(tab, yd=tab.yd[:, :-1])
    assert native.pair_input([short], [c], e_h, None, torch.empty(b, n, d)) is None
    k = native.step_counts(tab, c)
    assert native.pair_input([tab], [c], e_h, None, torch.empty(b, n, d), [k.long()]) is None
    assert native.pair_input([tab], [c[1:]], e_h[:, 1:], None, torch.empty(b, n - 1, d), [k]) is None


def random_csr(n_rows: int, n_cols: int, seed: int, hub: int = 5_000):
    """int32 CSR indices with empty rows and one hub row, as hashtag graphs have."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 30, (n_rows,), generator=gen)
    counts[::7] = 0
    counts[3] = hub
    crow = torch.zeros(n_rows + 1, dtype=torch.int32)
    crow[1:] = torch.cumsum(counts, 0)
    col = torch.randint(0, n_cols, (int(crow[-1]),), generator=gen, dtype=torch.int32)
    return crow, col, gen


@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_products_match_torch_bit_for_bit(own_cache, threads):
    torch.set_num_threads(threads)
    crow, col, gen = random_csr(500, 450, 7)
    vals = torch.rand(col.numel(), generator=gen)
    assert native._spmm_fn(64) is not None  # the hashtag width of the default model
    for d in (64, 32, 16, 5):
        x = torch.randn(450, d, generator=gen)
        got = native.csr_spmm(crow, col, vals, x)
        if native._spmm_fn(d) is None:  # torch sums otherwise at this width here: its own path
            assert got is None, d
        else:
            assert got is not None and torch.equal(got, native.torch_spmm(crow, col, vals, x)), d
    assert native._sddmm_fn(64) is not None
    for d in (64, 32, 48):
        a, b = torch.randn(500, d, generator=gen), torch.randn(450, d, generator=gen)
        got = native.csr_sddmm(crow, col, a, b)
        if native._sddmm_fn(d) is None:  # torch sums otherwise at this width here: its own path
            assert got is None, d
        else:
            assert got is not None and torch.equal(got, native.torch_sddmm(crow, col, a, b)), d


@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_products_over_a_wide_x_in_column_blocks(own_cache, threads):
    """Where x is larger than a core's cache share (over 3 MB) csr.c takes its
    columns a block at a time, each row resuming where the block before left
    it: the same sums in the same order (columns in random order within a row
    included), and an index past the end still refused."""
    torch.set_num_threads(threads)
    n, d = 14_000, 64  # x: 3.6 MB of float32
    crow, col, gen = random_csr(300, n, 9, hub=3_000)
    vals = torch.rand(col.numel(), generator=gen)
    x = torch.randn(n, d, generator=gen)
    a = torch.randn(300, d, generator=gen)
    if native._spmm_fn(d) is not None:
        assert torch.equal(native.csr_spmm(crow, col, vals, x), native.torch_spmm(crow, col, vals, x))
    if native._sddmm_fn(d) is not None:
        assert torch.equal(native.csr_sddmm(crow, col, a, x), native.torch_sddmm(crow, col, a, x))
    bad = col.clone()
    bad[int(crow[150])] = n  # the first entry of a middle row, past the end of x
    assert native.csr_spmm(crow, bad, vals, x) is None and native.csr_sddmm(crow, bad, a, x) is None


def test_sparse_products_refuse_what_they_would_read_out_of_bounds(own_cache):
    crow, col, gen = random_csr(40, 30, 8, hub=50)
    vals, x = torch.rand(col.numel(), generator=gen), torch.randn(30, 64, generator=gen)  # the width probed above
    a, b = torch.randn(40, 8, generator=gen), torch.randn(30, 8, generator=gen)
    assert native.csr_spmm(crow, col, vals, x) is not None and native.csr_sddmm(crow, col, a, b) is not None
    bad = col.clone()
    bad[-1] = 30  # one column past the end of x
    assert native.csr_spmm(crow, bad, vals, x) is None and native.csr_sddmm(crow, bad, a, b) is None
    bad[-1] = -1
    assert native.csr_spmm(crow, bad, vals, x) is None and native.csr_sddmm(crow, bad, a, b) is None
    assert native.csr_spmm(crow.long(), col, vals, x) is None  # int64 indices
    assert native.csr_spmm(crow, col, vals[1:], x) is None  # fewer values than entries
    assert native.csr_spmm(crow, col, vals, x.double()) is None
    short = crow.clone()
    short[-1] -= 1  # row pointers that disagree with the entries
    assert native.csr_spmm(short, col, vals, x) is None and native.csr_sddmm(short, col, a, b) is None
    assert native.csr_sddmm(crow, col, a[1:], b) is None  # a row of a per row of S
    assert native.csr_sddmm(crow, col, a, b[:, 1:]) is None
    assert native.csr_sddmm(crow, col, a, torch.randn(30, 12)) is None  # 12: no lanes of 8 or 16 fit torch's order
    with native.off():
        assert native.csr_spmm(crow, col, vals, x) is None and native.csr_sddmm(crow, col, a, b) is None


def test_propagation_is_the_same_with_and_without_the_sparse_loops(own_cache, monkeypatch):
    from torch_geometric.data import Data

    from v2ht_kg.gnn.propagation import HashtagPropagation

    n = 300
    crow, col, gen = random_csr(n, n, 9, hub=250)
    rows = torch.repeat_interleave(torch.arange(n), (crow[1:] - crow[:-1]).long())
    ei = torch.stack([rows, col.long()])
    graph = Data(edge_index=torch.cat([ei, ei.flip(0)], 1), num_nodes=n)
    graph.edge_type = torch.randint(0, 4, (ei.shape[1],), generator=gen).repeat(2)
    graph.edge_weight = torch.rand(ei.shape[1], generator=gen).repeat(2)
    torch.manual_seed(0)
    prop = HashtagPropagation(64, n, graph)
    emb = torch.nn.Parameter(torch.randn(n, 64, generator=gen) * 0.1)
    gy = torch.randn(n, 64, generator=gen)
    assert native._spmm_fn() is not None and native._sddmm_fn() is not None  # probed before the count
    used = []
    for name in ("_call_spmm", "_call_sddmm"):
        real = getattr(native, name)
        monkeypatch.setattr(native, name, lambda *a, _real=real, _name=name, **k: used.append(_name) or _real(*a, **k))

    def run():
        for p in (emb, *prop.parameters()):
            p.grad = None
        out = prop(emb)
        out.backward(gy)
        return [out.detach()] + [p.grad.clone() for p in (emb, *prop.parameters())]

    torch.set_num_threads(2)
    fast = run()
    assert {"_call_spmm", "_call_sddmm"} <= set(used)  # both loops ran, forward and backward
    with native.off():
        slow = run()
    assert all(torch.equal(f, s) for f, s in zip(fast, slow))
