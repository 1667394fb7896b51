"""ResNet-18 for 28x28 inputs, as in the MedMNIST v2 benchmark: a 3x3 stride-1 stem, no max-pool."""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import BACKBONES
from .base import Classifier, ImageNormalize


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet_body(in_channels: int, blocks=(2, 2, 2, 2), width: int = 64) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    in_planes = width
    for stage, count in enumerate(blocks):
        planes = width * 2**stage
        for index in range(count):
            layers.append(BasicBlock(in_planes, planes, stride=2 if stage > 0 and index == 0 else 1))
            in_planes = planes
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


@BACKBONES.register("resnet18_28")
def resnet18_28(in_channels: int, num_classes: int, width: int = 64) -> Classifier:
    """MedMNIST v2's ResNet-18 (28); images normalised with mean 0.5, std 0.5."""
    body = resnet_body(in_channels, (2, 2, 2, 2), width)
    return Classifier(body, width * 8, num_classes, ImageNormalize([0.5] * in_channels, [0.5] * in_channels))
