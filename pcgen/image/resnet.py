"""ResNet-18/50 backbones laid out like torchvision's, so published CosPlace weights load by name.

Written here because torchvision cannot be installed next to pcgen's torch. The module
names (``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1`` … ``layer4``, and inside a block
``conv1``/``bn1``/…/``downsample.0``/``downsample.1``) match torchvision's so that
``nn.Sequential(*list(resnet.children())[:-2])`` yields CosPlace's ``backbone.<i>`` keys.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

__all__ = ["ResNet", "resnet", "RESNET_OUT_CHANNELS"]

RESNET_OUT_CHANNELS = {"ResNet18": 512, "ResNet50": 2048}
_LAYOUT = {"ResNet18": ("basic", (2, 2, 2, 2)), "ResNet50": ("bottleneck", (3, 4, 6, 3))}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convolutions with an identity (or 1×1 projected) shortcut."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided, as torchvision's "ResNet v1.5") → 1×1 with a 4× expansion."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * self.expansion)
        self.bn3 = nn.BatchNorm2d(width * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ImageNet-style ResNet trunk plus the (unused by CosPlace) ``avgpool``/``fc`` head.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        depths: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: width of ``fc``; kept so the children list ends like torchvision's.

    ``forward(x (B, 3, H, W)) -> (B, num_classes)``; CosPlace uses ``children()[:-2]``, which
    maps ``(B, 3, H, W)`` to ``(B, C, H/32, W/32)`` with ``C = RESNET_OUT_CHANNELS[name]``.
    """

    def __init__(self, block: type[nn.Module], depths: tuple[int, ...], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        for i, (width, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            stride = 1 if i == 0 else 2
            layer, cin = self._make_layer(block, cin, width, depth, stride)
            setattr(self, f"layer{i + 1}", layer)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero the last BN of each residual branch: an untrained net then starts as identity-ish
        # blocks, which keeps random-weight embeddings well conditioned.
        for m in self.modules():
            last = getattr(m, "bn3", None) if isinstance(m, Bottleneck) else getattr(m, "bn2", None)
            if isinstance(m, (BasicBlock, Bottleneck)) and last is not None:
                nn.init.zeros_(last.weight)

    @staticmethod
    def _make_layer(block, cin: int, width: int, depth: int, stride: int):
        cout = width * block.expansion
        downsample = None
        if stride != 1 or cin != cout:
            downsample = nn.Sequential(_conv1x1(cin, cout, stride), nn.BatchNorm2d(cout))
        blocks = [block(cin, width, stride, downsample)]
        blocks += [block(cout, width) for _ in range(depth - 1)]
        return nn.Sequential(*blocks), cout

    def forward(self, x: Tensor) -> Tensor:
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
        return self.fc(self.avgpool(x).flatten(1))


def resnet(name: Literal["ResNet18", "ResNet50"]) -> ResNet:
    """Build a randomly initialised ResNet-18 or ResNet-50 (torchvision module names)."""
    if name not in _LAYOUT:
        from pcgen.errors import ConfigError

        raise ConfigError(f"unknown backbone {name!r}; expected one of {sorted(_LAYOUT)}")
    kind, depths = _LAYOUT[name]
    return ResNet(BasicBlock if kind == "basic" else Bottleneck, depths)
