"""The header <-> model mapping: a model's codes packed into a `.ac` file, and read back for a model.

`bitstream` knows the container and `entropy` the payload; this module knows which model fields a header
records, checks that a file was made by the model given before anything is decoded, and refuses audio a file
could not hold before any work.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import FormatError, InvalidArgumentError, ModelMismatchError
from ..io.audio import resampling_ratio
from ..model import Codec, EncodedAudio
from ..pretrained import earlier_default
from . import bitstream, checks, entropy


def check_duration(length: int, sample_rate: int, model: Codec) -> None:
    """Refuse, before any work, audio longer than a `.ac` file holds (`bitstream.MAX_SECONDS`), or whose codes
    would be (a model whose segments overlap codes some audio twice)."""
    hours = f"{length / sample_rate / 3600:.1f} hours of audio"
    if length > bitstream.MAX_SECONDS * sample_rate:
        raise InvalidArgumentError(f"{hours}, more than the {bitstream.MAX_SECONDS // 3600} a .ac file holds: cut "
                                   f"it into parts")
    original, coded = resampling_ratio(sample_rate, model.sample_rate)
    if model.num_frames(math.ceil(length * coded / original)) > bitstream.max_frames(model.frame_rate):
        raise InvalidArgumentError(f"{hours} make more code frames than a .ac file holds with this model, whose "
                                   f"segments overlap: cut it into parts")


def pack(model: Codec, encoded: EncodedAudio, bandwidth: float, original_rate: int, original_channels: int,
         original_length: int, gain: float | None, silent: list[tuple[int, int]] | None = None) -> bytes:
    """The bytes of a `.ac` file holding `encoded` (one signal, coded at `bandwidth`), entropy-coded with the
    model's tables; `silent`: the input's silent runs (`coding.silence`), decoded as exact zeros."""
    codes = encoded.codes[0].cpu().numpy()
    tables = entropy.probability_tables(model.code_frequencies[: codes.shape[0]].cpu().numpy())
    header = bitstream.Header(
        model_id=model.model_id(), sample_rate=model.sample_rate,
        channels=model.channels, frame_rate=model.frame_rate, bins=model.quantizer.bins, n_q=codes.shape[0],
        frames=codes.shape[1], length=encoded.length, original_rate=original_rate,
        original_channels=original_channels, original_length=original_length, bandwidth=bandwidth,
        scales=None if encoded.scales is None else [float(s) for s in encoded.scales[0]], gain=gain,
        silence=list(silent) if silent else None,
    )
    payload = entropy.encode_codes(codes, tables)
    if entropy.fixed_width_bytes(codes.size, header.bins) < len(payload):  # audio unlike the training data
        payload, header.fixed_width = entropy.pack_fixed(codes, header.bins), True
    return bitstream.pack(header, payload)


def read_encoded(data: bytes, model: Codec) -> tuple[bitstream.Header, EncodedAudio]:
    """The header of `.ac` bytes, and their codes as the model's input, checked against `model`."""
    header, codes = read_codes(data, model)
    where = next(model.parameters()).device
    scales = None if header.scales is None else torch.tensor([header.scales], dtype=torch.float32, device=where)
    return header, EncodedAudio(torch.from_numpy(codes)[None].to(where), scales, header.length)


def read_codes(data: bytes, model: Codec) -> tuple[bitstream.Header, np.ndarray]:
    """The header and the codes `[n_q, frames]` of `.ac` bytes, checked against `model`, without decoding audio."""
    header, payload = bitstream.unpack(bytes(data))
    check_model(header, model)
    checks.check_sizes(header, payload, entropy.probability_tables(model.code_frequencies[: header.n_q].cpu().numpy()))
    if header.fixed_width:
        codes = entropy.unpack_fixed(payload, header.bins, header.n_q, header.frames)
    else:
        tables = entropy.probability_tables(model.code_frequencies[: header.n_q].cpu().numpy())
        codes = entropy.decode_codes(payload, tables, header.n_q, header.frames)
    if codes.max() >= header.bins:
        raise FormatError("corrupted payload (a code is out of range)")
    return header, codes


def check_model(header: bitstream.Header, model: Codec) -> None:
    """Refuse to decode with another model than the one that encoded, naming both; check the layout too."""
    ours = f"{model.config.name} ({model.model_id()})"
    if header.model_id != model.model_id():
        earlier = earlier_default(header.model_id)
        hint = f"; it was {earlier}: pass it with --model" if earlier else ""
        raise ModelMismatchError(f"the file was encoded with model {header.model_description()}, but the model "
                                 f"given is {ours}{hint}")
    if header.n_q > model.quantizer.n_q or header.bins != model.quantizer.bins:
        raise FormatError(f"corrupted header: {header.n_q} codebooks of {header.bins} codes do not fit model {ours}")
    if (header.sample_rate, header.channels) != (model.sample_rate, model.channels):
        raise FormatError(f"corrupted header: {header.channels} channel(s) at {header.sample_rate} Hz do not match "
                          f"model {ours}")
    if not math.isclose(header.frame_rate, model.frame_rate, rel_tol=1e-6):  # stored as float32
        raise FormatError(f"corrupted header: {header.frame_rate:g} frames/s do not match model {ours}")
    # The original length follows from the coded one (resampling gives ceil(length * ratio) samples); checking it
    # bounds what decompressing may allocate.
    original, coded = resampling_ratio(header.original_rate, model.sample_rate)
    if abs(header.original_length - header.length * original / coded) > original / coded + 1:
        raise FormatError("corrupted header: the original length does not match the coded length")
    if header.frames != model.num_frames(header.length) or header.scales is not None and (
        len(header.scales) != len(model.segments(header.length))
    ):
        raise FormatError("corrupted header: the frame or segment count does not match the audio length")
