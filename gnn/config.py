"""Hyper-parameters of the V2HT model (paper §3, §4.3) and its ablation variants.

Defaults are sized for CPU training: d_F (``d_common``) is 64 instead of the
paper's 150 and the LSTM widths are 128/64/64 instead of 500/300/80.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from ..kg.errors import V2HTError

MODALITIES = ("visual", "acoustic", "text")
VARIANTS = {  # name -> (use_user, use_propagation)
    "full": (True, True),
    "wo_u": (False, True),
    "wo_p": (True, False),
    "wo_up": (False, False),
}
# the user tower's hashtag half (§3.4): the paper's mean of frozen Word2Vec
# vectors, or the mean of the model's own trainable hashtag embeddings
USER_HISTORY = ("word2vec", "learned")
LOSSES = ("pointwise", "softmax")
# hashtags the two-stage ranking (gnn/ranking.py) retrieves and reranks exactly
DEFAULT_CANDIDATES = 500


def _default_input_dims() -> dict[str, int]:
    return {"visual": 2048, "acoustic": 128, "text": 100}


def _default_lstm_hidden() -> dict[str, int]:
    return {"visual": 128, "acoustic": 64, "text": 64}


@dataclass
class V2HTConfig:
    n_hashtags: int
    d_hashtag: int = 64  # d_D
    d_common: int = 64  # d_F (paper: 150)
    modalities: tuple[str, ...] = MODALITIES
    input_dims: dict[str, int] = field(default_factory=_default_input_dims)
    lstm_hidden: dict[str, int] = field(default_factory=_default_lstm_hidden)
    d_user_in: int = 0
    d_user: int | None = None  # d_E; None means d_hashtag (Bi-Interaction needs them equal)
    use_user: bool = True
    use_propagation: bool = True
    alpha: float = 0.2
    gcn_layers: int = 2
    n_edge_types: int = 4
    edge_hidden: int = 16
    mlp_hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    train_hashtag_emb: bool = True
    user_hidden: int = 128  # width of the two hidden layers of the user network (§3.4)
    gcn_residual: bool = False  # e'(h) = last GCN layer + e(h); off = literal Eq. 7
    user_history: str = "word2vec"  # one of USER_HISTORY
    user_history_propagated: bool = False  # learned history averages e'(h) instead of e(h)
    # width of the Word2Vec tag block in the user features ([post | tags | flag]) that
    # "learned" replaces; None means d_hashtag (the trainer's Word2Vec size)
    d_user_tags: int | None = None
    # training objective: "pointwise" = Eq. 17 (log loss per candidate, the paper);
    # "softmax" = each true tag against all of the post's sampled negatives
    # (a sampled softmax, fit for full ranking)
    loss: str = "pointwise"
    negatives: int = 6  # uniform negatives per true tag (paper §4.1: 6)
    # propagate over at most this many co-occurrence (co) neighbours per hashtag,
    # its strongest (cp/ss/po edges are all kept); None = every edge (the paper)
    co_max_neighbours: int | None = None

    def __post_init__(self):
        self.modalities = tuple(self.modalities)
        self.mlp_hidden = tuple(int(h) for h in self.mlp_hidden)
        if self.d_user is None:
            self.d_user = self.d_hashtag
        if self.d_user_tags is None:
            self.d_user_tags = self.d_hashtag
        self.validate()

    def validate(self) -> None:
        if self.n_hashtags < 1:
            raise V2HTError(f"n_hashtags must be >= 1, got {self.n_hashtags}")
        if not self.modalities:
            raise V2HTError("at least one modality is needed")
        for m in self.modalities:
            if m not in MODALITIES:
                raise V2HTError(f"unknown modality {m!r}; expected some of {', '.join(MODALITIES)}")
            for what, table in (("input_dims", self.input_dims), ("lstm_hidden", self.lstm_hidden)):
                if int(table.get(m, 0)) < 1:
                    raise V2HTError(f"{what}[{m!r}] must be a positive size")
        if len(set(self.modalities)) != len(self.modalities):
            raise V2HTError(f"modalities repeat: {self.modalities}")
        if self.d_user != self.d_hashtag:
            raise V2HTError(f"d_user ({self.d_user}) must equal d_hashtag ({self.d_hashtag}): "
                            "Bi-Interaction multiplies them element-wise")
        if self.use_user and self.d_user_in < 1:
            raise V2HTError("use_user needs d_user_in >= 1 (the width of the user features)")
        if self.user_history not in USER_HISTORY:
            raise V2HTError(f"user_history must be one of {', '.join(USER_HISTORY)}, not {self.user_history!r}")
        if self.use_user and self.user_history == "learned" and not 0 < self.d_user_tags < self.d_user_in:
            raise V2HTError(f"user_history 'learned' replaces a Word2Vec block of {self.d_user_tags} columns, "
                            f"which the {self.d_user_in} user feature columns cannot hold")
        if self.loss not in LOSSES:
            raise V2HTError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if not 1 <= int(self.negatives) <= 10000:
            raise V2HTError(f"negatives must lie in 1..10000, got {self.negatives}")
        if self.co_max_neighbours is not None and int(self.co_max_neighbours) < 1:
            raise V2HTError(f"co_max_neighbours must be >= 1, got {self.co_max_neighbours}")
        if not 0.0 <= self.alpha <= 1.0:
            raise V2HTError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.gcn_layers < 1:
            raise V2HTError(f"gcn_layers must be >= 1, got {self.gcn_layers}")
        if not 0.0 <= self.dropout < 1.0:
            raise V2HTError(f"dropout must lie in [0, 1), got {self.dropout}")

    @property
    def variant_name(self) -> str:
        for name, flags in VARIANTS.items():
            if flags == (self.use_user, self.use_propagation):
                return name
        raise AssertionError("unreachable")

    def variant(self, name: str) -> "V2HTConfig":
        """A copy with the flags of one ablation: full, wo_u, wo_p, wo_up."""
        return apply_variant(self, name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        d["mlp_hidden"] = list(self.mlp_hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "V2HTConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise V2HTError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**d)


def apply_variant(cfg: V2HTConfig, name: str) -> V2HTConfig:
    if name not in VARIANTS:
        raise V2HTError(f"unknown variant {name!r}; expected one of {', '.join(VARIANTS)}")
    use_user, use_prop = VARIANTS[name]
    return replace(cfg, use_user=use_user, use_propagation=use_prop)
