"""Model directories: a `Codec` written as `config.json` and `model.safetensors`, and read back.

A model directory holds the config (with the format version and the model's id) and the weights, no pickle.
Compact exports keep what inference needs (float16, without the quantizer's derivable training state), int8
exports the encoder's and decoder's weight matrices in 8 bits too (`int8_weights`). `Codec.save_pretrained`,
`Codec.from_pretrained` and the rest are thin methods over these functions, which take the model (or the model
class, to build one) as their first argument so that this module does not import `codec`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import AudioCodecError, ModelMismatchError
from ..io.atomic import atomic_paths
from ..pretrained import CONFIG_FILE, model_directory
from . import int8_weights
from .config import CodecConfig

if TYPE_CHECKING:
    from .codec import Codec

WEIGHTS_FILE = "model.safetensors"
#: The model directory's format: 1, or 2 for models with int8 weights, which an older audiocodec cannot load (it
#: refuses version 2 by name, where version 1 with int8 tensors would be "unexpected keys").
FORMAT_VERSION, INT8_FORMAT_VERSION = 1, 2


def save_pretrained(model: Codec, directory: str | Path, compact: bool = False, int8: bool = False) -> Path:
    """Write `config.json` and `model.safetensors` into `directory` (created if needed); no pickle.

    `compact` writes what inference needs and training can rebuild: float16 weights and codebooks, without
    the quantizer's derivable training state (`derivable_state_keys`); usage counts and the entropy coder's
    tables stay float32. About a third of the full size, which is how the default model fits in the package;
    its codes are those of the model as loaded from the file, whose id `config.json` records. `int8` (with
    `compact`) stores the encoder's and decoder's weight matrices in 8 bits (`int8_weights`): about half the
    compact size again, for a larger model that must ship small (`INT8_FORMAT_VERSION`).
    """
    return write_pretrained(type(model), directory, model.config, stored_state(model, compact, int8), compact)


def stored_state(model: Codec, compact: bool = False, int8: bool = False) -> dict[str, torch.Tensor]:
    """The tensors `save_pretrained` writes. `from_state` of them is the model as it will load, on
    which `export --recount` counts the codes before `write_pretrained` writes them."""
    if model.prepared:
        raise RuntimeError("a model prepared for inference has folded weights: save it before preparing it")
    if int8 and not compact:
        raise ValueError("int8 weights are a compact export: pass compact=True too")
    state = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format)  # the caller may change them
             for k, v in model.state_dict().items()}
    return compact_state(model, state, int8) if compact else state


def write_pretrained(cls: type[Codec], directory: str | Path, config: CodecConfig, state: dict[str, torch.Tensor],
                     compact: bool) -> Path:
    """Write a `stored_state` (`compact` or not) as a model directory, under the id of the model it loads as."""
    from safetensors.torch import save_file

    model = from_state(cls, config, state, "the state to write")
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


def from_pretrained(cls: type[Codec], directory: str | Path = "default",
                    map_location: str | torch.device = "cpu") -> Codec:
    """Load a model written by `save_pretrained`, or a transformers EnCodec folder (`EncodecModel.save_pretrained`);
    "default" is the model embedded in the package."""
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
    from .transformers_encodec import from_transformers, is_transformers_config

    if is_transformers_config(meta):  # as transformers' EncodecModel.save_pretrained writes it
        return from_transformers(cls, directory, meta, map_location)
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
    load_weights(model, state, source=str(weights_path))
    recorded = meta.get("model_id")
    if recorded is None and version == INT8_FORMAT_VERSION:  # 8-bit damage can decode plausibly
        raise AudioCodecError(f"{config_path}: not a valid model config (it has no model_id)")
    if recorded is not None and recorded != model.model_id():  # a changed byte changes every code it decodes
        raise AudioCodecError(f"{directory}: damaged model: its weights are not those of the model "
                              f"{recorded} its config records")
    return model.eval()


def from_state(cls: type[Codec], config: CodecConfig, state: dict[str, torch.Tensor], source: str) -> Codec:
    """A model of `config` with `state` loaded (`load_weights`): the model a `stored_state` loads as, whose
    id and codes are those of the file it will be written to. `source` names the state in errors."""
    model = cls(config)
    load_weights(model, state, source=source)
    return model


def load_weights(model: Codec, state: dict[str, torch.Tensor], source: str = "weights") -> None:
    """`load_state_dict` whose error lists missing, unexpected and misshapen keys in one line.

    The quantizer's derivable training state may be missing (a compact export): it is rebuilt. Tensors are
    converted to the model's dtypes (a compact export stores float16, or int8 with scales).
    """
    state = int8_weights.dequantize(state, source)
    derivable = derivable_keys(model)
    own = model.state_dict()
    problems = key_mismatch({k: v for k, v in own.items() if k not in derivable or k in state}, state)
    if problems:
        raise ModelMismatchError(f"{source} do not fit this model: {problems}")
    broken = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if broken:  # the model would decode silence or full-scale noise, without a word
        raise ModelMismatchError(f"{source}: damaged weights: {abbreviate(sorted(broken))} hold NaN or "
                                 f"infinite values")
    model.load_state_dict(state, strict=False)
    if derivable - set(state):
        model.quantizer.restore_training_state()


def derivable_keys(model: Codec) -> set[str]:
    """`model`'s state-dict keys that a compact export leaves out and loading rebuilds."""
    return {"quantizer." + key for key in model.quantizer.derivable_state_keys()}


def compact_state(model: Codec, state: dict[str, torch.Tensor], int8: bool) -> dict[str, torch.Tensor]:
    """`state` without the derivable keys, floating tensors in float16 except counts (which can exceed
    float16's range and set the entropy coder's tables) and int8 scales (rounded from the float32 weights,
    so that writing a loaded int8 model again gives back its integers and, but for a last bit, its scales)."""
    derivable = derivable_keys(model)
    state = {k: v for k, v in state.items() if k not in derivable}
    if int8:
        state = int8_weights.quantize(state)
    exact = ("code_frequencies", "cluster_usage", int8_weights.SCALE_SUFFIX)
    return {k: v.half() if v.is_floating_point() and not k.endswith(exact) else v for k, v in state.items()}


def key_mismatch(own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> str:
    """'missing keys: ...; unexpected keys: ...; wrong shapes: ...' for what differs, or '' if nothing does."""
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    misshapen = sorted(k for k in set(own) & set(given) if own[k].shape != given[k].shape)
    return "; ".join(f"{label}: {abbreviate(keys)}" for label, keys in
                     (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", misshapen)) if keys)


def abbreviate(keys: list[str], limit: int = 6) -> str:
    """The first `limit` keys, and how many more."""
    return ", ".join(keys[:limit]) + (f" (and {len(keys) - limit} more)" if len(keys) > limit else "")
