"""The codec: SEANet encoder, residual vector quantizer, SEANet decoder, behind one class.

`Codec` is what the library API, the trainer and the command line all use. Its inference path follows
EnCodec's `EncodecModel` step for step (optional per-segment normalisation, overlapping segments joined by a
linear cross-fade), which is what lets `Codec.from_encodec` reproduce EnCodec's codes exactly.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..errors import ConfigError, InvalidArgumentError
from ..modules import ConvLSTM, PaddedConv1d, PaddedConvTranspose1d, SEANetDecoder, SEANetEncoder, fold_weight_norm
from ..modules.init import lecun_rescale
from ..quantization import QuantizerOutput, build_quantizer
from . import encodec, identity, persistence
from .config import CodecConfig
from .segmented import decoded_segments, encode_segments

if TYPE_CHECKING:
    from .streaming import StreamingDecoder, StreamingEncoder


@dataclasses.dataclass
class EncodedAudio:
    """Codes of one batch of audio.

    codes [B, n_q, frames]: code indices; with segments, the segments' frames one after the other.
    scales [B, n_segments] or None: each segment's volume, when the codec normalises.
    length: samples per channel of the audio that was encoded (decode returns exactly this many).
    """

    codes: torch.Tensor
    scales: torch.Tensor | None
    length: int


@dataclasses.dataclass
class CodecOutput:
    """A training forward pass: reconstruction [B, C, T], codes [B, n_q, frames], quantizer loss, metrics."""

    audio: torch.Tensor
    codes: torch.Tensor
    quantizer_loss: torch.Tensor
    metrics: dict[str, float]


class Codec(nn.Module):
    """Neural audio codec: `encode` audio `[B, C, T]` to codes, `decode` them back, `forward` to train."""

    def __init__(self, config: CodecConfig | None = None):
        super().__init__()
        config = CodecConfig() if config is None else config
        self.config = config
        seanet = dict(
            channels=config.channels, dimension=config.dimension, n_filters=config.n_filters,
            n_residual_layers=config.n_residual_layers, ratios=list(config.ratios), activation=config.activation,
            norm=config.norm, kernel_size=config.kernel_size, last_kernel_size=config.last_kernel_size,
            residual_kernel_size=config.residual_kernel_size, dilation_base=config.dilation_base,
            causal=config.causal, pad_mode=config.pad_mode, true_skip=config.true_skip, compress=config.compress,
            lstm=config.lstm,
        )
        try:  # a layout the layers refuse (a norm, padding or activation they lack) is the config's fault
            self.encoder = SEANetEncoder(**seanet)
            self.decoder = SEANetDecoder(**seanet, trim_right_ratio=config.trim_right_ratio)
        except ValueError as error:
            raise ConfigError(f"model: {error}") from None
        if config.conv_init == "lecun":
            lecun_rescale(self.encoder)
            lecun_rescale(self.decoder)
        self.quantizer = build_quantizer(config.dimension, config.quantizer)
        self.register_buffer("code_frequencies", torch.zeros(config.quantizer.n_q, config.quantizer.bins))
        needed = self.n_q_for_bandwidth(max(config.target_bandwidths))
        if needed > self.quantizer.n_q:
            raise ConfigError(
                f"model: {max(config.target_bandwidths)} kb/s needs {needed} codebooks at {self.frame_rate:g} Hz, "
                f"but the quantizer has {self.quantizer.n_q}"
            )
        self.bandwidth = max(config.target_bandwidths)
        self._inference_id: str | None = None

    # -- properties --------------------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def hop_length(self) -> int:
        return math.prod(self.config.ratios)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def bandwidths(self) -> list[float]:
        return [float(b) for b in self.config.target_bandwidths]

    @property
    def bits_per_codebook(self) -> float:
        return math.log2(self.quantizer.bins)

    @property
    def segment_length(self) -> int | None:
        return None if self.config.segment is None else int(self.config.segment * self.sample_rate)

    @property
    def segment_stride(self) -> int | None:
        length = self.segment_length
        return None if length is None else max(1, int((1 - self.config.overlap) * length))

    def n_q_for_bandwidth(self, kbps: float) -> int:
        """Codebooks that fit in `kbps` (EnCodec's rule: at least one). One division of whole numbers (with
        power-of-two codebooks): through the frame rate, 3 kb/s at 16 kHz with a hop of 480 came to 8.999... codebooks
        and lost one."""
        bits_per_second_per_codebook = self.sample_rate * self.bits_per_codebook
        return max(1, math.floor(kbps * 1000 * self.hop_length / bits_per_second_per_codebook))

    def num_frames(self, length: int) -> int:
        """Code frames `encode` produces for `length` samples (all segments together)."""
        return sum(self.segment_frames(length))

    def segment_frames(self, length: int) -> list[int]:
        """Code frames of each segment of `length` samples (`segments`)."""
        return [math.ceil(n / self.hop_length) for _, n in self.segments(length)]

    def set_target_bandwidth(self, kbps: float) -> None:
        self.bandwidth = self.check_bandwidth(kbps)

    def check_bandwidth(self, kbps: float | None) -> float:
        """`kbps` as a float if the model offers it (None: the current bandwidth), else a clear error."""
        if kbps is None:
            return self.bandwidth
        if float(kbps) not in self.bandwidths:
            raise InvalidArgumentError(f"bandwidth {kbps} kb/s is not supported by this model: choose one of "
                                       f"{', '.join(f'{b:g}' for b in self.bandwidths)}")
        return float(kbps)

    # -- inference ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, wav: torch.Tensor, bandwidth: float | None = None) -> EncodedAudio:
        """Codes for `wav` [B, C, T] at `bandwidth` (kb/s; None: the current one, `set_target_bandwidth`). Without
        autograd (codes carry no gradient), which also lets the CPU take its tiled paths. Passing `bandwidth`
        leaves the model as it is, so threads sharing a model can code at different bandwidths."""
        self.check_audio(wav)
        codes, scales = encode_segments(self, [wav], wav.shape[-1], bandwidth=self.check_bandwidth(bandwidth))
        return EncodedAudio(codes, scales, wav.shape[-1])

    @torch.no_grad()
    def encode_segment(self, wav: torch.Tensor, bandwidth: float | None = None) -> tuple[torch.Tensor,
                                                                                          torch.Tensor | None]:
        """Codes `[B, n_q, frames]` of one segment `[B, C, t]` (the whole signal for a model without segments) at
        `bandwidth` (as `encode`), and its scale `[B]` when the model normalises; `encode` cuts the segments."""
        # A NaN would give codes anyway (all zeros), silently. A NaN/Inf makes the sum non-finite; the sum needs no
        # full-size temporary, and the exact check runs only if it is (huge finite samples can overflow it).
        if not torch.isfinite(wav.sum()) and not torch.isfinite(wav).all():
            raise InvalidArgumentError("audio contains NaN or infinite samples")
        wav, scale = self._normalise(wav)
        n_q = self.n_q_for_bandwidth(self.check_bandwidth(bandwidth))
        return self.quantizer.encode(self.encode_features(wav), n_q), scale

    def decode(self, encoded: EncodedAudio) -> torch.Tensor:
        """Audio `[B, C, encoded.length]` from codes."""
        if not isinstance(encoded, EncodedAudio):
            raise TypeError(f"decode takes the EncodedAudio that encode returns, got {type(encoded).__name__} (for "
                            f"bare codes, wrap them: EncodedAudio(codes, None, length))")
        codes, scales, length = encoded.codes, encoded.scales, encoded.length
        frames, segments = self.num_frames(length), len(self.segments(length))
        if codes.dim() != 3 or codes.shape[-1] != frames:
            raise ValueError(f"codes must be [batch, n_q, {frames}] for {length} samples, got {tuple(codes.shape)}")
        if self.config.normalize != (scales is not None) or (
            scales is not None and tuple(scales.shape) != (codes.shape[0], segments)
        ):
            expected = f"[{codes.shape[0]}, {segments}]" if self.config.normalize else "None"
            got = None if scales is None else tuple(scales.shape)
            raise ValueError(f"scales must be {expected} for this model, got {got}")
        pieces = list(decoded_segments(self, encoded))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=-1)

    def decode_segment(self, codes: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
        """Audio `[B, C, frames x hop]` of one segment's codes `[B, n_q, frames]` (all of them for a model without
        segments), times its `scale` `[B]` when the model normalises; `decode` cross-fades and trims these."""
        out = self.decode_features(self.quantizer.decode(codes))
        return out if scale is None else out * scale.view(-1, 1, 1)

    def streaming_encoder(self) -> StreamingEncoder:
        """A `StreamingEncoder`: `push` chunks, then `flush`; equal to `encode` for causal models."""
        from .streaming import StreamingEncoder

        return StreamingEncoder(self)

    def streaming_decoder(self) -> StreamingDecoder:
        """A `StreamingDecoder`: `push` codes, then `flush`; equal to `decode` for causal models."""
        from .streaming import StreamingDecoder

        return StreamingDecoder(self)

    # -- training ----------------------------------------------------------------------------------------------
    def forward(self, wav: torch.Tensor, n_q: int | None = None) -> CodecOutput:
        """Reconstruct `wav` [B, C, T] through the quantizer; in training mode the codebooks learn and, when the
        quantizer config asks for it, a random number of levels is used (quantizer dropout)."""
        self.check_audio(wav)
        normalised, scale = self._normalise(wav)
        if n_q is None and not self.training:
            n_q = self.n_q_for_bandwidth(self.bandwidth)
        quantized: QuantizerOutput = self.quantizer(self.encode_features(normalised), n_q)
        audio = self.decode_features(quantized.quantized)[..., : wav.shape[-1]]
        if scale is not None:
            audio = audio * scale.view(-1, 1, 1)
        return CodecOutput(audio, quantized.codes, quantized.loss, quantized.metrics)

    def prepare_for_inference(self, dtype: torch.dtype | None = None, compile: bool = False) -> "Codec":
        """Switch to eval mode, fold weight norm into plain weights and keep the kernels the convolutions derive
        from their weights (polyphase, channels-last) between calls: same outputs, less work per call.

        `dtype` (`torch.float16` or `torch.bfloat16`) runs the encoder and decoder networks in half precision, for
        GPUs: half the memory traffic, and tensor cores. The quantizer stays in float32, so codes are chosen as
        exactly as the features allow, and audio comes back as float32. Half precision, and float32 on the CPU
        (models without group norm), store activations time-major and run channels-last convolutions
        (`audiocodec.modules.conv`): the layout of tensor cores, and on the CPU faster than EnCodec's
        channel-major layout (docs/performance.md). Float32 on a GPU keeps EnCodec's layout, so prepare the model
        on the device it will run on. In float16 the LSTMs run one layer at a time (`LayerwiseLSTM`), which lets
        cuDNN use its persistent LSTM kernel; preparing again with float32 undoes that. `compile` hands both networks to
        `torch.compile`, which fuses the element-wise work around the convolutions; it pays on GPUs and on inputs
        of a fixed size (each new length may compile again, for tens of seconds).
        `docs/performance.md` has the measured speed of each.

        The folded model keeps its identity (`model_id` is computed before folding) but can no longer be saved
        or trained with weight norm, so do this only on a model used for inference.
        """
        if dtype is not None and dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise ValueError(f"dtype must be torch.float32, float16 or bfloat16, got {dtype}")
        if self._inference_id is None:
            self._inference_id = self.model_id()
            fold_weight_norm(self)
            for module in self.modules():
                if isinstance(module, (PaddedConv1d, PaddedConvTranspose1d)):
                    module.kernel.keep = True
        if dtype is not None:
            self.encoder.to(dtype)
            self.decoder.to(dtype)
        dtype = self.network_dtype
        # On the CPU, group norm (EnCodec's 48 kHz model) would copy time-major activations back and forth: 20%
        # slower than channel-major there.
        on_cpu = next(self.encoder.parameters()).device.type == "cpu"
        group_norm = any(isinstance(module, nn.GroupNorm) for module in self.modules())
        time_major = dtype in (torch.float16, torch.bfloat16) or (on_cpu and not group_norm)
        for module in self.modules():
            if isinstance(module, (PaddedConv1d, PaddedConvTranspose1d)):
                module.channels_last = time_major
            if isinstance(module, ConvLSTM):
                module.run_layerwise(dtype == torch.float16)
        if compile:
            self.encoder.compile()
            self.decoder.compile()
        return self.eval()

    @property
    def network_dtype(self) -> torch.dtype:
        """The dtype the encoder and decoder compute in (see `prepare_for_inference`); the quantizer's may differ."""
        return next(self.encoder.parameters()).dtype

    def encode_features(self, wav: torch.Tensor) -> torch.Tensor:
        """The encoder's latent `[B, dimension, frames]` of (normalised) audio, computed in the network's dtype and
        returned in the quantizer's (float32 unless the whole model was cast)."""
        return self.encoder(wav.to(self.network_dtype)).to(self.quantizer.dtype)

    def decode_features(self, latent: torch.Tensor) -> torch.Tensor:
        """The decoder's float32 audio for a latent `[B, dimension, frames]`, in the network's dtype."""
        return self.decoder(latent.to(self.network_dtype)).float()

    # -- persistence and identity (model/persistence.py, model/identity.py, model/encodec.py) ---------------------
    def save_pretrained(self, directory: str | Path, compact: bool = False, int8: bool = False) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (`persistence.save_pretrained`: `compact`
        float16 without derivable training state, `int8` weight matrices in 8 bits too)."""
        return persistence.save_pretrained(self, directory, compact, int8)

    def stored_state(self, compact: bool = False, int8: bool = False) -> dict[str, torch.Tensor]:
        """The tensors `save_pretrained` writes (`persistence.stored_state`)."""
        return persistence.stored_state(self, compact, int8)

    @classmethod
    def write_pretrained(cls, directory: str | Path, config: CodecConfig, state: dict[str, torch.Tensor],
                         compact: bool) -> Path:
        """Write a `stored_state` as a model directory (`persistence.write_pretrained`)."""
        return persistence.write_pretrained(cls, directory, config, state, compact)

    @classmethod
    def from_pretrained(cls, directory: str | Path = "default", map_location: str | torch.device = "cpu") -> Codec:
        """Load a model written by `save_pretrained`, or a transformers EnCodec folder; "default" is the model
        embedded in the package (`persistence.from_pretrained`)."""
        return persistence.from_pretrained(cls, directory, map_location)

    @classmethod
    def from_state(cls, config: CodecConfig, state: dict[str, torch.Tensor], source: str) -> Codec:
        """A model of `config` with `state` loaded (`persistence.from_state`)."""
        return persistence.from_state(cls, config, state, source)

    def load_weights(self, state: dict[str, torch.Tensor], source: str = "weights") -> None:
        """`load_state_dict` whose error lists missing, unexpected and misshapen keys in one line
        (`persistence.load_weights`)."""
        persistence.load_weights(self, state, source)

    @classmethod
    def from_encodec(cls, path: str | Path, variant: str) -> Codec:
        """Load a state-dict file as EnCodec publishes them (`encodec_24khz-*.th`, `encodec_48khz-*.th`)."""
        return encodec.from_encodec(cls, path, variant)

    @property
    def prepared(self) -> bool:
        """Whether `prepare_for_inference` folded the weights (such a model is not saved)."""
        return self._inference_id is not None

    def model_id(self) -> str:
        """A short hash of the config and every weight, written into compressed files (`identity.model_id`);
        a prepared model answers with the id it had before its weights were folded."""
        if self._inference_id is not None:
            return self._inference_id
        return identity.model_id(self.config, self.state_dict())

    # -- helpers -----------------------------------------------------------------------------------------------
    def check_audio(self, wav: Any, allow_empty: bool = False) -> None:
        """Refuse what is not float audio `[B, channels, T]`; `allow_empty`: T may be 0 (a streaming push)."""
        if not isinstance(wav, torch.Tensor) or wav.dim() != 3:
            shape = tuple(wav.shape) if isinstance(wav, torch.Tensor) else type(wav).__name__
            raise InvalidArgumentError(f"audio must be a tensor [batch, channels, time], got {shape}")
        if wav.shape[1] != self.channels:
            raise InvalidArgumentError(f"this model expects {self.channels} channel(s), got {wav.shape[1]}")
        if not wav.is_floating_point():
            raise InvalidArgumentError(f"audio must be a float tensor, got {wav.dtype}")
        if wav.shape[-1] == 0 and not allow_empty:
            raise InvalidArgumentError("audio is empty (0 samples)")

    def segments(self, length: int) -> list[tuple[int, int]]:
        """(offset, length) of each segment EnCodec would cut from `length` samples."""
        segment_length, stride = self.segment_length, self.segment_stride
        if segment_length is None:
            return [(0, length)]
        return [(offset, min(segment_length, length - offset)) for offset in range(0, length, stride)]

    def _normalise(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Divide by the RMS of the mono mix when the config normalises; returns the scale [B] too."""
        if not self.config.normalize:
            return wav, None
        volume = wav.mean(dim=1, keepdim=True).pow(2).mean(dim=2, keepdim=True).sqrt()
        scale = 1e-8 + volume
        return wav / scale, scale.view(-1)

