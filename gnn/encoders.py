"""Micro-video encoder (paper §3.3) and user encoder (§3.4).

Per modality: an LSTM over the feature sequence (Eq. 8), attention pooling
conditioned on the candidate hashtag (Eqs. 9-11) and a map into the common
space (Eq. 12).

* Eq. 9 is implemented literally: W_att is 1 x hidden and U_att is 1 x d_D,
  so theta(n, j) = ReLU(a_n + c_j) with a scalar a_n = W_att s_n + b_att per
  step and a scalar c_j = U_att e'(h_j) per hashtag. The hashtag enters only
  through c_j, which is what makes exact scoring of every hashtag affordable
  (see ``pool_all``).
* f_map (Eq. 12) is affine: Linear(hidden -> d_F), followed, when d_F differs
  from d_D, by a shared Linear(d_F -> d_D) without bias, because Eq. 14
  multiplies the common-space vector element-wise with e(h) and e(u). An
  affine map commutes with a convex combination, so every step is mapped once
  (z_n = f_map(s_n)) and the attention pools the mapped steps; this equals
  f_map(sum_n alpha_n s_n) exactly. The non-linearity of the model sits in the
  Bi-Interaction products and the hidden layers (Eq. 15).
* Padding: the LSTM runs over the zero-padded sequence and the attention masks
  the steps after each length. The LSTM is unidirectional, so states at valid
  steps do not depend on the padding; this avoids packing, which costs more
  than it saves on CPU at these lengths.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ModalityStates:
    """One modality of a batch of posts, encoded once and reused for every candidate."""

    states: torch.Tensor  # (B, T, hidden) LSTM outputs s_n
    mask: torch.Tensor  # (B, T) bool, True on valid steps
    lengths: torch.Tensor  # (B,) long
    a: torch.Tensor  # (B, T) step part of Eq. 9: W_att s_n + b_att
    z: torch.Tensor  # (B, T, d_D) f_map(s_n)


def masked_attention(a: torch.Tensor, mask: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """alpha (B, K, T) of Eqs. 9-10 for step scores a (B, T) and hashtag scores c (B, K)."""
    theta = torch.relu(a.unsqueeze(1) + c.unsqueeze(2))
    theta = theta.masked_fill(~mask.unsqueeze(1), float("-inf"))
    return torch.softmax(theta, dim=-1)


class ModalityEncoder(nn.Module):
    def __init__(self, input_dim: int, hidden: int, d_common: int, d_hashtag: int):
        super().__init__()
        self.lstm = nn.LSTM(input_dim, hidden, batch_first=True)
        self.att_step = nn.Linear(hidden, 1)  # W_att, b_att
        self.att_tag = nn.Linear(d_hashtag, 1, bias=False)  # U_att
        self.f_map = nn.Linear(hidden, d_common)
        self.to_hashtag = nn.Identity() if d_common == d_hashtag else nn.Linear(d_common, d_hashtag, bias=False)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> ModalityStates:
        states, _ = self.lstm(x)
        steps = torch.arange(x.shape[1], device=x.device)
        mask = steps.unsqueeze(0) < lengths.unsqueeze(1)
        a = self.att_step(states).squeeze(-1)
        z = self.to_hashtag(self.f_map(states))
        return ModalityStates(states, mask, lengths, a, z)

    def tag_scores(self, emb: torch.Tensor) -> torch.Tensor:
        """c_j = U_att e'(h_j) for every hashtag: (H, d) -> (H,)."""
        return self.att_tag(emb).squeeze(-1)

    @staticmethod
    def pool(enc: ModalityStates, c: torch.Tensor) -> torch.Tensor:
        """e~(x^m) (B, K, d_D) for per-candidate hashtag scores c (B, K): Eqs. 9-12 literally."""
        return torch.bmm(masked_attention(enc.a, enc.mask, c), enc.z)

    @staticmethod
    def segment_tables(enc: ModalityStates) -> "SegmentTables":
        """Per-post tables that make the pooled vector of *every* hashtag cheap.

        With theta_n = ReLU(a_n + c) the steps with a_n > -c ("active") get
        weight exp(a_n + c) and the others exp(0) = 1. Sorted by a_n, the
        active steps form a prefix whose length k a binary search finds. With
        X_k the exp(a)-weighted mean of the k active mapped steps and Y_k the
        plain mean of the L - k inactive ones, the pooled vector is
            Y_k + lam (X_k - Y_k),  lam = e^c S_k / (e^c S_k + L - k),  S_k = sum_{r<k} e^{a_r}
        so each (post, hashtag) pair costs O(log T + d) instead of O(T d).
        """
        a = enc.a.float().masked_fill(~enc.mask, float("-inf"))
        sa, order = torch.sort(a, dim=1, descending=True)
        b, t, d = enc.z.shape
        valid = enc.mask.gather(1, order).unsqueeze(-1)
        zs = enc.z.float().gather(1, order.unsqueeze(-1).expand(-1, -1, d)) * valid
        top = sa[:, :1]  # (B, 1), finite because every length is >= 1
        w = torch.exp(sa - top)  # exactly 0 on padding
        zero = zs.new_zeros(b, 1, d)
        pu = torch.cat([zero, torch.cumsum(w.unsqueeze(-1) * zs, 1)], 1)  # (B, T+1, d)
        pw = torch.cat([zero[..., 0], torch.cumsum(w, 1)], 1)  # (B, T+1) = S_k e^{-top}
        sv = torch.cat([torch.flip(torch.cumsum(torch.flip(zs, [1]), 1), [1]), zero], 1)  # suffix sums
        n_inactive = (enc.lengths.unsqueeze(1) - torch.arange(t + 1, device=a.device)).clamp_min(0)
        x = pu / pw.clamp_min(1e-30).unsqueeze(-1)  # k = 0: no active step, x unused (lam = 0)
        y = torch.where((n_inactive > 0).unsqueeze(-1), sv / n_inactive.clamp_min(1).unsqueeze(-1), x)
        return SegmentTables(neg_sorted=(-sa).contiguous(), top=top, pw=pw,
                             n_inactive=n_inactive.to(pw.dtype), yd=torch.cat([y, x - y], -1))

    @staticmethod
    def segment_lookup(tab: "SegmentTables", c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Row indices into tab.yd.view(-1, 2d) and lam (B, C) for hashtag scores
        c (C,) shared by every post, or (B, C) of each post's own hashtags."""
        b, t1 = tab.pw.shape
        cc = c.float()
        cc = cc.unsqueeze(0).expand(b, -1).contiguous() if cc.dim() == 1 else cc.contiguous()
        k = torch.searchsorted(tab.neg_sorted, cc)  # number of steps with a_n > -c
        # lam = e^{c+top} pw / (e^{c+top} pw + L - k); e^{-(c+top)} <= 1 whenever k > 0
        act = torch.gather(tab.pw, 1, k)
        inact = torch.gather(tab.n_inactive, 1, k) * torch.exp(-(cc + tab.top).clamp_min(0))
        lam = torch.where(k > 0, act / (act + inact), torch.zeros_like(act))
        rows = k + torch.arange(b, device=k.device).unsqueeze(1) * t1
        return rows, lam

    @staticmethod
    def pool_tables(tab: "SegmentTables", c: torch.Tensor, out: torch.Tensor | None = None,
                    rows_out: torch.Tensor | None = None) -> torch.Tensor:
        """The pooled vectors (B, C, d_D) from a post's segment tables, in
        tab.yd's dtype, for hashtag scores c as in ``segment_lookup``;
        ``out`` and ``rows_out`` (B C, 2 d_D) are optional buffers."""
        rows, lam = ModalityEncoder.segment_lookup(tab, c)
        d = tab.yd.shape[-1] // 2
        yd = torch.index_select(tab.yd.reshape(-1, 2 * d), 0, rows.reshape(-1), out=rows_out)
        yd = yd.view(*rows.shape, 2 * d)
        return torch.addcmul(yd[..., :d], lam.to(yd.dtype).unsqueeze(-1), yd[..., d:], out=out)

    @staticmethod
    def pool_all(enc: ModalityStates, c: torch.Tensor) -> torch.Tensor:
        """Same values as ``pool`` for hashtag scores c (C,) shared by all posts: (B, C, d_D)."""
        return ModalityEncoder.pool_tables(ModalityEncoder.segment_tables(enc), c)


@dataclass
class SegmentTables:
    neg_sorted: torch.Tensor  # (B, T) -a sorted ascending (+inf on padding)
    top: torch.Tensor  # (B, 1) largest a
    pw: torch.Tensor  # (B, T+1) sum of exp(a_r - top) over the k largest steps
    n_inactive: torch.Tensor  # (B, T+1) L - k
    yd: torch.Tensor  # (B, T+1, 2 d): [Y_k | X_k - Y_k]


class UserEncoder(nn.Module):
    """Three fully connected layers on the pooled user features (§3.4) -> e(u) in R^{d_E}.
    With the learned user history the model builds the input (see V2HT._user_input)."""

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, d_out))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)
