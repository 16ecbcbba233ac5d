"""SAGAN-style self-attention over the spatial positions of a feature map."""

from __future__ import annotations

import torch
from torch import nn

# SAGAN reduces query/key to C/8 channels: attention maps are cheap, values keep full width.
KEY_RATIO = 8


class SelfAttention(nn.Module):
    """Every position attends to every other; `out = x + gamma * attention(x)`.

    Query, key and value are 1x1 convolutions, so the block is equivariant to any permutation of
    the positions. `gamma` starts at 0: the block begins as the identity and learns how much
    long-range context to mix in (Zhang et al., SAGAN).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        key_channels = max(channels // KEY_RATIO, 1)
        self.query = nn.Conv2d(channels, key_channels, 1)
        self.key = nn.Conv2d(channels, key_channels, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)  # (B, N, C/8), N = H*W
        key = self.key(x).flatten(2)  # (B, C/8, N)
        attention = torch.softmax(query @ key, dim=-1)  # (B, N, N): row i = weights of position i
        value = self.value(x).flatten(2)  # (B, C, N)
        out = (value @ attention.transpose(1, 2)).view(b, c, h, w)  # (B, C, H, W)
        return x + self.gamma * out
