"""`audiocodec eval`: quality against bitrate on a test set, optionally against Opus and other models, as JSON,
Markdown, plots and an HTML page to listen on.

Everything a user can get wrong (missing data, an existing report, a bandwidth the model lacks, missing Opus
tools or evaluation packages, a `model:` folder that holds no model, no default model) is refused with one line
before the long loop starts. Heavy
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

REPORT_FILES = ("report.json", "report.md", "rate_distortion.png", "index.html")
MODEL_PREFIX = "model:"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure quality against bitrate on a test set, optionally against Opus",
                              description="Compress and decompress every file at every bandwidth through the "
                              "real file format, and report PESQ-wb, STOI and DNSMOS (speech), ViSQOL, SI-SDR, "
                              "mel and multi-scale STFT distances against the achieved bitrate, with an HTML "
                              "page to listen on.")
    p.add_argument("--model", "-m", default="default",
                   help="model directory, or 'default' for the embedded model (the default)")
    p.add_argument("--data", "-d", required=True,
                   help="corpus folder with test.jsonl, a .jsonl or .txt manifest, or a folder of audio files")
    p.add_argument("--bandwidth", "-b", type=float, nargs="+", default=None,
                   help="nominal kb/s to evaluate (default: all the model offers)")
    p.add_argument("--against", nargs="+", default=[], metavar="CODEC",
                   help="also run these: 'opus', and any model folder as 'model:DIR' (an earlier default, an "
                   "EnCodec export, a fine-tune), each through the real .ac round trip")
    p.add_argument("--out", "-o", default="eval_out", help="output folder (default: eval_out)")
    p.add_argument("--max-files", type=int, default=None,
                   help="evaluate at most N files, taken in turn from each category")
    p.add_argument("--speech", choices=["auto", "all", "none"], default="auto",
                   help="where PESQ and STOI run: auto (manifest category speech, or unknown), all, or none")
    p.add_argument("--spectrograms", type=int, default=3, help="files to draw spectrograms for (default: 3)")
    p.add_argument("--skip-metrics", nargs="+", choices=["visqol", "dnsmos"], default=[],
                   help="leave out these listener metrics (the slowest: ViSQOL about 0.3 s per second of audio "
                   "per decoding on one core)")
    p.add_argument("--html", action=argparse.BooleanOptionalAction, default=None,
                   help="write index.html, a listening report (default: on when --out does not exist yet, or "
                   "holds one that --force replaces)")
    p.add_argument("--listen", type=int, default=6, metavar="N",
                   help="files with players and spectrograms in the HTML report, taken in turn from each "
                   "category (default: 6)")
    p.add_argument("--force", "-f", action="store_true", help="overwrite an existing report in --out")
    p.set_defaults(func=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    from ..evaluation import EvaluationError
    from ..evaluation.dataset import find_items, select
    from .common import load_model

    if args.html is None:  # on for a new report folder, or one whose HTML report is being replaced
        args.html = not Path(args.out).exists() or (Path(args.out) / "index.html").exists()
    out = _check_out(Path(args.out), args.force)
    if args.max_files is not None and args.max_files < 1:
        raise EvaluationError(f"--max-files must be at least 1, got {args.max_files}")
    if args.spectrograms < 0:
        raise EvaluationError(f"--spectrograms must not be negative, got {args.spectrograms}")
    if args.listen < 0:
        raise EvaluationError(f"--listen must not be negative, got {args.listen}")
    items, skipped = find_items(args.data)
    items = select(items, args.max_files)
    if not items:
        raise EvaluationError(f"{args.data}: none of the files listed exists")
    listener = tuple(m for m in ("visqol", "dnsmos") if m not in args.skip_metrics)
    _check_packages(listener)
    runners = _against(args.against)
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
    return _run(args, out, model, runners, items, skipped, sorted(set(bandwidths)), listener)


def _against(codecs: list[str]) -> list[CodecRunner]:
    """The runners `--against` names, each checked (tools installed, model folders loadable) before any work."""
    from ..evaluation import EvaluationError
    from ..evaluation.evaluate import AudiocodecRunner

    runners: list[CodecRunner] = []
    names: set[str] = {"audiocodec"}
    seen: set[str] = set()
    for codec in codecs:
        folder = codec[len(MODEL_PREFIX):] if codec.startswith(MODEL_PREFIX) else None
        key = "opus" if codec == "opus" else str(Path(folder).resolve()) if folder and folder != "default" else codec
        if key in seen:
            raise EvaluationError(f"--against {codec}: given twice")
        seen.add(key)
        if codec == "opus":
            from ..evaluation.opus import OpusRunner, check_tools

            check_tools()
            runner: CodecRunner = OpusRunner()
        elif folder:
            # Named after the folder; two folders of one name (runs/a/model, runs/b/model) get #2, #3...
            name = _unique(f"{MODEL_PREFIX}{Path(folder).name or folder}", names)
            runner = AudiocodecRunner(_load_compared(folder), name=name, path=folder)
        else:
            raise EvaluationError(f"--against {codec}: expected 'opus' or 'model:DIR' (a model folder)")
        names.add(runner.name)
        runners.append(runner)
    return runners


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}#{n}", n + 1
    return candidate


def _load_compared(folder: str) -> Codec:
    """A model folder given as `model:DIR`, loaded for inference; anything else is a one-line error."""
    from ..errors import AudioCodecError
    from ..evaluation import EvaluationError
    from .common import load_model

    path = Path(folder)
    if folder != "default" and not path.exists():
        raise EvaluationError(f"model:{folder}: no such folder")
    try:
        return load_model(None if folder == "default" else folder)
    except AudioCodecError as error:
        raise EvaluationError(f"model:{folder}: {error}") from None


def _run(args: argparse.Namespace, out: Path, model: Codec, runners: list[CodecRunner], items: list[Item],
         skipped: list[Skipped], bandwidths: list[float], listener: tuple[str, ...] = ()) -> int:
    from datetime import datetime, timezone

    from .. import __version__
    from ..evaluation import EvaluationError, plots, report
    from ..evaluation.dataset import select
    from ..evaluation.evaluate import AudiocodecRunner, evaluate
    from ..evaluation.health import codebook_health, markdown_health

    runners = [AudiocodecRunner(model), *runners]
    # Spectrograms at the lowest bandwidth every codec can run at (mono), where the codecs differ most.
    example_bandwidth = min((b for b in bandwidths if all(r.unavailable(b, 1) is None for r in runners)),
                            default=bandwidths[0])
    html, count = getattr(args, "html", False), getattr(args, "listen", 0)
    listen = frozenset(item.name for item in select(items, count)) if html and count else frozenset()
    evaluation = evaluate(items, runners, bandwidths, args.speech, args.spectrograms, example_bandwidth,
                          listener=listener, listen=listen)
    evaluation.skipped[:0] = skipped
    if not evaluation.files:
        raise EvaluationError(f"{args.data}: none of the {len(items)} file(s) could be read as audio "
                              f"(first: {evaluation.skipped[0].reason})")
    table = report.averages(evaluation.files)
    highest = max(model.bandwidths)  # where the codebook health is measured
    meta = {"audiocodec_version": __version__, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": f"{model.config.name} ({model.model_id()})", "model_path": args.model, "data": str(args.data),
            "speech": args.speech, "bandwidths": bandwidths, "codecs": {r.name: r.settings() for r in runners},
            "health_bandwidth": highest, "listener_metrics": list(listener)}
    health = codebook_health(runners[0].code_counts) if highest in bandwidths else []
    out.mkdir(parents=True, exist_ok=True)
    report.write_json(out / "report.json", evaluation, table, meta, health)
    report.write_markdown(out / "report.md", evaluation, table, meta, health, model.quantizer.bins)
    plots.rate_distortion(table, out / "rate_distortion.png")
    for stale in (out / "spectrograms").glob("*.png"):  # figures of an overwritten report's files
        stale.unlink()
    plots.spectrograms(evaluation.examples, out / "spectrograms")
    if html:
        from ..evaluation.html import write_html

        write_html(out, evaluation, table, meta, runners, bandwidths)
    print(report.markdown_table(table))
    if health:
        print(f"\ncodebook health at the model's highest bandwidth ({highest:g} kb/s):\n"
              + markdown_health(health, model.quantizer.bins))
    print(f"{len(evaluation.files)} file(s) evaluated, {len(evaluation.skipped)} skipped; report in {out}/"
          + (f" (open {out / 'index.html'})" if html else ""), file=sys.stderr)
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


def _check_packages(listener: tuple[str, ...] = ()) -> None:
    from importlib.util import find_spec

    from ..evaluation import EvaluationError
    from ..evaluation.listener import ListenerMetricUnavailable, check_available

    missing = [name for name in ("pesq", "pystoi", "matplotlib") if find_spec(name) is None]
    if missing:
        raise EvaluationError(f"evaluation needs {', '.join(missing)}: pip install 'audiocodec[eval]'")
    try:
        check_available(listener)
    except ListenerMetricUnavailable as error:
        raise EvaluationError(f"{error} (or leave them out: --skip-metrics {' '.join(listener)})") from None
