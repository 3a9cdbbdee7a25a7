"""The V2HT model (paper §3): hashtag propagation, micro-video and user
encoders, Bi-Interaction pooling and the prediction MLP; the ablation
variants (w/o U, w/o P, w/o UP) are flags of this one class.

Interaction (§3.5): per modality m present, with e~_m the common-space
vector (mapped to d_D, see encoders.py), e_h = e'(h_j), e_u = e(u_k):
    p0_m = e~_m * e_h + e~_m * e_u + e_h * e_u       (Eq. 14; * element-wise)
and without the user module p0_m = e~_m * e_h. p0 concatenates the p0_m in
``cfg.modalities`` order, then ReLU layers (Eq. 15) and a linear prediction
layer (Eq. 16) give a logit; the sigmoid lives in the loss
(binary cross-entropy with logits = Eq. 17, averaged over valid candidates).
Dropout acts on p0 and on the hidden layers in training mode only; score
in eval mode.

User history (config ``user_history``): "word2vec" feeds the user network the
paper's features (§3.4, frozen Word2Vec mean of the user's training hashtags);
"learned" swaps that block for the use-weighted mean of the trainable e(h)
(or e'(h) with ``user_history_propagated``) over the same hashtags, so a
user's favourite tags pull e(u) towards their own embeddings. e(u) stays one
vector per post, so score_all remains one pass over the hashtags.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..kg.errors import V2HTError
from .config import V2HTConfig
from .encoders import ModalityEncoder, ModalityStates, UserEncoder, masked_attention
from .propagation import HashtagPropagation



@dataclass
class PostEncoding:
    """What score functions need from a batch, computed once per batch."""

    modalities: dict[str, ModalityStates]
    user: torch.Tensor | None  # (B, d_E) or None without the user module


def rows(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x[ids] along dim 0 through index_select, whose gradient (index_add_)
    sums repeated ids in their order. The gradient of x[ids] sums them with
    atomic adds on two or more threads once it holds 32k values or more
    (torch's CPU index_put_), so two runs of the same seed parted in the
    last bits and then further; with this, a run on two threads gives the
    bits of a run on one."""
    return torch.index_select(x, 0, ids.reshape(-1)).view(*ids.shape, *x.shape[1:])


