"""`audiocodec train` and `audiocodec export`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a codec from a YAML recipe (one process; use torchrun for DDP)")
    add_train_arguments(p)
    p.set_defaults(func=run_train)
    p = subparsers.add_parser("export", help="write a trained generator, or EnCodec's weights, as a model directory")
    p.add_argument("checkpoint", help="a checkpoint file, a run directory (its newest readable checkpoint), a "
                                      "weights file EnCodec publishes (encodec_24khz-*.th, encodec_48khz-*.th), or a "
                                      "model directory or 'default' (to make it compact or recount its tables)")
    p.add_argument("output", help="model directory to write (config.json + model.safetensors)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing model directory")
    p.add_argument("--compact", action="store_true",
                   help="float16 weights without the quantizer's derivable training state (about a third of the "
                        "size; what the embedded default model ships as; EnCodec's weights so rounded no longer give "
                        "exactly EnCodec's codes)")
    p.add_argument("--int8", action="store_true",
                   help="with --compact: the encoder's and decoder's weight matrices in 8 bits with a scale per row "
                        "(about half the compact size; for a larger model that must ship small)")
    p.add_argument("--recount", metavar="DATA", default=None,
                   help="count the entropy coder's tables afresh with the final model on this folder or manifest "
                        "of training audio (fitter than the counts gathered during training)")
    p.add_argument("--recount-seconds", type=float, default=1800.0,
                   help="audio to count codes on with --recount (default 1800 s)")
    p.add_argument("--onnx", action="store_true",
                   help="write ONNX graphs instead (encoder.onnx, decoder.onnx, the streaming steps of a causal "
                        "model, onnx.json; needs the [onnx] extra; docs/deploy.md)")
    p.set_defaults(func=run_export)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML recipe, e.g. recipes/tiny_cpu.yaml")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    parser.add_argument("--resume-from", default=None, metavar="PATH",
                        help="continue from this checkpoint file or run folder (its newest readable checkpoint), "
                             "e.g. a copy on each node when the nodes share no output_dir; checkpoints are still "
                             "written to output_dir")
    parser.add_argument("--output-dir", default=None, help="override the recipe's output_dir")
    parser.add_argument("--max-steps", type=int, default=None, help="override optim.max_steps")
    parser.add_argument("--time-limit", type=_duration, default=None, metavar="DURATION",
                        help="train for this long (seconds, or e.g. 90m, 1.5h), counted from the first step: the "
                             "schedule's max_steps is fitted to end then, and training stops at the first step "
                             "boundary past it (overrides optim.time_limit and the recipe's max_steps)")
    parser.add_argument("--init-from", default=None,
                        help="start from this model directory's weights ('default': the embedded model)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                        help="override the recipe's device (auto: the GPU when there is one)")


def _duration(text: str) -> float:
    from ..training.time_budget import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run_train(args: argparse.Namespace) -> int:
    import logging
    import traceback

    from ..errors import ConfigError
    from ..training.config import load_config
    from ..training.ranks import is_collective_failure, lost_rank
    from ..training.trainer import Trainer, leave_process_group

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    config = load_config(args.config)
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.max_steps is not None and args.time_limit is not None:
        raise ConfigError("give --max-steps or --time-limit, not both: a time limit sets max_steps itself")
    if args.max_steps is not None:  # a number of steps asked for on the command line replaces a recipe's limit
        config.optim = config.optim.replace(max_steps=args.max_steps, time_limit=0.0)  # checked as in a recipe
    if args.time_limit is not None:
        config.optim.time_limit = args.time_limit
    if args.init_from is not None:
        config.init_from = args.init_from
    if args.device is not None:
        config.device = args.device
    trainer = None
    try:
        trainer = Trainer(config, resume=args.resume, resume_from=args.resume_from)
        trainer.train()
    except RuntimeError as error:  # a rank died, or its node went away, mid-collective (while starting)
        traceback.clear_frames(error.__traceback__)  # the frames hold the trainer, which holds the group
        if is_collective_failure(error):
            raise lost_rank(error, trainer.step if trainer is not None else 0) from None
        raise
    except BaseException as error:
        traceback.clear_frames(error.__traceback__)  # the frames hold the trainer, which holds the group
        raise
    finally:
        trainer = None
        leave_process_group()
    return 0


def run_export(args: argparse.Namespace) -> int:
    import json
    import math

    from ..errors import AudioCodecError, OutputExistsError
    from ..model import Codec
    from ..model.int8_weights import MIN_ELEMENTS, holds_int8
    from ..model.persistence import WEIGHTS_FILE
    from ..pretrained import CONFIG_FILE, model_directory
    from ..training.code_counts import count_codes

    output = Path(args.output)
    if args.int8 and not args.compact:
        raise AudioCodecError("--int8 is a compact export: pass --compact too")
    if args.output == "default":  # it could never be loaded by that name
        raise AudioCodecError("'default' names the embedded model wherever a model is read: write to ./default or "
                              "another name")
    if args.recount and not (math.isfinite(args.recount_seconds) and args.recount_seconds > 0):
        raise AudioCodecError(f"--recount-seconds must be a positive number of seconds, got {args.recount_seconds}")
    source = model_directory(args.checkpoint)
    if output.is_dir() and (source / CONFIG_FILE).is_file() and os.path.samefile(output, source):
        raise AudioCodecError(f"{output}: is the model being exported (even --force keeps an input); write the "
                              f"export under another name")
    if output.exists() and any(output.iterdir()) and not args.force:
        raise OutputExistsError(f"{output}: already exists (use --force to overwrite it)")
    if args.onnx and (args.compact or args.int8 or args.recount):
        raise AudioCodecError("--onnx writes float32 graphs: it takes none of --compact, --int8, --recount")
    model, origin, stored_int8 = _export_source(args.checkpoint)
    if args.onnx:
        from ..export.onnx import write_for_cli

        return write_for_cli(model, output, origin, args.force)
    int8 = args.int8 or (args.compact and stored_int8)
    if int8 and not args.int8:  # float16 of its rounded weights would be a larger file under another id
        print("keeping the source's 8-bit weights (export without --compact for float32 ones)")
    state = model.stored_state(compact=args.compact, int8=int8)
    if int8 and not holds_int8(state):
        print(f"no weight matrix has {MIN_ELEMENTS} weights or more: all stay float16")
    if args.recount:  # on the model as it will load: float16 or int8 weights move a few codes
        exported = Codec.from_state(model.config, state, "the exported weights")
        counts, seconds = count_codes(exported.eval(), args.recount, args.recount_seconds)
        state["code_frequencies"] = counts.to(state["code_frequencies"].dtype)
        print(f"entropy coder's tables counted on {seconds:.0f} s of {args.recount}")
    Codec.write_pretrained(output, model.config, state, args.compact)
    meta = json.loads((output / CONFIG_FILE).read_text(encoding="utf-8"))
    size = (output / WEIGHTS_FILE).stat().st_size / 1e6
    kind = ", ".join(name for name in ("compact", "int8") if meta.get(name))
    print(f"{output}: model {model.config.name} ({meta['model_id']}) from {origin}, "
          f"{size:.1f} MB{f' ({kind})' if kind else ''}")
    return 0


def _export_source(name: str):
    """The generator that `export` writes, where it came from, and whether it was stored in 8 bits: a model
    directory (or "default"), a run directory's newest readable checkpoint, a checkpoint file, or EnCodec's
    published weights."""
    import warnings

    import torch
    from safetensors import safe_open

    from ..errors import AudioCodecError
    from ..model import Codec, CodecConfig
    from ..model.int8_weights import holds_int8
    from ..model.persistence import WEIGHTS_FILE
    from ..pretrained import CONFIG_FILE, model_directory
    from ..training.checkpoint import load_latest

    source = Path(name)
    if name == "default" or (source / CONFIG_FILE).is_file():  # to make it compact, or recount its tables
        model = Codec.from_pretrained(name)
        with safe_open(str(model_directory(name) / WEIGHTS_FILE), "pt") as f:
            stored_int8 = holds_int8(f.keys())  # what the file holds, not what its config says
        return model, f"model {model.model_id()}", stored_int8
    if (source / WEIGHTS_FILE).is_file():
        raise AudioCodecError(f"{source}: not a model directory ({CONFIG_FILE} is missing)")
    if source.is_dir():
        state = load_latest(source)
        if state is None:
            raise AudioCodecError(f"{source}: no readable checkpoint")
    elif source.is_file():
        try:
            with warnings.catch_warnings():  # torch warns about some foreign files before failing on them
                warnings.simplefilter("ignore")
                state = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as error:
            raise AudioCodecError(f"{source}: not a readable checkpoint ({type(error).__name__})") from None
    else:
        raise AudioCodecError(f"{source}: no such checkpoint, run directory or model directory")
    if isinstance(state, dict) and state and all(isinstance(key, str) and isinstance(value, torch.Tensor)
                                                 for key, value in state.items()):
        return _from_encodec(source, state), "EnCodec's weights", False  # EnCodec publishes bare state dicts
    if (isinstance(state, dict) and isinstance(state.get("model"), dict) and isinstance(state.get("config"), dict)
            and isinstance(state["config"].get("model"), dict)):
        model = Codec(CodecConfig.from_dict(state["config"]["model"], where="model"))
        model.load_weights(state["model"], source=str(source))
        return model, f"step {state.get('step', '?')}", False
    raise AudioCodecError(f"{source}: neither a checkpoint of `audiocodec train` nor EnCodec's weights")


def _from_encodec(source: Path, state: dict):
    """EnCodec's 24 or 48 kHz model from one of its published weights files. The 48 kHz model is the one with
    time group norms, whose weights EnCodec names `*.norm.weight`; a mismatch is reported against that variant."""
    from ..model import Codec

    return Codec.from_encodec(source, "48khz" if any(key.endswith(".norm.weight") for key in state) else "24khz")
