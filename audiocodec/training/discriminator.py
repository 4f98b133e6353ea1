"""EnCodec's multi-scale STFT discriminator: one 2-D conv net per STFT resolution, on real and imaginary parts."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class STFTDiscriminator(nn.Module):
    """Logits and feature maps for audio `[B, C, T]` seen through one STFT resolution."""

    def __init__(self, channels: int, filters: int, n_fft: int, dilations: Sequence[int] = (1, 2, 4)):
        super().__init__()
        self.n_fft, self.hop = n_fft, n_fft // 4
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        layers = [weight_norm(nn.Conv2d(2 * channels, filters, (3, 9), padding=(1, 4)))]
        for d in dilations:
            layers.append(weight_norm(nn.Conv2d(filters, filters, (3, 9), stride=(1, 2), dilation=(d, 1),
                                                padding=(d, 4))))
        layers.append(weight_norm(nn.Conv2d(filters, filters, (3, 3), padding=(1, 1))))
        self.layers = nn.ModuleList(layers)
        self.output = weight_norm(nn.Conv2d(filters, 1, (3, 3), padding=(1, 1)))
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, channels, _ = wav.shape
        spec = torch.stft(wav.reshape(batch * channels, -1).float(), self.n_fft, self.hop, window=self.window,
                          return_complex=True, normalized=True)
        spec = torch.view_as_real(spec).reshape(batch, channels, *spec.shape[1:], 2)
        x = spec.permute(0, 1, 4, 3, 2).reshape(batch, channels * 2, spec.shape[3], spec.shape[2])  # [B, 2C, T, F]
        features = []
        for layer in self.layers:
            x = self.activation(layer(x))
            features.append(x)
        return self.output(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, channels: int = 1, filters: int = 32, n_ffts: Sequence[int] = (1024, 2048, 512, 256, 128)):
        super().__init__()
        self.discriminators = nn.ModuleList(STFTDiscriminator(channels, filters, n) for n in n_ffts)

    def forward(self, wav: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        outputs = [d(wav) for d in self.discriminators]
        return [logits for logits, _ in outputs], [features for _, features in outputs]
