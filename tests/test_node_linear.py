"""node_linear: oneDNN for propagation's node-wise products where it gives
torch.mm's bits, so training computes the same values with it as without."""
from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from v2ht_kg.gnn import node_linear as nl


@pytest.mark.parametrize("shape", [(3000, 64, 128), (3000, 64, 64), (517, 32, 16)])
def test_values_and_gradients_are_f_linear_s(shape):
    m, k, n = shape
    gen = torch.Generator().manual_seed(0)
    x0, w0, g = torch.randn(m, k, generator=gen), torch.randn(n, k, generator=gen), torch.randn(m, n, generator=gen)
    got, want = [], []
    for fn, out in ((nl.node_linear, got), (F.linear, want)):
        x, w = x0.clone().requires_grad_(True), w0.clone().requires_grad_(True)
        y = fn(x, w)
        y.backward(g)
        out += [y.detach(), x.grad, w.grad]
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_oneDNN_runs_where_it_matches_and_never_where_it_does_not(monkeypatch):
    x, w = torch.randn(600, 64), torch.randn(128, 64)
    calls = []
    real = nl._NodeLinear.apply
    monkeypatch.setattr(nl._NodeLinear, "apply", lambda *a: calls.append(1) or real(*a))
    nl.node_linear(x, w)
    assert calls == [1] or not nl._same_bits(600, 64, 128)  # oneDNN absent or summing otherwise here
    calls.clear()
    monkeypatch.setitem(nl._SAME, (600, 64, 128), False)  # as on a machine where the probe fails
    assert torch.equal(nl.node_linear(x, w), F.linear(x, w)) and not calls
    assert torch.equal(nl.node_linear(x.double(), w.double()), F.linear(x.double(), w.double())) and not calls
    assert torch.equal(nl.node_linear(x.t().contiguous().t(), w), F.linear(x, w)) and not calls  # not contiguous
