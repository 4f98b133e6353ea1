"""The codec: SEANet encoder, residual vector quantizer, SEANet decoder, behind one class.

`Codec` is what the library API, the trainer and the command line all use. Its inference path follows
EnCodec's `EncodecModel` step for step (optional per-segment normalisation, overlapping segments joined by a
linear cross-fade), which is what lets `Codec.from_encodec` reproduce EnCodec's codes exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from . import int8_weights
from .atomic import atomic_paths
from .bitstream import MAX_CHANNELS
from .config import Config
from .defaults import CONFIG_FILE, model_directory
from .errors import AudioCodecError, ConfigError, InvalidArgumentError, ModelMismatchError
from .modules import ConvLSTM, PaddedConv1d, PaddedConvTranspose1d, SEANetDecoder, SEANetEncoder, fold_weight_norm
from .modules.init import INITS, lecun_rescale
from .quantization import QuantizerConfig, QuantizerOutput, build_quantizer
from .segmented import decoded_segments, encode_segments

WEIGHTS_FILE = "model.safetensors"
#: The model directory's format: 1, or 2 for models with int8 weights, which an older audiocodec cannot load (it
#: refuses version 2 by name, where version 1 with int8 tensors would be "unexpected keys").
FORMAT_VERSION, INT8_FORMAT_VERSION = 1, 2


@dataclasses.dataclass
class CodecConfig(Config):
    """Everything needed to rebuild a codec; saved beside its weights and in every checkpoint.

    The SEANet fields mirror EnCodec's arguments. `segment` (seconds) and `overlap` (fraction) cut long inputs
    into overlapping segments that are encoded independently; with `normalize`, each segment is divided by its
    RMS volume before encoding and the scale travels with the codes (EnCodec's 48 kHz model does both).
    """

    name: str = "audiocodec_24khz"
    sample_rate: int = 24000
    channels: int = 1
    dimension: int = 128
    n_filters: int = 32
    n_residual_layers: int = 1
    ratios: Sequence[int] = (8, 5, 4, 2)
    activation: str = "ELU"
    norm: str = "weight_norm"
    kernel_size: int = 7
    last_kernel_size: int = 7
    residual_kernel_size: int = 3
    dilation_base: int = 2
    causal: bool = True
    pad_mode: str = "reflect"
    true_skip: bool = False
    compress: int = 2
    lstm: int = 2
    trim_right_ratio: float = 1.0
    target_bandwidths: Sequence[float] = (1.5, 3.0, 6.0, 12.0, 24.0)
    normalize: bool = False
    segment: float | None = None
    overlap: float = 0.01
    quantizer: QuantizerConfig = dataclasses.field(default_factory=lambda: QuantizerConfig(n_q=32, bins=1024))
    conv_init: str = "pytorch"  # "lecun": variance-preserving, for short trainings (audiocodec.modules.init)

    def __post_init__(self) -> None:
        # JSON and YAML give lists: store tuples, so a config read back from a saved model equals the recipe's.
        self.ratios = tuple(int(r) for r in self.ratios)
        self.target_bandwidths = tuple(float(b) for b in self.target_bandwidths)
        if self.conv_init not in INITS:
            raise ConfigError(f"conv_init must be one of {', '.join(INITS)}, got {self.conv_init!r}")
        # Upper bounds far beyond any real codec's: a damaged config.json must be refused in one line before its
        # layers are built (a dimension of 1e9 asked for 10 TB; 100,000 residual layers ran for hours).
        checks = [
            ("sample_rate", self.sample_rate >= 1, "at least 1"),
            ("channels", 1 <= self.channels <= MAX_CHANNELS, f"in [1, {MAX_CHANNELS}]"),
            ("dimension", 1 <= self.dimension <= 8192, "in [1, 8192]"),
            ("n_filters", 1 <= self.n_filters <= 4096, "in [1, 4096]"),
            ("n_residual_layers", 0 <= self.n_residual_layers <= 64, "in [0, 64]"),
            ("ratios", len(self.ratios) > 0 and all(r >= 1 for r in self.ratios), "a non-empty list of integers >= 1"),
            ("kernel_size", 1 <= self.kernel_size <= 4096, "in [1, 4096]"),
            ("last_kernel_size", 1 <= self.last_kernel_size <= 4096, "in [1, 4096]"),
            ("residual_kernel_size", 1 <= self.residual_kernel_size <= 4096, "in [1, 4096]"),
            ("dilation_base", self.dilation_base >= 1, "at least 1"),
            ("compress", 1 <= self.compress <= self.n_filters, "in [1, n_filters] (it divides the residual width)"),
            ("lstm", 0 <= self.lstm <= 64, "in [0, 64]"),
            ("target_bandwidths", len(self.target_bandwidths) > 0 and all(b > 0 for b in self.target_bandwidths),
             "a non-empty list of positive numbers"),
            ("segment", self.segment is None or self.segment > 0, "positive, or null"),
            ("overlap", 0 <= self.overlap < 1, "in [0, 1)"),
        ]
        self._check("model", checks)

    @classmethod
    def encodec_24khz(cls) -> "CodecConfig":
        """EnCodec's causal 24 kHz mono model."""
        return cls(name="encodec_24khz")

    @classmethod
    def encodec_48khz(cls) -> "CodecConfig":
        """EnCodec's non-causal 48 kHz stereo model: time group norm, 1 s segments normalised by volume."""
        return cls(
            name="encodec_48khz", sample_rate=48000, channels=2, causal=False, norm="time_group_norm",
            target_bandwidths=(3.0, 6.0, 12.0, 24.0), normalize=True, segment=1.0,
            quantizer=QuantizerConfig(n_q=16, bins=1024),
        )


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
        self._check_audio(wav)
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

    def streaming_encoder(self):
        """A `StreamingEncoder`: `push` chunks, then `flush`; equal to `encode` for causal models."""
        from .streaming import StreamingEncoder

        return StreamingEncoder(self)

    def streaming_decoder(self):
        """A `StreamingDecoder`: `push` codes, then `flush`; equal to `decode` for causal models."""
        from .streaming import StreamingDecoder

        return StreamingDecoder(self)

    # -- training ----------------------------------------------------------------------------------------------
    def forward(self, wav: torch.Tensor, n_q: int | None = None) -> CodecOutput:
        """Reconstruct `wav` [B, C, T] through the quantizer; in training mode the codebooks learn and, when the
        quantizer config asks for it, a random number of levels is used (quantizer dropout)."""
        self._check_audio(wav)
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
        on the device it will run on. In float16 the LSTMs run one layer at a time (`LayerwiseLSTM`), which lets cuDNN use its
        persistent LSTM kernel; preparing again with float32 undoes that. `compile` hands both networks to
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

    # -- persistence -------------------------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, compact: bool = False, int8: bool = False) -> Path:
        """Write `config.json` and `model.safetensors` into `directory` (created if needed); no pickle.

        `compact` writes what inference needs and training can rebuild: float16 weights and codebooks, without
        the quantizer's derivable training state (`derivable_state_keys`); usage counts and the entropy coder's
        tables stay float32. About a third of the full size, which is how the default model fits in the package;
        its codes are those of the model as loaded from the file, whose id `config.json` records. `int8` (with
        `compact`) stores the encoder's and decoder's weight matrices in 8 bits (`int8_weights`): about half the
        compact size again, for a larger model that must ship small (`INT8_FORMAT_VERSION`).
        """
        return self.write_pretrained(directory, self.config, self.stored_state(compact, int8), compact)

    def stored_state(self, compact: bool = False, int8: bool = False) -> dict[str, torch.Tensor]:
        """The tensors `save_pretrained` writes. `Codec.from_state` of them is the model as it will load, on
        which `export --recount` counts the codes before `write_pretrained` writes them."""
        if self._inference_id is not None:
            raise RuntimeError("a model prepared for inference has folded weights: save it before preparing it")
        if int8 and not compact:
            raise ValueError("int8 weights are a compact export: pass compact=True too")
        state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)  # the caller may change them
                 for k, v in self.state_dict().items()}
        return self._compact_state(state, int8) if compact else state

    @classmethod
    def write_pretrained(cls, directory: str | Path, config: CodecConfig, state: dict[str, torch.Tensor],
                         compact: bool) -> Path:
        """Write a `stored_state` (`compact` or not) as a model directory, under the id of the model it loads as."""
        from safetensors.torch import save_file

        model = cls.from_state(config, state, "the state to write")
        int8 = int8_weights.holds_int8(state)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"format_version": INT8_FORMAT_VERSION if int8 else FORMAT_VERSION, "model_id": model.model_id(),
                "compact": compact, **({"int8": True} if int8 else {}), "config": config.to_dict()}
        # Both files or neither: weights under an old config's id would be refused as damaged. A link in the folder
        # is replaced, not written through: it may point into the folder the model was loaded from.
        with atomic_paths(directory / WEIGHTS_FILE, directory / CONFIG_FILE, through_links=False) as (weights, conf):
            save_file(state, weights, metadata={"model_id": meta["model_id"]})  # permissions as open() would give
            Path(conf).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path = "default", map_location: str | torch.device = "cpu") -> "Codec":
        """Load a model written by `save_pretrained`; "default" is the model embedded in the package."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError(f"from_pretrained takes a model directory or 'default', got {type(directory).__name__}")

        if str(directory) == "default" and not (model_directory("default") / CONFIG_FILE).is_file():
            raise AudioCodecError("no default model is embedded in this installation; pass a model directory")
        directory = model_directory(directory)
        config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise AudioCodecError(f"{directory}: not a model directory ({path.name} is missing)")
        try:
            meta = json.loads(config_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise AudioCodecError(f"{config_path}: not a valid model config ({error})") from None
        version = meta.get("format_version") if isinstance(meta, dict) else None
        if type(version) is not int or version not in (FORMAT_VERSION, INT8_FORMAT_VERSION):  # not true, 2.0
            raise AudioCodecError(f"{config_path}: unsupported model format version {version!r}")
        if not isinstance(meta.get("config"), dict):
            raise AudioCodecError(f"{config_path}: not a valid model config (its 'config' is not a mapping)")
        try:
            config = CodecConfig.from_dict(meta["config"], where="config")
            model = cls(config)
        except (ValueError, TypeError) as error:  # ConfigError, or a layout the modules refuse
            raise AudioCodecError(f"{config_path}: not a valid model config ({error})") from None
        try:
            state = load_file(str(weights_path), device=str(map_location))
        except (SafetensorError, OSError) as error:
            raise AudioCodecError(f"{weights_path}: unreadable weights ({error})") from None
        model.load_weights(state, source=str(weights_path))
        recorded = meta.get("model_id")
        if recorded is None and version == INT8_FORMAT_VERSION:  # 8-bit damage can decode plausibly
            raise AudioCodecError(f"{config_path}: not a valid model config (it has no model_id)")
        if recorded is not None and recorded != model.model_id():  # a changed byte changes every code it decodes
            raise AudioCodecError(f"{directory}: damaged model: its weights are not those of the model "
                                  f"{recorded} its config records")
        return model.eval()

    @classmethod
    def from_state(cls, config: CodecConfig, state: dict[str, torch.Tensor], source: str) -> "Codec":
        """A model of `config` with `state` loaded (`load_weights`): the model a `stored_state` loads as, whose
        id and codes are those of the file it will be written to. `source` names the state in errors."""
        model = cls(config)
        model.load_weights(state, source=source)
        return model

    def load_weights(self, state: dict[str, torch.Tensor], source: str = "weights") -> None:
        """`load_state_dict` whose error lists missing, unexpected and misshapen keys in one line.

        The quantizer's derivable training state may be missing (a compact export): it is rebuilt. Tensors are
        converted to the model's dtypes (a compact export stores float16, or int8 with scales).
        """
        state = int8_weights.dequantize(state, source)
        derivable = self._derivable_keys()
        own = self.state_dict()
        problems = _key_mismatch({k: v for k, v in own.items() if k not in derivable or k in state}, state)
        if problems:
            raise ModelMismatchError(f"{source} do not fit this model: {problems}")
        broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
        if broken:  # the model would decode silence or full-scale noise, without a word
            raise ModelMismatchError(f"{source}: damaged weights: {_abbreviate(sorted(broken))} hold NaN or "
                                     f"infinite values")
        self.load_state_dict(state, strict=False)
        if derivable - set(state):
            self.quantizer.restore_training_state()

    def _derivable_keys(self) -> set[str]:
        """This model's state-dict keys that a compact export leaves out and loading rebuilds."""
        return {"quantizer." + key for key in self.quantizer.derivable_state_keys()}

    def _compact_state(self, state: dict[str, torch.Tensor], int8: bool) -> dict[str, torch.Tensor]:
        """`state` without the derivable keys, floating tensors in float16 except counts (which can exceed
        float16's range and set the entropy coder's tables) and int8 scales (rounded from the float32 weights,
        so that writing a loaded int8 model again gives back its integers and, but for a last bit, its scales)."""
        derivable = self._derivable_keys()
        state = {k: v for k, v in state.items() if k not in derivable}
        if int8:
            state = int8_weights.quantize(state)
        exact = ("code_frequencies", "cluster_usage", int8_weights.SCALE_SUFFIX)
        return {k: v.half() if v.is_floating_point() and not k.endswith(exact) else v for k, v in state.items()}

    @classmethod
    def from_encodec(cls, path: str | Path, variant: str) -> "Codec":
        """Load a state-dict file as EnCodec publishes them (`encodec_24khz-*.th`, `encodec_48khz-*.th`)."""
        from .encodec_compat import convert_encodec_state

        presets = {"24khz": CodecConfig.encodec_24khz, "48khz": CodecConfig.encodec_48khz}
        if variant not in presets:
            raise ValueError(f"variant must be '24khz' or '48khz', got {variant!r}")
        path = Path(path)
        if not path.is_file():
            raise AudioCodecError(f"{path}: no such EnCodec weights file")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch raises many types for a foreign or damaged file
            raise AudioCodecError(f"{path}: not a PyTorch state-dict file ({type(error).__name__})") from None
        if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                  for k, v in state.items()):
            raise ModelMismatchError(f"{path}: expected a state dict of tensors")
        model = cls(presets[variant]())
        network, quantizer = convert_encodec_state(state)
        own_network = {k: v for k, v in model.state_dict().items()
                       if not k.startswith("quantizer.") and k != "code_frequencies"}
        problems = _key_mismatch(own_network, network)
        if problems:
            raise ModelMismatchError(f"{path} is not an EnCodec {variant} checkpoint: {problems}")
        model.load_state_dict(network, strict=False)
        model.quantizer.load_encodec_state_dict(quantizer)
        return model.eval()

    def model_id(self) -> str:
        """A short hash of the config and every weight: the identity written into compressed files.

        Of the quantizer's config only what decoding depends on is hashed (`QuantizerConfig.identity`): a new
        training option must not change the identity of existing models, or their compressed files would stop
        decoding.
        """
        if self._inference_id is not None:
            return self._inference_id
        config = self.config.to_dict()
        config["quantizer"] = self.config.quantizer.identity()
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()[:16]

    # -- helpers -----------------------------------------------------------------------------------------------
    def _check_audio(self, wav: Any, allow_empty: bool = False) -> None:
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


def _key_mismatch(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """'missing keys: ...; unexpected keys: ...; wrong shapes: ...' for what differs, or '' if nothing does."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    misshapen = sorted(k for k in set(own) & set(given) if own[k].shape != given[k].shape)
    return "; ".join(f"{label}: {_abbreviate(keys)}" for label, keys in
                     (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", misshapen)) if keys)


def _abbreviate(keys: list[str], limit: int = 6) -> str:
    return ", ".join(keys[:limit]) + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")
