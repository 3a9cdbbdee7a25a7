"""The training step (gnn/stepper.py): k = 1 is the plain Adam loop; with
k > 1 the hashtag side steps once per window on the mean gradient, and the
forward values inside a window are those of a fresh propagation."""
from __future__ import annotations

import copy

import pytest
import torch

from v2ht_kg.gnn.stepper import Stepper, _side_parameters

from test_model import batch, config, model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batches(n=5):
    return [batch(seed=s) for s in range(1, n + 1)]


def _params(m):
    return {k: v.detach().clone() for k, v in m.named_parameters()}


def _no_dropout(m):
    for mod in m.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0
    return m


def test_one_step_window_is_the_plain_adam_loop():
    a = model(config()).train()
    b = copy.deepcopy(a)
    st = Stepper(a, lr=1e-2, grad_clip=5.0, propagate_every=1)
    opt = torch.optim.Adam(b.parameters(), lr=1e-2)
    for bt in _batches(3):
        torch.manual_seed(7)
        st.step(bt)
        torch.manual_seed(7)
        loss = b.loss(bt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(b.parameters(), 5.0)
        opt.step()
    pa, pb = _params(a), _params(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_window_steps_the_hashtag_side_on_the_mean_gradient():
    k = 3
    a = _no_dropout(model(config())).train()
    ref = copy.deepcopy(a)
    st = Stepper(a, lr=1e-2, grad_clip=None, propagate_every=k)
    side_names = {n for n, p in a.named_parameters() if any(p is q for q in _side_parameters(a))}
    assert "hashtag_emb" in side_names and any(n.startswith("propagation.") for n in side_names)
    main_ref = [p for n, p in ref.named_parameters() if n not in side_names]
    side_ref = [p for n, p in ref.named_parameters() if n in side_names]
    opt_m, opt_s = torch.optim.Adam(main_ref, lr=1e-2), torch.optim.Adam(side_ref, lr=1e-2)
    before = _params(a)
    acc = [torch.zeros_like(p) for p in side_ref]
    for i, bt in enumerate(_batches(k), 1):
        loss, ok = st.step(bt)
        want = ref.loss(bt)  # a fresh propagation: the window's values must equal it
        assert ok and torch.allclose(loss, want, atol=1e-6)
        for p in ref.parameters():
            p.grad = None
        want.backward()
        for g, p in zip(acc, side_ref):
            g += p.grad
        opt_m.step()
        if i < k:  # the hashtag side has not moved inside the window
            now = _params(a)
            assert all(torch.equal(now[n], before[n]) for n in side_names)
    for g, p in zip(acc, side_ref):
        p.grad = g / k
    opt_s.step()
    pa, pr = _params(a), _params(ref)
    for n in pa:
        assert torch.allclose(pa[n], pr[n], atol=1e-5), n
    assert not torch.equal(pa["hashtag_emb"], before["hashtag_emb"])


def test_flush_ends_a_short_window_and_the_state_round_trips():
    a = model(config()).train()
    st = Stepper(a, lr=1e-2, propagate_every=4)
    for bt in _batches(2):
        st.step(bt)
    before = a.hashtag_emb.detach().clone()
    st.flush()
    assert not torch.equal(a.hashtag_emb.detach(), before)
    assert a._propagated is None
    st2 = Stepper(copy.deepcopy(a), lr=1e-2, propagate_every=4)
    st2.load_state_dict(st.state_dict())
    assert st2.side_opt.state_dict()["state"].keys() == st.side_opt.state_dict()["state"].keys()


def test_without_propagation_there_is_no_window():
    m = model(config(variant="wo_p"))
    st = Stepper(m, lr=1e-2, propagate_every=4)
    assert st.k == 1 and st.side_opt is None
    with pytest.raises(ValueError):
        Stepper(m, lr=1e-2, propagate_every=0)
