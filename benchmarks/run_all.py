"""Run every benchmark in benchmarks/ and collect their tables in one Markdown file.

    python benchmarks/run_all.py [--quick] [--only speed compression] [--output benchmarks/results/all.md]

Each script runs as a subprocess of the same interpreter from the repository root (so their relative paths hold),
one after another so they do not disturb each other's timings; their output is printed as it comes and written
to --output with the command, wall time and exit status. `--quick` passes small sizes so that the whole run takes
minutes on a laptop CPU: good to see that everything works, not numbers to quote. A quick option a script no
longer accepts is dropped with a note instead of failing the run. Benchmarks of the GPU alone are skipped, with a
note, where PyTorch sees none. Exit status 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
QUICK = {
    "speed.py": ["--seconds", "2", "--repeats", "2", "--threads", "1", "--processes", "2", "--gpu-batches", "1"],
    "codebook.py": ["--steps", "100", "--bins", "64", "--held-out", "5000", "--reference-iters", "20",
                    "--reference-vectors", "8000", "--overhead-repeats", "5", "--codec-repeats", "2", "--no-cache"],
    "train_throughput.py": ["--recipe", "recipes/tiny_cpu.yaml", "--batch", "2", "--seconds", "0.5", "--steps", "2"],
    "compression.py": ["--durations", "10"],
    "long_files.py": ["--seconds", "12", "--repeats", "1", "--rounds", "1"],
    "streaming.py": ["--seconds", "1", "--repeats", "1"],
    "cli_memory.py": ["--minutes", "0.5"],
    "data_loading.py": ["--rounds", "1", "--batches", "4", "--clips", "8"],
}
GPU_ONLY = {"gpu_profile.py"}


@dataclass
class Run:
    script: str
    command: list[str]
    output: list[str]
    seconds: float
    status: int
    notes: list[str]
    skipped: str = ""  # why it did not run


def scripts(only: list[str] | None) -> list[Path]:
    """The benchmark scripts, in name order: every .py in benchmarks/ but this one (or those `only` names)."""
    found = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != Path(__file__).name)
    if only:
        wanted = {name.removesuffix(".py") for name in only}
        unknown = wanted - {p.stem for p in found}
        if unknown:
            raise SystemExit(f"run_all: no benchmark named {', '.join(sorted(unknown))} "
                             f"(have {', '.join(p.stem for p in found)})")
        found = [p for p in found if p.stem in wanted]
    return found


def accepted(script: Path, options: list[str]) -> tuple[list[str], list[str]]:
    """`options` without the flags (and their values) that the script's --help does not list, and notes on them."""
    help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=ROOT).stdout
    known = set(re.findall(r"(--[A-Za-z0-9][\w-]*)", help_text))
    kept, notes, keep = [], [], True
    for option in options:
        if option.startswith("--"):
            keep = option in known
            if not keep:
                notes.append(f"{option} dropped: {script.name} no longer accepts it")
        if keep:
            kept.append(option)
    return kept, notes


def run(script: Path, quick: bool) -> Run:
    """Run one benchmark, echoing its standard output line by line as it arrives (errors go to our stderr)."""
    if script.name in GPU_ONLY and not _has_cuda():
        print(f"\n=== {script.name}: skipped, it needs a CUDA GPU", flush=True)
        return Run(script.name, [sys.executable, str(script.relative_to(ROOT))], [], 0.0, 0, [],
                   skipped="it needs a CUDA GPU, and PyTorch sees none here")
    options, notes = accepted(script, QUICK.get(script.name, [])) if quick else ([], [])
    command = [sys.executable, str(script.relative_to(ROOT)), *options]
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    start, output = time.perf_counter(), []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as process:
        for line in process.stdout:
            print(line, end="", flush=True)
            output.append(line.rstrip("\n"))
    return Run(script.name, command, output, time.perf_counter() - start, process.returncode, notes)


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def markdown(runs: list[Run], quick: bool) -> str:
    import torch

    parts = ["# Benchmarks", "",
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, torch "
             f"{torch.__version__}, {platform.machine()} with {os.cpu_count()} CPU(s)"
             f"{', CUDA: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else ''}"
             f"{'; --quick sizes: check that things work, do not quote these numbers' if quick else ''}.", ""]
    for r in runs:
        status = "ok" if r.status == 0 else f"FAILED with exit status {r.status} (its errors went to the console)"
        ran = f"skipped: {r.skipped}" if r.skipped else f"{r.seconds:.0f} s, {status}"
        parts += [f"## {r.script}", "", f"`python {' '.join(r.command[1:])}`: {ran}", ""]
        parts += [f"- {note}" for note in r.notes] + ([""] if r.notes else [])
        parts += _blocks(r.output)
    return "\n".join(parts)


def _blocks(lines: list[str]) -> list[str]:
    """Markdown tables as they are; every other run of lines in a code block, so fixed-width tables stay aligned."""
    out: list[str] = []
    text: list[str] = []

    def flush() -> None:
        while text and not text[-1].strip():
            text.pop()
        if text:
            out.extend(["```", *text, "```", ""])
        text.clear()

    for line in lines:
        if line.startswith("|"):
            flush()
            out.append(line)
            continue
        if out and out[-1].startswith("|"):
            out.append("")  # a table ends at the first line that is not a row
        if line.strip() or text:
            text.append(line)
    flush()
    if out and out[-1].startswith("|"):
        out.append("")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: minutes in all, numbers not to quote")
    parser.add_argument("--only", nargs="+", default=None, help="run only these benchmarks (e.g. speed compression)")
    parser.add_argument("--output", default=str(BENCHMARKS / "results" / "all.md"), help="Markdown file to write")
    args = parser.parse_args()
    runs = [run(script, args.quick) for script in scripts(args.only)]
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(markdown(runs, args.quick), encoding="utf-8")
    failed = [r.script for r in runs if r.status != 0]
    skipped = [r.script for r in runs if r.skipped]
    print(f"\nrun_all: {len(runs) - len(failed) - len(skipped)} of {len(runs)} benchmarks ran; tables in {output}"
          + (f"; skipped: {', '.join(skipped)}" if skipped else "")
          + (f"; FAILED: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
