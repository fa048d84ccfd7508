"""Two small, deliberately different MNIST classifiers (input float (N, 1, 28, 28) in [-1, 1]).

MetricNet judges samples (classifier-FID features, digit histogram); RewardNet gives the agent's goal reward.
They differ in architecture, activation, normalisation and training seed, so a model optimised against RewardNet
is not judged by a network sharing its blind spots.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURE_DIM = 64


class MetricNet(nn.Module):
    """VGG-style: pairs of 3x3 convs with ReLU and max-pooling, then a 64-d ELU hidden layer (the FID features).

    ELU rather than ReLU in the hidden layer: with ReLU about 20 of the 64 feature units died in training,
    leaving FID a 44-d space; ELU keeps all 64 alive at the same accuracy.
    """

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # 4x4
        )
        self.fc = nn.Linear(64 * 4 * 4, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 64) penultimate activations, the input of the final linear layer."""
        return F.elu(self.fc(self.conv(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class RewardNet(nn.Module):
    """LeNet-style with strided 5x5 convs, GroupNorm and GELU, no pooling."""

    def __init__(self, n_classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.GroupNorm(4, 32), nn.GELU(),  # 14x14
            nn.Conv2d(32, 64, 5, stride=2, padding=2), nn.GroupNorm(8, 64), nn.GELU(),  # 7x7
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.GELU(),  # 4x4
        )
        self.fc = nn.Linear(64 * 4 * 4, FEATURE_DIM)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 64) penultimate activations, the input of the final linear layer."""
        return F.gelu(self.fc(self.conv(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


ARCHITECTURES: dict[str, type[nn.Module]] = {"MetricNet": MetricNet, "RewardNet": RewardNet}
