"""Averages over files, and the `report.json` and `report.md` an evaluation writes.

Averages skip n/a values and keep count of what they cover: an n/a is missing data, not a bad score, so it
must neither pull a mean down nor go unnoticed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import fmean
from typing import Iterable

from .evaluate import METRICS, Evaluation, FileReport
from .health import LevelHealth, markdown_health

ALL = "all"
LABELS = {"pesq_wb": "PESQ-wb", "stoi": "STOI", "si_sdr": "SI-SDR dB", "mel_distance": "mel distance",
          "stft_distance": "STFT distance"}
DECIMALS = {"pesq_wb": 2, "stoi": 3, "si_sdr": 2, "mel_distance": 3, "stft_distance": 3}


@dataclass
class Mean:
    """A mean over the files where a value exists (None if there are none), and how many files that is."""

    mean: float | None
    count: int


@dataclass
class Average:
    """One codec at one nominal bandwidth over one category of files ("all" for every file)."""

    codec: str
    bandwidth: float
    category: str
    n_files: int  # files the codec ran on at this bandwidth
    kbps: Mean
    payload_kbps: Mean
    metrics: dict[str, Mean]


def averages(files: list[FileReport]) -> list[Average]:
    """Averages per codec x bandwidth x category, then over all categories, in the order results appear."""
    groups: dict[tuple[str, float, str], list] = defaultdict(list)
    for file in files:
        for result in file.results:
            for category in (file.category, ALL):
                groups[(result.codec, result.bandwidth, category)].append(result)
    out = []
    for (codec, bandwidth, category), results in groups.items():
        ran = [r for r in results if r.kbps is not None]
        out.append(Average(codec, bandwidth, category, len(ran), _mean(r.kbps for r in ran),
                           _mean(r.payload_kbps for r in ran),
                           {name: _mean(r.metrics[name] for r in results) for name in METRICS}))
    return out


def categories(table: list[Average]) -> list[str]:
    """The categories present, "all" first."""
    return [ALL, *sorted({a.category for a in table} - {ALL})]


def write_json(path: Path, evaluation: Evaluation, table: list[Average], meta: dict,
               health: list[LevelHealth]) -> None:
    report = {**meta, "files": [asdict(f) for f in evaluation.files],
              "skipped": [asdict(s) for s in evaluation.skipped], "averages": [asdict(a) for a in table],
              "codebook_health": [asdict(h) for h in health]}
    path.write_text(json.dumps(report, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def markdown_table(table: list[Average], category: str = ALL) -> str:
    """The averages of one category as a Markdown table; "n/a" where no file had a value, and "(n=k)" after
    a mean that covers fewer files than the row's count."""
    header = ["codec", "nominal kb/s", "achieved kb/s", "payload kb/s", *(LABELS[m] for m in METRICS), "n files"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for a in (a for a in table if a.category == category):
        cells = [a.codec, f"{a.bandwidth:g}", _cell(a.kbps, 2, a.n_files), _cell(a.payload_kbps, 2, a.n_files),
                 *(_cell(a.metrics[m], DECIMALS[m], a.n_files) for m in METRICS), str(a.n_files)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_markdown(path: Path, evaluation: Evaluation, table: list[Average], meta: dict,
                   health: list[LevelHealth], bins: int) -> None:
    parts = ["# Evaluation report", "",
             f"Model: {meta['model']}; data: {meta['data']}; {len(evaluation.files)} file(s) evaluated, "
             f"{len(evaluation.skipped)} skipped; speech metrics: {meta['speech']}.", "",
             "Achieved kb/s counts the whole file (headers and container included); payload kb/s the coded "
             "audio alone. n/a: not applicable "
             "(see docs/evaluation.md); (n=k): the mean covers k of the row's files.", ""]
    for category in categories(table):
        parts += [f"## {category}", "", markdown_table(table, category), ""]
    if health:
        parts += ["## Codebook health", "",
                  f"Every level's codes at the model's highest bandwidth ({meta['health_bandwidth']:g} kb/s), over "
                  "all files: a healthy level uses all its codes, near evenly (perplexity / codes near 1).", "",
                  markdown_health(health, bins), ""]
    if evaluation.skipped:
        parts += ["## Skipped files", "", *(f"- {s.name}: {s.reason}" for s in evaluation.skipped), ""]
    path.write_text("\n".join(parts), encoding="utf-8")


def _mean(values: Iterable[float | None]) -> Mean:
    present = [v for v in values if v is not None]
    return Mean(fmean(present) if present else None, len(present))


def _cell(value: Mean, decimals: int, n_files: int) -> str:
    if value.mean is None:
        return "n/a"
    text = f"{value.mean:.{decimals}f}"
    return text if value.count == n_files else f"{text} (n={value.count})"
