"""One optimiser step of V2HT training, with the hashtag side optionally
updated every ``propagate_every`` steps.

Every step of the paper's training propagates the whole hashtag graph
(Eqs. 4-7) and back, although a batch of posts touches a few thousand
hashtags: at INSVIDEO size (3.6M directed edges) that is most of a step.
With ``propagate_every = k > 1`` the hashtag-side parameters (e(h) and the
propagation's weights) form their own Adam and step once every k steps, on
the mean of the k steps' gradients; the rest of the model steps every time.
Because the hashtag side does not change inside a window, e'(h) computed at
the window's first step is exactly what propagation would give at every
step of it: the forward values are not stale. Each step's gradient with
respect to e'(h) is summed, and the window ends with one backward pass
through the propagation. Between updates of the hashtag side the other
parameters move, so it is gradient accumulation with delay for that side
only; k = 1 is the paper's schedule, bit for bit.
"""
from __future__ import annotations

import torch
from torch import nn


def _side_parameters(model: nn.Module) -> list[nn.Parameter]:
    prop = getattr(model, "propagation", None)
    if prop is None:
        return []
    side = [model.hashtag_emb] if model.hashtag_emb.requires_grad else []
    return side + [p for p in prop.parameters() if p.requires_grad]


class Stepper:
    """Adam over ``model``; ``step(batch)`` returns (loss, stepped). ``side_lr``:
    the hashtag side's learning rate when it has its own Adam (default ``lr``)."""

    def __init__(self, model: nn.Module, lr: float, weight_decay: float = 0.0,
                 grad_clip: float | None = 5.0, propagate_every: int = 1, side_lr: float | None = None):
        if propagate_every < 1:
            raise ValueError(f"propagate_every must be >= 1, got {propagate_every}")
        self.model = model
        self.clip = grad_clip or float("inf")
        side = _side_parameters(model) if propagate_every > 1 else []
        self.k = propagate_every if side else 1
        ids = {id(p) for p in side}
        self.main_params = [p for p in model.parameters() if id(p) not in ids]
        self.side_params = side
        self.opt = torch.optim.Adam(self.main_params, lr=lr, weight_decay=weight_decay)
        self.side_opt = torch.optim.Adam(side, lr=side_lr or lr, weight_decay=weight_decay) if side else None
        self._window: tuple[torch.Tensor, torch.Tensor] | None = None  # (e'(h) with graph, its leaf)
        self._done = 0  # steps in the current window

    def step(self, batch) -> tuple[torch.Tensor, bool]:
        model = self.model
        if self.side_opt is not None and self._window is None:
            full = model.propagation(model.hashtag_emb)
            self._window = (full, full.detach().requires_grad_(True))
        model._propagated = self._window[1] if self._window is not None else None
        try:
            loss = model.loss(batch)
        finally:
            model._propagated = None
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.main_params, self.clip)
        ok = bool(torch.isfinite(loss)) and bool(torch.isfinite(norm))
        if ok:
            self.opt.step()
        if self.side_opt is not None:
            self._done += 1
            if self._done >= self.k:
                self.flush()
        return loss, ok

    def flush(self) -> None:
        """End the window: one backward pass through propagation, then the
        hashtag side's step on the window's mean gradient."""
        if self._window is None:
            return
        full, leaf = self._window
        n, self._window, self._done = max(self._done, 1), None, 0
        if leaf.grad is not None:
            full.backward(leaf.grad)
        grads = [p.grad for p in self.side_params if p.grad is not None]
        if grads:
            for g in grads:
                g.div_(n)
            norm = torch.nn.utils.clip_grad_norm_(self.side_params, self.clip)
            if bool(torch.isfinite(norm)):
                self.side_opt.step()
        for p in self.side_params:
            p.grad = None

    def state_dict(self) -> dict:
        st = {"optimizer": self.opt.state_dict()}
        if self.side_opt is not None:
            st["optimizer_side"] = self.side_opt.state_dict()
        return st

    def load_state_dict(self, st: dict) -> None:
        self.opt.load_state_dict(st["optimizer"])
        if self.side_opt is not None:
            self.side_opt.load_state_dict(st["optimizer_side"])
