"""The batch handed from the data pipeline to the V2HT model (see the gnn
contract): one row per post, candidates grouped per post so that the
per-modality LSTMs run once per post and are reused for every candidate."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class PostBatch:
    rows: torch.Tensor  # (B,) long: post rows of the prepared data set (-1 for a new post)
    seqs: dict[str, torch.Tensor]  # modality -> (B, T_m, dim) float32, zero padded
    lengths: dict[str, torch.Tensor]  # modality -> (B,) long, >= 1
    users: torch.Tensor  # (B,) long
    user_feats: torch.Tensor  # (B, d_user_in) float32; last column flags "no history"
    cand: torch.Tensor | None = None  # (B, K) long
    labels: torch.Tensor | None = None  # (B, K) float32
    cand_mask: torch.Tensor | None = None  # (B, K) bool, False on padding slots
    # the user's training hashtags, for the learned user history (config user_history="learned"):
    # ids padded with 0, weights = use count / total uses (0 on padding, all 0 without history)
    hist_ids: torch.Tensor | None = None  # (B, L) long
    hist_weights: torch.Tensor | None = None  # (B, L) float32, rows sum to 1 or 0

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def to(self, device: torch.device | str) -> "PostBatch":
        def mv(t):
            return None if t is None else t.to(device, non_blocking=True)

        return PostBatch(
            rows=mv(self.rows),
            seqs={m: mv(t) for m, t in self.seqs.items()},
            lengths={m: mv(t) for m, t in self.lengths.items()},
            users=mv(self.users),
            user_feats=mv(self.user_feats),
            cand=mv(self.cand),
            labels=mv(self.labels),
            cand_mask=mv(self.cand_mask),
            hist_ids=mv(self.hist_ids),
            hist_weights=mv(self.hist_weights),
        )
