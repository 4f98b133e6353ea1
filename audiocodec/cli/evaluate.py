"""`audiocodec eval`: quality against bitrate on a test set, optionally against Opus, as JSON, Markdown and plots.

Everything a user can get wrong (missing data, an existing report, a bandwidth the model lacks, missing Opus
tools or evaluation packages, no default model) is refused with one line before the long loop starts. Heavy
imports happen inside the handler so that `audiocodec --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..evaluation.dataset import Item, Skipped
    from ..evaluation.evaluate import CodecRunner
    from ..model import Codec

REPORT_FILES = ("report.json", "report.md", "rate_distortion.png")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure quality against bitrate on a test set, optionally against Opus",
                              description="Compress and decompress every file at every bandwidth through the "
                              "real file format, and report PESQ-wb and STOI (speech), SI-SDR, mel and "
                              "multi-scale STFT distances against the achieved bitrate.")
    p.add_argument("--model", "-m", default="default",
                   help="model directory, or 'default' for the embedded model (the default)")
    p.add_argument("--data", "-d", required=True,
                   help="corpus folder with test.jsonl, a .jsonl or .txt manifest, or a folder of audio files")
    p.add_argument("--bandwidth", "-b", type=float, nargs="+", default=None,
                   help="nominal kb/s to evaluate (default: all the model offers)")
    p.add_argument("--against", choices=["opus"], default=None, help="also run this baseline codec")
    p.add_argument("--out", "-o", default="eval_out", help="output folder (default: eval_out)")
    p.add_argument("--max-files", type=int, default=None,
                   help="evaluate at most N files, taken in turn from each category")
    p.add_argument("--speech", choices=["auto", "all", "none"], default="auto",
                   help="where PESQ and STOI run: auto (manifest category speech, or unknown), all, or none")
    p.add_argument("--spectrograms", type=int, default=3, help="files to draw spectrograms for (default: 3)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing report in --out")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from ..evaluation import EvaluationError
    from ..evaluation.dataset import find_items, select
    from .common import load_model

    out = _check_out(Path(args.out), args.force)
    if args.max_files is not None and args.max_files < 1:
        raise EvaluationError(f"--max-files must be at least 1, got {args.max_files}")
    if args.spectrograms < 0:
        raise EvaluationError(f"--spectrograms must not be negative, got {args.spectrograms}")
    items, skipped = find_items(args.data)
    items = select(items, args.max_files)
    if not items:
        raise EvaluationError(f"{args.data}: none of the files listed exists")
    _check_packages()
    runners = []
    if args.against == "opus":
        from ..evaluation.opus import OpusRunner, check_tools

        check_tools()
        runners.append(OpusRunner())
    model = load_model(None if args.model == "default" else args.model)
    bandwidths = args.bandwidth or model.bandwidths
    # A bandwidth only a baseline runs is fine (audiocodec's results there are n/a): Opus at 24 kb/s is worth
    # seeing beside a model that stops at 12. One that no codec runs is a mistake.
    unknown = [b for b in bandwidths
               if b not in model.bandwidths and all(r.unavailable(b, model.channels) is not None for r in runners)]
    if unknown:
        also = f" (nor does {', '.join(r.name for r in runners)})" if runners else ""
        raise EvaluationError(f"the model offers {', '.join(f'{b:g}' for b in model.bandwidths)} kb/s, not "
                              f"{', '.join(f'{b:g}' for b in unknown)}{also}")
    return _run(args, out, model, runners, items, skipped, sorted(set(bandwidths)))


def _run(args: argparse.Namespace, out: Path, model: Codec, runners: list[CodecRunner], items: list[Item],
         skipped: list[Skipped], bandwidths: list[float]) -> int:
    from datetime import datetime, timezone

    from .. import __version__
    from ..evaluation import EvaluationError, plots, report
    from ..evaluation.evaluate import AudiocodecRunner, evaluate
    from ..evaluation.health import codebook_health, markdown_health

    runners = [AudiocodecRunner(model), *runners]
    # Spectrograms at the lowest bandwidth every codec can run at (mono), where the codecs differ most.
    example_bandwidth = min((b for b in bandwidths if all(r.unavailable(b, 1) is None for r in runners)),
                            default=bandwidths[0])
    evaluation = evaluate(items, runners, bandwidths, args.speech, args.spectrograms, example_bandwidth)
    evaluation.skipped[:0] = skipped
    if not evaluation.files:
        raise EvaluationError(f"{args.data}: none of the {len(items)} file(s) could be read as audio "
                              f"(first: {evaluation.skipped[0].reason})")
    table = report.averages(evaluation.files)
    highest = max(model.bandwidths)  # where the codebook health is measured
    meta = {"audiocodec_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": f"{model.config.name} ({model.model_id()})", "model_path": args.model, "data": str(args.data),
            "speech": args.speech, "bandwidths": bandwidths, "codecs": {r.name: r.settings() for r in runners},
            "health_bandwidth": highest}
    health = codebook_health(runners[0].code_counts) if highest in bandwidths else []
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json", evaluation, table, meta, health)
    report.write_markdown(out / "report.md", evaluation, table, meta, health, model.quantizer.bins)
    plots.rate_distortion(table, out / "rate_distortion.png")
    for stale in (out / "spectrograms").glob("*.png"):  # figures of an overwritten report's files
        stale.unlink()
    plots.spectrograms(evaluation.examples, out / "spectrograms")
    print(report.markdown_table(table))
    if health:
        print(f"\ncodebook health at the model's highest bandwidth ({highest:g} kb/s):\n"
              + markdown_health(health, model.quantizer.bins))
    print(f"{len(evaluation.files)} file(s) evaluated, {len(evaluation.skipped)} skipped; report in {out}/",
          file=sys.stderr)
    return 0


def _check_out(out: Path, force: bool) -> Path:
    from ..errors import OutputExistsError
    from ..evaluation import EvaluationError

    if out.exists() and not out.is_dir():
        raise EvaluationError(f"{out}: exists and is not a folder")
    existing = [name for name in REPORT_FILES if (out / name).is_file() and (out / name).stat().st_size > 0]
    if existing and not force:
        raise OutputExistsError(f"{out}: already holds a report ({existing[0]}); use --force to overwrite it")
    return out


def _check_packages() -> None:
    from importlib.util import find_spec

    from ..evaluation import EvaluationError

    missing = [name for name in ("pesq", "pystoi", "matplotlib") if find_spec(name) is None]
    if missing:
        raise EvaluationError(f"evaluation needs {', '.join(missing)}: pip install 'audiocodec[eval]'")
