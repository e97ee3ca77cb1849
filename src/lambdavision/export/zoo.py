"""Reference models in plain torch (no torchvision): the demo's small CNN and a ResNet-50.

Part of the `[export]` extra (imports torch). Tests and benchmarks use them with random or
demo-trained weights; ResNet-50 is the standard bottleneck network (25.6 M parameters at 1000
classes), the size the guide serves.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn


def small_cnn(num_classes: int, width: int = 16) -> nn.Module:
    """Four conv blocks (conv-BN-ReLU-maxpool), global average pool, linear. ~100 k parameters
    at `width=16`: trains on a CPU in a minute, exports to well under 1 MB."""
    channels = [3, width, width * 2, width * 4, width * 8]
    blocks: list[nn.Module] = []
    for c_in, c_out in itertools.pairwise(channels):
        blocks += [
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
    return nn.Sequential(
        *blocks,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels[-1], num_classes),
    )


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand x4, plus the shortcut."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: torch.Tensor = self.relu(out + identity)
        return result


class ResNet(nn.Module):
    def __init__(self, layers: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages: list[nn.Module] = []
        c_in = 64
        for i, blocks in enumerate(layers):
            width = 64 * 2**i
            stage: list[nn.Module] = []
            for b in range(blocks):
                stage.append(Bottleneck(c_in, width, stride=2 if (b == 0 and i > 0) else 1))
                c_in = width * Bottleneck.expansion
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        logits: torch.Tensor = self.fc(torch.flatten(self.avgpool(x), 1))
        return logits


def resnet50(num_classes: int = 1000) -> nn.Module:
    """The standard ResNet-50 (bottleneck blocks 3-4-6-3), randomly initialised."""
    return ResNet([3, 4, 6, 3], num_classes)


__all__ = ["resnet50", "small_cnn"]
