"""The PyTorch model the optimisation benchmark trains: the issue's MLP shape.

Its own module because ``torch.jit.script`` reads the class's source from a file.
"""

from __future__ import annotations

import torch
from torch import nn


class TorchMLP(nn.Module):
    """features -> 256 -> 256 -> 2, returning (label, probabilities) as mlgate serves them."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
            nn.Linear(256, 2),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.net(x), dim=1)
        return torch.argmax(probabilities, dim=1), probabilities
