"""Running an exported codec with onnxruntime and numpy only: no PyTorch.

`OnnxCodec(folder)` loads what `audiocodec export MODEL OUT --onnx` wrote and codes like `Codec`: `encode` cuts
segments as `Codec.encode` does (for models that code in segments) and returns every level's codes, or the first
k for a bandwidth; `decode` joins decoded segments with EnCodec's linear cross-fade and trims to the coded length.
`stream_encoder()` / `stream_decoder()` loop the step graphs, holding their state.

This module imports numpy, json and onnxruntime only, so that a deployment needs neither torch nor the rest of
the package (docs/deploy.md); `decode_file` adds the `.ac` reader (`audiocodec.format.bitstream` and
`audiocodec.format.entropy`), which needs numpy and constriction, the range coder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only: onnxruntime is imported when a session is first needed
    from onnxruntime import InferenceSession


class OnnxCodec:
    """An exported codec (a folder with `onnx.json`, `encoder.onnx`, `decoder.onnx`, ...) in onnxruntime.

    Args:
        folder: the export's folder.
        threads: onnxruntime's intra-op threads (None: its default, all cores).
    """

    def __init__(self, folder: str | Path, threads: int | None = None):
        import onnxruntime

        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "onnx.json").read_text(encoding="utf-8"))
        options = onnxruntime.SessionOptions()
        # Not the warning that `levels`, an input with a default, is not folded as a constant: it is meant to vary.
        options.log_severity_level = 3
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self._options = options
        self._sessions: dict = {}
        m = self.manifest
        self.sample_rate: int = m["sample_rate"]
        self.channels: int = m["channels"]
        self.hop_length: int = m["hop_length"]
        self.n_q: int = m["n_q"]
        self.normalize: bool = m["normalize"]
        self.segment_length: int | None = m["segment_length"]
        self.segment_stride: int | None = m["segment_stride"]

    def session(self, name: str) -> InferenceSession:
        """The onnxruntime session of graph `name` ("encoder", "decoder", "encoder_step", "decoder_step")."""
        if name not in self._sessions:
            import onnxruntime

            path = self.folder / f"{name}.onnx"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not in this export" + (
                    f" ({self.manifest.get('streaming_unavailable')})" if "step" in name else ""))
            self._sessions[name] = onnxruntime.InferenceSession(str(path), self._options,
                                                                providers=["CPUExecutionProvider"])
        return self._sessions[name]

    def levels(self, bandwidth: float | None) -> int:
        """Codebooks used at `bandwidth` kb/s (None: all of them)."""
        if bandwidth is None:
            return self.n_q
        table = self.manifest["bandwidths"]
        key = f"{float(bandwidth):g}"
        if key not in table:
            raise ValueError(f"bandwidth {bandwidth} kb/s is not one of {', '.join(table)}")
        return table[key]

    def segments(self, length: int) -> list[tuple[int, int]]:
        """(offset, length) of each segment of a `length`-sample signal (`Codec.segments`)."""
        if self.segment_length is None:
            return [(0, length)]
        return [(offset, min(self.segment_length, length - offset))
                for offset in range(0, length, self.segment_stride)]

    def encode(self, audio: np.ndarray, bandwidth: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Codes int64 `[B, k, frames]` of float32 `audio` `[B, C, T]` (k for `bandwidth`), and the scales
        `[B, segments]` for a model that normalises (else None)."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if audio.ndim != 3 or audio.shape[1] != self.channels or audio.shape[2] == 0:
            raise ValueError(f"audio must be [batch, {self.channels}, samples > 0], got {audio.shape}")
        k = self.levels(bandwidth)
        encoder = self.session("encoder")
        codes, scales = [], []
        for offset, n in self.segments(audio.shape[-1]):
            out = encoder.run(None, {"audio": audio[..., offset : offset + n], "levels": np.array(k)})
            codes.append(out[0])
            if self.normalize:
                scales.append(out[1])
        return np.concatenate(codes, axis=-1), np.stack(scales, axis=1) if scales else None

    def decode(self, codes: np.ndarray, scales: np.ndarray | None, length: int) -> np.ndarray:
        """Float32 audio `[B, C, length]` of codes `[B, k, frames]` (and scales) that coded `length` samples."""
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        decoder = self.session("decoder")
        segments = self.segments(length)
        frames = [math.ceil(n / self.hop_length) for _, n in segments]
        if codes.ndim != 3 or codes.shape[-1] != sum(frames) or not 1 <= codes.shape[1] <= self.n_q:
            raise ValueError(f"codes must be [batch, 1..{self.n_q}, {sum(frames)}] for {length} samples, "
                             f"got {codes.shape}")
        pieces, start = [], 0
        for i, count in enumerate(frames):
            feed = {"codes": codes[..., start : start + count]}
            if self.normalize:
                feed["scale"] = np.ascontiguousarray(scales[:, i], dtype=np.float32)
            pieces.append(decoder.run(None, feed)[0])
            start += count
        if len(pieces) == 1:
            return pieces[0][..., :length]
        return overlap_add(pieces, self.segment_stride)[..., :length]

    def stream_encoder(self) -> "StreamStep":
        """Steps of `encoder_step.onnx`: `push(audio [B, C, n * hop])` -> codes `[B, n_q, n]`."""
        return StreamStep(self, "encoder_step", "audio")

    def stream_decoder(self) -> "StreamStep":
        """Steps of `decoder_step.onnx`: `push(codes [B, k, n])` -> audio `[B, C, n * hop]`."""
        return StreamStep(self, "decoder_step", "codes")


def decode_file(data: bytes, codec: OnnxCodec) -> tuple[np.ndarray, int]:
    """Float32 audio `[channels, samples]` of the bytes of a `.ac` file, and its rate: `audiocodec decompress`
    without torch, for files coded at the model's own rate and channel count. (`decompress` also resamples and
    remixes files coded from other formats, with torchaudio: here those are refused.)"""
    from ..errors import FormatError, ModelMismatchError
    from ..format.bitstream import unpack
    from ..format.entropy import decode_codes, probability_tables, unpack_fixed

    header, payload = unpack(bytes(data))
    if header.model_id != codec.manifest["model_id"]:
        raise ModelMismatchError(f"the file was encoded with model {header.model_description()}, but the export is "
                                 f"of model {codec.manifest['model_id']}")
    if header.n_q > codec.n_q or (header.sample_rate, header.channels) != (codec.sample_rate, codec.channels):
        raise FormatError("corrupted header: its layout does not fit the model")
    if (header.original_rate, header.original_channels) != (header.sample_rate, header.channels):
        raise ValueError(f"the file was coded from {header.original_channels} channel(s) at {header.original_rate} "
                         f"Hz: restoring that format needs resampling (audiocodec decompress does it with torchaudio)")
    if header.fixed_width:
        codes = unpack_fixed(payload, header.bins, header.n_q, header.frames)
    else:
        frequencies = np.load(codec.folder / "code_frequencies.npy", allow_pickle=False)
        codes = decode_codes(payload, probability_tables(frequencies[: header.n_q]), header.n_q, header.frames)
    if codes.max() >= header.bins:
        raise FormatError("corrupted payload (a code is out of range)")
    scales = None if header.scales is None else np.array([header.scales], dtype=np.float32)
    audio = codec.decode(codes[None].astype(np.int64), scales, header.length)[0]
    if header.gain is not None:
        audio = audio / np.float32(header.gain)
    audio = audio[:, : header.original_length]
    if audio.shape[-1] < header.original_length:
        audio = np.pad(audio, ((0, 0), (0, header.original_length - audio.shape[-1])))
    return audio, header.original_rate


class StreamStep:
    """One stream through a step graph: holds the state between `push` calls (all zeros at first)."""

    def __init__(self, codec: OnnxCodec, graph: str, input_name: str):
        streaming = codec.manifest.get("streaming")
        if not streaming:
            raise ValueError(f"this export has no step graphs ({codec.manifest.get('streaming_unavailable')})")
        self.session = codec.session(graph)
        self.input_name = input_name
        self.states = streaming[graph]["states"]
        self.first_frames = streaming["first_step_frames"][graph.split("_")[0]]
        self.unit = codec.hop_length if input_name == "audio" else 1
        self.values: dict[str, np.ndarray] | None = None

    def push(self, x: np.ndarray) -> np.ndarray:
        """The output of one step: `x` holds a whole number of frames, the first push at least `first_frames`."""
        x = np.ascontiguousarray(x, dtype=np.float32 if self.input_name == "audio" else np.int64)
        frames, rest = divmod(x.shape[-1], self.unit)
        if rest or frames == 0:
            raise ValueError(f"a step takes a whole number of frames ({self.unit} samples each), got {x.shape[-1]}")
        if self.values is None:
            if frames < self.first_frames:
                raise ValueError(f"the first step needs at least {self.first_frames} frames, got {frames}")
            batch = x.shape[0]
            self.values = {s["input"]: np.zeros([batch if d == "batch" else d for d in s["shape"]],
                                                dtype=np.bool_ if s["dtype"] == "bool" else np.float32)
                           for s in self.states}
        outputs = self.session.run(None, {self.input_name: x, **self.values})
        self.values = {s["input"]: value for s, value in zip(self.states, outputs[1:])}
        return outputs[0]


def overlap_add(pieces: list[np.ndarray], stride: int) -> np.ndarray:
    """EnCodec's join of decoded segments `stride` samples apart: each weighted by a triangle peaking at its middle
    (the first segment's length sets it), the sum divided by the summed weights (`audiocodec.model.segmented`)."""
    n = pieces[0].shape[-1]
    t = np.linspace(0.0, 1.0, n + 2, dtype=np.float32)[1:-1]
    weight = (0.5 - np.abs(t - np.float32(0.5))).astype(np.float32)
    total = stride * (len(pieces) - 1) + pieces[-1].shape[-1]
    out = np.zeros(pieces[0].shape[:-1] + (total,), dtype=np.float32)
    weight_sum = np.zeros(total, dtype=np.float32)
    for i, piece in enumerate(pieces):
        m = piece.shape[-1]
        out[..., i * stride : i * stride + m] += weight[:m] * piece
        weight_sum[i * stride : i * stride + m] += weight[:m]
    return out / weight_sum
