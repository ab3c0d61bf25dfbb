"""Attention blocks for pose regression: AtLoc's vector non-local block and a spatial one.

`AtLocAttention` is the block of AtLoc (Wang et al., AAAI 2020): a non-local operation applied to
the *pooled* feature vector, treating its ``C // 8`` projected channels as the tokens. It keeps
the original parameter names (``g``, ``theta``, ``phi``, ``W``) so the original checkpoints load
into it unchanged. Because it acts after pooling, it has no notion of image position.

`SpatialAttention` is a non-local (embedded Gaussian, Wang et al., CVPR 2018) self-attention
over the ``h x w`` positions of the feature map; its (B, h*w, h*w) weights can be read out and
turned into a map of where the network looks (see `topoloc.saliency.attention_saliency`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from topoloc._messages import shape_of

__all__ = ["AtLocAttention", "SpatialAttention"]


def _check_dims(owner: str, dim: int, reduction: int) -> int:
    for name, value in (("dim", dim), ("reduction", reduction)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{owner}: `{name}` must be a positive int, got {value!r}")
    if dim // reduction < 1:
        raise ValueError(f"{owner}: `dim` ({dim}) must be at least `reduction` ({reduction})")
    return dim // reduction


class AtLocAttention(nn.Module):
    """AtLoc's non-local block on a feature vector, with a residual connection.

    With ``x`` of shape (B, C) and ``D = C // reduction``::

        g_x     = g(x)      as (B, D, 1)
        theta_x = theta(x)  as (B, 1, D)
        phi_x   = phi(x)    as (B, D, 1)
        f       = softmax(phi_x @ theta_x, dim=-1)       # (B, D, D)
        z       = W((f @ g_x).squeeze(-1)) + x           # (B, C)

    Args:
        dim: feature size ``C`` (2048 in AtLoc).
        reduction: channel reduction of the projections (8 in AtLoc).

    Shape:
        - input: (B, C)
        - output: (B, C)

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> att = AtLocAttention(64)
        >>> att(torch.randn(2, 64)).shape
        torch.Size([2, 64])
    """

    def __init__(self, dim: int, reduction: int = 8) -> None:
        super().__init__()
        inner = _check_dims("AtLocAttention", dim, reduction)
        self.dim = dim
        self.inner_dim = inner
        self.g = nn.Linear(dim, inner)
        self.theta = nn.Linear(dim, inner)
        self.phi = nn.Linear(dim, inner)
        self.W = nn.Linear(inner, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, inner_dim={self.inner_dim}"

    def attention_weights(self, x: Tensor) -> Tensor:
        """The (B, D, D) softmax matrix ``f`` of the block (rows sum to one)."""
        theta_x = self.theta(x).unsqueeze(1)  # (B, 1, D)
        phi_x = self.phi(x).unsqueeze(2)  # (B, D, 1)
        return torch.softmax(phi_x @ theta_x, dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"AtLocAttention: `x` must be (B, {self.dim}) features, got {shape_of(x)}")
        f = self.attention_weights(x)
        g_x = self.g(x).unsqueeze(2)  # (B, D, 1)
        y = (f @ g_x).squeeze(2)  # (B, D)
        return self.W(y) + x


class SpatialAttention(nn.Module):
    """Self-attention over the positions of a feature map (non-local block), with a residual.

    With ``x`` of shape (B, C, h, w), ``N = h * w`` and ``D = C // reduction``, 1x1 convolutions
    ``theta``, ``phi``, ``g`` project to D channels; ``A = softmax(theta^T phi / sqrt(D))`` is the
    (B, N, N) attention of every query position over all key positions, and
    ``z = x + W(g A^T)`` with ``W`` a 1x1 convolution back to C channels. ``W`` starts at zero,
    so the block is the identity at initialisation and a pretrained backbone's features pass
    through unchanged until training moves it (as in Wang et al. 2018, who zero the last BN).

    Args:
        dim: channels ``C`` of the feature map.
        reduction: channel reduction of the projections.

    Shape:
        - input: (B, C, h, w)
        - output: (B, C, h, w); with ``return_attention=True`` also (B, h*w, h*w) weights whose
          rows (queries) sum to one.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> att = SpatialAttention(32)
        >>> y, a = att(torch.randn(2, 32, 4, 5), return_attention=True)
        >>> y.shape, a.shape
        (torch.Size([2, 32, 4, 5]), torch.Size([2, 20, 20]))
    """

    def __init__(self, dim: int, reduction: int = 8) -> None:
        super().__init__()
        inner = _check_dims("SpatialAttention", dim, reduction)
        self.dim = dim
        self.inner_dim = inner
        self.theta = nn.Conv2d(dim, inner, 1)
        self.phi = nn.Conv2d(dim, inner, 1)
        self.g = nn.Conv2d(dim, inner, 1)
        self.W = nn.Conv2d(inner, dim, 1)
        nn.init.zeros_(self.W.weight)
        if self.W.bias is not None:  # always: the convolution has a bias
            nn.init.zeros_(self.W.bias)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, inner_dim={self.inner_dim}"

    def forward(self, x: Tensor, return_attention: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.dim:
            raise ValueError(f"SpatialAttention: `x` must be a (B, {self.dim}, h, w) feature map, got {shape_of(x)}")
        b, _, h, w = x.shape
        q = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, D)
        k = self.phi(x).flatten(2).transpose(1, 2)  # (B, N, D)
        v = self.g(x).flatten(2).transpose(1, 2)  # (B, N, D)
        if return_attention:
            attn = torch.softmax((q @ k.transpose(1, 2)) / math.sqrt(self.inner_dim), dim=-1)
            y = attn @ v
        else:
            # Same arithmetic (default scale 1 / sqrt(D)), fused where the device has a kernel.
            y = F.scaled_dot_product_attention(q, k, v)
        y = y.transpose(1, 2).reshape(b, self.inner_dim, h, w)
        z = x + self.W(y)
        return (z, attn) if return_attention else z
