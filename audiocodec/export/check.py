"""How closely an ONNX export reproduces its PyTorch model: shared by tests/export and benchmarks/onnx_agreement.py.

Codes can differ where float rounding moves a near-tie: the convolutions of onnxruntime and PyTorch sum in other
orders, so features differ in the last bits, and a frame whose two nearest codes are almost equally near may flip.
`compare` finds, for each frame whose codes differ, the first level that differs (later levels then quantize
another residual, so they differ as a consequence) and measures how near a tie that decision was: the gap
between the squared distances of PyTorch's residual to the two codes, relative to the distance to PyTorch's code.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..model import Codec
    from .runtime import OnnxCodec


@dataclasses.dataclass
class Agreement:
    """One bandwidth: share of codes equal to PyTorch's, max |audio difference| decoding PyTorch's codes with each,
    and the largest relative distance gap of a first differing level (0 when no code differs)."""

    bandwidth: float
    levels: int
    codes: int
    equal_share: float
    audio_max_diff: float
    worst_gap: float
    first_differences: int


@torch.no_grad()
def compare(codec: Codec, runtime: OnnxCodec, wav: torch.Tensor) -> list[Agreement]:
    """`codec` (PyTorch) against `runtime` (an `OnnxCodec` of its export) on `wav` `[B, C, T]`, per bandwidth."""
    out = []
    for bandwidth in codec.bandwidths:
        encoded = codec.encode(wav, bandwidth=bandwidth)
        reference = encoded.codes.numpy()
        codes, scales = runtime.encode(wav.numpy(), bandwidth)
        if encoded.scales is not None:
            np.testing.assert_allclose(scales, encoded.scales.numpy(), rtol=1e-5)
        audio = runtime.decode(reference, None if encoded.scales is None else encoded.scales.numpy(), wav.shape[-1])
        expected = codec.decode(encoded).numpy()
        gaps = first_difference_gaps(codec, wav, encoded.scales, reference, codes)
        out.append(Agreement(bandwidth, reference.shape[1], reference.size, float((codes == reference).mean()),
                             float(np.abs(audio - expected).max()), max(gaps, default=0.0), len(gaps)))
    return out


def first_difference_gaps(codec: Codec, wav: torch.Tensor, scales: torch.Tensor | None, reference: np.ndarray,
                          codes: np.ndarray) -> list[float]:
    """For each frame where `codes` differ from PyTorch's `reference` (which came with `scales`), the relative
    distance gap at the first level that differs, measured on PyTorch's residual there."""
    differing = np.argwhere((codes != reference).any(axis=1))  # (batch, frame)
    if not len(differing):
        return []
    features = []  # PyTorch's features, frame by frame in the order `encode` concatenates segments
    for i, (offset, n) in enumerate(codec.segments(wav.shape[-1])):
        segment = wav[..., offset : offset + n]
        if scales is not None:  # as the model normalised it
            segment = segment / scales[:, i].view(-1, 1, 1)
        features.append(codec.encode_features(segment))
    features = torch.cat(features, dim=-1)
    gaps = []
    for b, frame in differing:
        residual = features[b, :, frame].clone()
        for k, level in enumerate(codec.quantizer.levels[: reference.shape[1]]):
            ours, theirs = int(reference[b, k, frame]), int(codes[b, k, frame])
            if ours != theirs:
                d_ours = (residual - level.embedding[ours]).pow(2).sum()
                d_theirs = (residual - level.embedding[theirs]).pow(2).sum()
                gaps.append(float((d_theirs - d_ours) / d_ours.clamp_min(1e-12)))
                break
            residual = residual - level.embedding[ours]
    return gaps