class V2HT(nn.Module):
    def __init__(self, cfg: V2HTConfig, init_hashtag_emb: torch.Tensor, graph=None):
        super().__init__()
        cfg.validate()
        if tuple(init_hashtag_emb.shape) != (cfg.n_hashtags, cfg.d_hashtag):
            raise V2HTError(f"initial hashtag embeddings have shape {tuple(init_hashtag_emb.shape)}, "
                            f"expected ({cfg.n_hashtags}, {cfg.d_hashtag})")
        self.cfg = cfg
        self.hashtag_emb = nn.Parameter(init_hashtag_emb.detach().clone().float(),
                                        requires_grad=cfg.train_hashtag_emb)
        if cfg.use_propagation:
            if graph is None:
                raise V2HTError("propagation needs the hashtag graph (graph.pt); "
                                "use the wo_p / wo_up variant to train without it")
            self.propagation = HashtagPropagation(
                cfg.d_hashtag, cfg.n_hashtags, graph, alpha=cfg.alpha, layers=cfg.gcn_layers,
                n_edge_types=cfg.n_edge_types, edge_hidden=cfg.edge_hidden, residual=cfg.gcn_residual,
                co_max_neighbours=cfg.co_max_neighbours)
        else:
            self.propagation = None
        self.encoders = nn.ModuleDict({
            m: ModalityEncoder(cfg.input_dims[m], cfg.lstm_hidden[m], cfg.d_common, cfg.d_hashtag)
            for m in cfg.modalities})
        self._learned_history = cfg.use_user and cfg.user_history == "learned"
        d_user_in = cfg.d_user_in - cfg.d_user_tags + cfg.d_hashtag if self._learned_history else cfg.d_user_in
        self.user_encoder = UserEncoder(d_user_in, cfg.user_hidden, cfg.d_user) if cfg.use_user else None
        layers: list[nn.Module] = [nn.Dropout(cfg.dropout)]
        width = len(cfg.modalities) * cfg.d_hashtag
        for h in cfg.mlp_hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = h
        layers.append(nn.Linear(width, 1, bias=False))  # W_pre of Eq. 16
        self.mlp = nn.Sequential(*layers)
        self._cache_key = None
        self._cache_val = None

    # ---------------------------------------------------------------- hashtags
    def hashtag_embeddings(self) -> torch.Tensor:
        """e'(h) for every hashtag (H, d_D): after propagation, or e(h) without it."""
        return self._hashtag_side()[0]

    def _hashtag_side(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(e'(h), {m: c_j}); cached while gradients are off and no parameter changed,
        so that scoring many batches propagates once."""
        if torch.is_grad_enabled():
            return self._compute_hashtag_side()
        # optimiser steps and load_state_dict bump _version; .to() changes data_ptr
        key = (self.training, tuple((p.data_ptr(), p._version) for p in self.parameters()))
        if key != self._cache_key:
            self._cache_val = self._compute_hashtag_side()
            self._cache_key = key
        return self._cache_val

    # e'(h) supplied by the trainer (gnn/stepper.py) when the hashtag side steps
    # less often than the rest: the same values, propagated once per window
    _propagated: torch.Tensor | None = None

    def _compute_hashtag_side(self):
        emb = self.hashtag_emb
        if self._propagated is not None:
            emb = self._propagated
        elif self.propagation is not None:
            emb = self.propagation(emb)
        return self.side_from(emb)

    def side_from(self, emb: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The hashtag side (embeddings, per-modality attention scalars c_j) for
        any (H, d) embedding table: pass it to ``score_candidates`` to score
        with other embeddings, e.g. e(h) in place of e'(h) (explanations)."""
        return emb, {m: enc.tag_scores(emb) for m, enc in self.encoders.items()}

    @torch.no_grad()
    def edge_weights(self) -> dict[str, torch.Tensor]:
        """Learned A, Eq. 5's A' and Eq. 7's normalised values for every edge of the
        input graph (aligned with ``edge_index``) plus the self weights per node."""
        if self.propagation is None:
            raise V2HTError("this model variant has no propagation (no hashtag graph)")
        return self.propagation.explain(self.hashtag_emb)

    # ------------------------------------------------------------------- posts
    def _check_batch(self, batch) -> None:
        n = len(batch.rows)
        for m in self.cfg.modalities:
            x = batch.seqs.get(m)
            ln = batch.lengths.get(m)
            if x is None or ln is None:
                raise V2HTError(f"the batch lacks the {m!r} modality the model was built with")
            if x.dim() != 3 or x.shape[0] != n or x.shape[2] != self.cfg.input_dims[m]:
                raise V2HTError(f"{m} features have shape {tuple(x.shape)}, expected "
                                f"({n}, T, {self.cfg.input_dims[m]})")
            if ln.numel() != n or (n and (int(ln.min()) < 1 or int(ln.max()) > x.shape[1])):
                raise V2HTError(f"{m} lengths must lie in 1..{x.shape[1]}")
        if self.user_encoder is not None:
            uf = batch.user_feats
            if uf is None or tuple(uf.shape) != (n, self.cfg.d_user_in):
                got = None if uf is None else tuple(uf.shape)
                raise V2HTError(f"user features have shape {got}, expected ({n}, {self.cfg.d_user_in})")
        if self._learned_history:
            ids, w = batch.hist_ids, batch.hist_weights
            if ids is None or w is None or ids.dim() != 2 or ids.shape[0] != n or ids.shape != w.shape:
                raise V2HTError("user_history 'learned' needs the batch's user history "
                                "(hist_ids and hist_weights, both (B, L))")
            self._check_ids(ids)

    def encode_posts(self, batch, side=None) -> PostEncoding:
        """LSTM states, attention step scores and mapped steps per modality, plus e(u).
        ``side`` is _hashtag_side()'s value when the caller has it (saves a propagation)."""
        self._check_batch(batch)
        mods = {m: enc.encode(batch.seqs[m].float(), batch.lengths[m].long())
                for m, enc in self.encoders.items()}
        user = self.user_encoder(self._user_input(batch, side)) if self.user_encoder is not None else None
        return PostEncoding(mods, user)

    def _user_input(self, batch, side) -> torch.Tensor:
        """The user features; with the learned history, the Word2Vec tag block is swapped
        for the weighted mean of the trainable embeddings of the user's training hashtags
        (zeros without history, where the last column already flags it)."""
        feats = batch.user_feats.float()
        if not self._learned_history:
            return feats
        if self.cfg.user_history_propagated:
            emb = (side or self._hashtag_side())[0]
        else:
            emb = self.hashtag_emb
        w = batch.hist_weights.float()
        hist = torch.bmm(w.unsqueeze(1), emb[batch.hist_ids.long()]).squeeze(1)  # (B, d_D)
        n_post = self.cfg.d_user_in - self.cfg.d_user_tags - 1
        return torch.cat([feats[:, :n_post], hist, feats[:, -1:]], dim=1)

    # ------------------------------------------------------------- interaction
    def _interact(self, e_tilde: list[torch.Tensor], e_h: torch.Tensor, e_u: torch.Tensor | None) -> torch.Tensor:
        """Eqs. 14-16: logits (B, K) from e~_m (B, K, d), e_h (B|1, K, d), e_u (B, 1, d) | None."""
        if e_u is None:
            parts = [et * e_h for et in e_tilde]
        else:
            g = e_h + e_u
            hu = e_h * e_u
            parts = [et * g + hu for et in e_tilde]
        p0 = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        return self.mlp(p0).squeeze(-1)

    def _check_ids(self, ids: torch.Tensor) -> None:
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.cfg.n_hashtags):
            raise V2HTError(f"hashtag ids must lie in 0..{self.cfg.n_hashtags - 1}")

    def score_candidates(self, post: PostEncoding, cand: torch.Tensor, side=None,
                         mask: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) for candidate ids (B, K) of already encoded posts.
        With ``mask`` (B, K) only its slots are scored (the others read 0):
        training batches pad every post to the longest candidate list, and
        at INSVIDEO's 13 tags a post (up to 60) two thirds of the padded
        pairs are padding, so the 3 d_D-wide products and the MLP run on
        the valid pairs only."""
        self._check_ids(cand)
        emb, c = side or self._hashtag_side()
        e_tilde = [ModalityEncoder.pool(post.modalities[m], rows(c[m], cand)) for m in self.cfg.modalities]
        if mask is None or bool(mask.all()):
            e_u = post.user.unsqueeze(1) if post.user is not None else None
            return self._interact(e_tilde, rows(emb, cand), e_u)
        b_idx, k_idx = mask.nonzero(as_tuple=True)
        e_u = rows(post.user, b_idx) if post.user is not None else None
        flat = self._interact([et[b_idx, k_idx] for et in e_tilde], rows(emb, cand[b_idx, k_idx]), e_u)
        return flat.new_zeros(cand.shape).index_put((b_idx, k_idx), flat)

    def forward(self, batch) -> torch.Tensor:
        """Logits (B, K) for batch.cand; padding slots of batch.cand_mask read 0."""
        if batch.cand is None:
            raise V2HTError("the batch has no candidates (cand); use score_all for full ranking")
        side = self._hashtag_side()  # once per step: propagation is the costly part
        mask = batch.cand_mask.bool() if batch.cand_mask is not None else None
        return self.score_candidates(self.encode_posts(batch, side), batch.cand, side, mask)

    def loss(self, batch) -> torch.Tensor:
        """Eq. 17: binary cross-entropy over the valid candidates, averaged."""
        if batch.labels is None:
            raise V2HTError("the batch has no labels")
        logits = self.forward(batch)
        if self.cfg.loss == "softmax":
            return self._softmax_loss(logits, batch)
        losses = F.binary_cross_entropy_with_logits(logits, batch.labels.float(), reduction="none")
        if batch.cand_mask is None:
            return losses.mean()
        mask = batch.cand_mask.bool()
        return losses[mask].mean() if bool(mask.any()) else losses.sum() * 0.0

    @staticmethod
    def _softmax_loss(logits: torch.Tensor, batch) -> torch.Tensor:
        """−log softmax of each true tag against the post's negatives (other true
        tags are left out of its denominator), averaged over true tags."""
        labels = batch.labels.bool()
        mask = batch.cand_mask.bool() if batch.cand_mask is not None else torch.ones_like(labels)
        neg = mask & ~labels
        neg_lse = torch.logsumexp(logits.masked_fill(~neg, float("-inf")), dim=1, keepdim=True)
        nll = torch.logaddexp(logits, neg_lse) - logits
        pos = labels & mask
        return nll[pos].mean() if bool(pos.any()) else logits.sum() * 0.0

    # ------------------------------------------------------------ full ranking
    @torch.no_grad()
    def score_all(self, batch, chunk: int = 4096, *, bf16: bool = False, fused: bool = False) -> torch.Tensor:
        """Logits (B, H) over every hashtag: the values ``forward`` gives in eval mode
        for the same candidates, up to float rounding (dropout is never applied here).

        Attention is pooled exactly for all hashtags at once (see
        ModalityEncoder.segment_tables); hashtags are scored in tiles of at most
        ``chunk`` (fewer when the batch is large) by gnn/ranking.py's kernel.
        ``bf16`` runs the MLP in bfloat16 on the float32 pair input rounded once
        (faster only on a CPU with native bf16; scores then differ in the third
        or fourth digit); ``fused`` uses
        the torch.compile'd tile kernel (ranking.score_all)."""
        from .ranking import score_all

        return score_all(self, batch, chunk, bf16=bf16, fused=fused)

    def recommend(self, batch, k: int, *, exclude: torch.Tensor | None = None,
                  bf16: bool = False, candidates: int | None = None,
                  fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-k (exact logits (B, k), hashtag ids (B, k)). ``candidates`` = N:
        two stages (retrieve N, rerank them exactly; gnn/ranking.py); None:
        the exact full rank. ``exclude`` (B, H) bool masks hashtags out."""
        from .ranking import two_stage

        return two_stage(self, batch, k, candidates or self.cfg.n_hashtags, exclude=exclude, bf16=bf16, fused=fused)

    @torch.no_grad()
    def attention(self, batch, tag_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Attention weights alpha (B, T_m) per modality for hashtag tag_ids[i] on post i
        (zeros on padding)."""
        tag_ids = torch.as_tensor(tag_ids, dtype=torch.long, device=self.hashtag_emb.device).reshape(-1)
        if tag_ids.numel() != len(batch.rows):
            raise V2HTError(f"attention needs one hashtag per post: got {tag_ids.numel()} "
                            f"for {len(batch.rows)} posts")
        self._check_ids(tag_ids)
        post = self.encode_posts(batch)
        _, c = self._hashtag_side()
        return {m: masked_attention(st.a, st.mask, c[m][tag_ids].unsqueeze(1)).squeeze(1)
                for m, st in post.modalities.items()}
