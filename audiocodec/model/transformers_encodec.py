"""Reading transformers' EnCodec checkpoints: a folder as `EncodecModel.save_pretrained` writes it (`config.json`
with `model_type` "encodec", and `model.safetensors`), as `facebook/encodec_24khz` and `_48khz` are published.

transformers' EnCodec is EnCodec's network under other names: `encoder.layers.N` for EnCodec's `encoder.model.N`,
one `conv` level where EnCodec nests `conv.conv`, `quantizer.layers.i.codebook` for `quantizer.vq.layers.i.
_codebook`; weight norm is stored as `parametrizations.weight.original0/1` (or, by older versions, `weight_g` /
`weight_v`). Its config names EnCodec's arguments differently (`num_filters`, `upsampling_ratios`,
`chunk_length_s`, `use_conv_shortcut`, ...). Reading it needs safetensors only, not transformers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import AudioCodecError, ModelMismatchError
from .config import CodecConfig

if TYPE_CHECKING:
    from .codec import Codec


def is_transformers_config(meta: Any) -> bool:
    """Whether a parsed config.json is a transformers model's (it names a `model_type`; ours has
    `format_version`)."""
    return isinstance(meta, dict) and "model_type" in meta and "format_version" not in meta


def codec_config(meta: dict, where: str) -> CodecConfig:
    """The `CodecConfig` of a transformers `EncodecConfig` (as a dict); one-line errors for anything else."""
    from ..quantization import QuantizerConfig

    kind = meta.get("model_type")
    if kind != "encodec":
        raise AudioCodecError(f"{where}: a transformers model of type {kind!r}, not EnCodec: audiocodec reads "
                              f"transformers' EnCodec checkpoints only")
    defaults = {"sampling_rate": 24000, "audio_channels": 1, "hidden_size": 128, "num_filters": 32,
                "num_residual_layers": 1, "upsampling_ratios": [8, 5, 4, 2], "norm_type": "weight_norm",
                "kernel_size": 7, "last_kernel_size": 7, "residual_kernel_size": 3, "dilation_growth_rate": 2,
                "use_causal_conv": True, "pad_mode": "reflect", "compress": 2, "num_lstm_layers": 2,
                "trim_right_ratio": 1.0, "codebook_size": 1024, "codebook_dim": None, "use_conv_shortcut": True,
                "target_bandwidths": [1.5, 3.0, 6.0, 12.0, 24.0], "normalize": False, "chunk_length_s": None,
                "overlap": None}
    c = {key: meta.get(key, value) for key, value in defaults.items()}
    if c["codebook_dim"] not in (None, c["hidden_size"]):
        raise AudioCodecError(f"{where}: codebook_dim {c['codebook_dim']} differs from hidden_size "
                              f"{c['hidden_size']}, which EnCodec's quantizer cannot do")
    ratios = [int(r) for r in c["upsampling_ratios"]]
    hop = 1
    for r in ratios:
        hop *= r
    # transformers: frame_rate = ceil(rate / hop), num_quantizers = 1000 * max bandwidth // (frame_rate * 10)
    frame_rate = -(-int(c["sampling_rate"]) // hop)
    n_q = int(1000 * max(c["target_bandwidths"]) // (frame_rate * 10))
    try:
        return CodecConfig(
            name=f"encodec_{int(c['sampling_rate']) // 1000}khz_transformers", sample_rate=int(c["sampling_rate"]),
            channels=int(c["audio_channels"]), dimension=int(c["hidden_size"]), n_filters=int(c["num_filters"]),
            n_residual_layers=int(c["num_residual_layers"]), ratios=ratios, norm=c["norm_type"],
            kernel_size=int(c["kernel_size"]), last_kernel_size=int(c["last_kernel_size"]),
            residual_kernel_size=int(c["residual_kernel_size"]), dilation_base=int(c["dilation_growth_rate"]),
            causal=bool(c["use_causal_conv"]), pad_mode=c["pad_mode"], true_skip=not c["use_conv_shortcut"],
            compress=int(c["compress"]), lstm=int(c["num_lstm_layers"]), trim_right_ratio=float(c["trim_right_ratio"]),
            target_bandwidths=[float(b) for b in c["target_bandwidths"]], normalize=bool(c["normalize"]),
            segment=None if c["chunk_length_s"] is None else float(c["chunk_length_s"]),
            overlap=0.01 if c["overlap"] is None else float(c["overlap"]),
            quantizer=QuantizerConfig(n_q=max(1, n_q), bins=int(c["codebook_size"])),
        )
    except (TypeError, ValueError) as error:
        raise AudioCodecError(f"{where}: not a valid EnCodec config ({error})") from None


_RENAMES = (
    (re.compile(r"^(encoder|decoder)\.layers\."), r"\1.model."),
    (re.compile(r"\.weight_g$"), ".parametrizations.weight.original0"),
    (re.compile(r"\.weight_v$"), ".parametrizations.weight.original1"),
)


def convert_state(state: dict, codec: Codec) -> tuple[dict, dict]:
    """(network tensors under audiocodec's names, quantizer tensors under EnCodec's) of a transformers state."""
    from ..modules import PaddedConvTranspose1d

    transposed = {name for name, module in codec.named_modules() if isinstance(module, PaddedConvTranspose1d)}
    network, quantizer = {}, {}
    for key, value in state.items():
        match = re.match(r"^quantizer\.layers\.(\d+)\.codebook\.(\w+)$", key)
        if match:
            quantizer[f"vq.layers.{match[1]}._codebook.{match[2]}"] = value
            continue
        for pattern, replacement in _RENAMES:
            key = pattern.sub(replacement, key)
        layer = re.match(r"^((?:encoder|decoder)\.model\.\d+)\.conv\.", key)
        if layer and layer[1] in transposed:  # transformers calls a transposed convolution `conv` too
            key = f"{layer[1]}.convtr.{key[len(layer[0]):]}"
        network[key] = value
    return network, quantizer


def from_transformers(cls: type[Codec], directory: Path, meta: dict,
                      map_location: str | torch.device = "cpu") -> Codec:
    """The `Codec` (`cls`) of a transformers EnCodec folder (`Codec.from_pretrained` calls this for such folders)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file


    config = codec_config(meta, str(directory / "config.json"))
    codec = cls(config)
    weights = directory / "model.safetensors"
    try:
        state = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError) as error:
        raise AudioCodecError(f"{weights}: unreadable weights ({error})") from None
    network, quantizer = convert_state(state, codec)
    own = {k: v for k, v in codec.state_dict().items() if not k.startswith("quantizer.") and k != "code_frequencies"}
    missing, unexpected = sorted(set(own) - set(network)), sorted(set(network) - set(own))
    misshapen = sorted(k for k in set(own) & set(network) if own[k].shape != network[k].shape)
    problems = "; ".join(f"{label}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}" for label, keys in
                         (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", misshapen))
                         if keys)
    if problems:
        raise ModelMismatchError(f"{weights} does not fit the EnCodec model its config describes: {problems}")
    codec.load_state_dict(network, strict=False)
    codec.quantizer.load_encodec_state_dict(quantizer)
    return codec.to(map_location).eval()
