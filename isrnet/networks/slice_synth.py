"""SliceSynthNet: synthesise slices at continuous positions between neighbouring 2D slices.

Cost structure (why it is fast on a CPU):
- `encode`: a small 2D residual CNN runs once per *input* slice;
- `mix`: once per *gap* between two slices, a fusion trunk (full resolution plus a half-resolution residual
  path for context) combines the features of the K context slices and the acquisition's factor and
  thickness into three maps A, B, C;
- `decode`: per *output* slice at position t only two cheap convolutions run on leaky_relu(A + tau B + tau^2 C)
  (tau = t - 1/2) and the classic interpolation at t, giving a residual over cubic (Catmull-Rom) interpolation.
The last layer starts at zero, so an untrained network is exactly cubic interpolation.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def catmull_rom_weights(t: torch.Tensor) -> torch.Tensor:
    """Cubic convolution (Keys, a = -0.5) weights of slices -1, 0, 1, 2 for positions t in [0, 1]: [..., 4]."""
    t2, t3 = t * t, t * t * t
    return torch.stack([-0.5 * t3 + t2 - 0.5 * t, 1.5 * t3 - 2.5 * t2 + 1.0,
                        -1.5 * t3 + 2.0 * t2 + 0.5 * t, 0.5 * t3 - 0.5 * t2], dim=-1)


def cubic_between(context: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Catmull-Rom interpolation between the two central slices of `context` [B, K, H, W] at positions [B, M]."""
    centre = context.shape[1] // 2 - 1
    four = context[:, centre - 1: centre + 3]
    weights = catmull_rom_weights(positions)  # [B, M, 4]
    return torch.einsum("bmk,bkhw->bmhw", weights, four)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SliceSynthNet(nn.Module):
    """K context slices + continuous positions -> slices at those positions (see module docstring)."""

    def __init__(self, context: int = 4, encoder_channels: int = 24, encoder_blocks: int = 2,
                 fusion_channels: int = 48, fusion_blocks: int = 2, mixer_channels: int = 32,
                 decoder_channels: int = 24) -> None:
        super().__init__()
        if context < 4 or context % 2:
            raise ValueError("context must be an even number >= 4 (at least two slices on each side)")
        self.context = context
        self.mixer_channels = mixer_channels
        self.encoder = nn.Sequential(nn.Conv2d(1, encoder_channels, 3, padding=1), nn.LeakyReLU(0.1, inplace=True),
                                     *[ResidualBlock(encoder_channels) for _ in range(encoder_blocks)])
        self.fuse = nn.Sequential(nn.Conv2d(context * (encoder_channels + 1) + 2, fusion_channels, 3, padding=1),
                                  nn.LeakyReLU(0.1, inplace=True))
        self.coarse = nn.Sequential(nn.Conv2d(fusion_channels, fusion_channels, 3, stride=2, padding=1),
                                    nn.LeakyReLU(0.1, inplace=True),
                                    *[ResidualBlock(fusion_channels) for _ in range(fusion_blocks)])
        self.mixer = nn.Conv2d(fusion_channels, 3 * mixer_channels, 3, padding=1)
        self.decoder = nn.Sequential(nn.Conv2d(mixer_channels + 1, decoder_channels, 3, padding=1),
                                     nn.LeakyReLU(0.1, inplace=True), nn.Conv2d(decoder_channels, 1, 3, padding=1))
        nn.init.zeros_(self.decoder[-1].weight)
        nn.init.zeros_(self.decoder[-1].bias)

    def encode(self, slices: torch.Tensor) -> torch.Tensor:
        """Per-slice features: [B, N, H, W] -> [B, N, C + 1, H, W] (the slice itself is the last channel)."""
        b, n, h, w = slices.shape
        return self.encode_slices(slices.reshape(b * n, h, w)).reshape(b, n, -1, h, w)

    def encode_slices(self, slices: torch.Tensor) -> torch.Tensor:
        """Per-slice features of N slices [N, H, W] -> [N, C + 1, H, W]."""
        single = slices[:, None]
        if self._channels_last():  # features in the weights' layout, so that mix_slices' concatenation is cheap
            return torch.cat([self.encoder(single).permute(0, 2, 3, 1), slices[..., None]], -1).permute(0, 3, 1, 2)
        return torch.cat([self.encoder(single), single], 1)

    def mix(self, features: torch.Tensor, conditioning: torch.Tensor) -> torch.Tensor:
        """Features of K context slices [B, K, C + 1, H, W] + conditioning [B, 2] -> gap state [B, 3D, H, W]."""
        return self.mix_slices(list(features.unbind(1)), conditioning)

    def mix_slices(self, features: list[torch.Tensor], conditioning: torch.Tensor) -> torch.Tensor:
        """`mix` with the K context slices' features as K tensors [B, C + 1, H, W]: prediction builds the fusion
        input from its cached per-slice features with one concatenation (no stacking into [B, K, ...] first)."""
        b, _, h, w = features[0].shape
        if self._channels_last():  # concatenate in the weights' layout: the convolution then copies nothing
            condition = conditioning[:, None, None, :].expand(b, h, w, 2).to(features[0].dtype)
            fusion_input = torch.cat([f.permute(0, 2, 3, 1) for f in features] + [condition], -1).permute(0, 3, 1, 2)
        else:
            condition = conditioning[:, :, None, None].expand(b, 2, h, w).to(features[0].dtype)
            fusion_input = torch.cat([*features, condition], 1)
        fused = self.fuse(fusion_input)
        # x2 with scale 1/2 exactly, then cut: the same for odd sizes as for any even crop of them (crops and
        # tiles of a slice agree with the whole slice; training patches are even, where nothing changes)
        coarse = nn.functional.interpolate(self.coarse(fused), scale_factor=2.0, mode="bilinear",
                                           align_corners=False)[..., :h, :w]
        return self.mixer(fused + coarse)

    def decode(self, state: torch.Tensor, base: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Gap state [B, 3D, H, W], classic interpolation base [B, M, H, W], positions [B, M] -> slices."""
        b, m, h, w = base.shape
        d = self.mixer_channels
        tau = (positions - 0.5)[:, :, None, None, None]
        if self._channels_last():  # hidden [B, M, H, W, D] and the base beside it: the decoder's layout
            a, b_, c = (part[:, None] for part in state.permute(0, 2, 3, 1).split(d, dim=-1))
            hidden = nn.functional.leaky_relu_(torch.addcmul(torch.addcmul(a, b_, tau), c, tau * tau), 0.1)
            decoder_input = torch.cat([hidden, base[..., None]], -1).reshape(b * m, h, w, d + 1).permute(0, 3, 1, 2)
        else:
            a, b_, c = state.split(d, dim=1)
            hidden = nn.functional.leaky_relu(a[:, None] + tau * b_[:, None] + tau * tau * c[:, None], 0.1)
            decoder_input = torch.cat([hidden, base[:, :, None]], 2).reshape(b * m, -1, h, w)
        return base + self.decoder(decoder_input).reshape(b, m, h, w)

    def _channels_last(self) -> bool:
        """Whether the weights are in channels-last layout (prediction on the CPU; see slice_synthesis)."""
        weight = self.fuse[0].weight
        return weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()

    def forward(self, context: torch.Tensor, positions: torch.Tensor, conditioning: torch.Tensor) -> torch.Tensor:
        """context [B, K, H, W], positions [B, M] in [0, 1] between the two central slices, conditioning [B, 2]."""
        base = cubic_between(context, positions)
        state = self.mix(self.encode(context), conditioning)
        return self.decode(state, base, positions)


def conditioning_vector(factor: float, thickness_ratio: float) -> list[float]:
    """Network conditioning: log2 of the factor (gap in in-plane pixels) and slice thickness / spacing."""
    return [math.log2(max(factor, 1.0)) / 3.0, float(thickness_ratio)]
