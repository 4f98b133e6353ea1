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

from .evaluate import DNSMOS_METRICS, METRICS, Evaluation, FileReport
from .health import LevelHealth, markdown_health

ALL = "all"
#: The row of the originals themselves: only DNSMOS, which needs no reference, has values there.
ORIGINAL = "original"
LABELS = {"pesq_wb": "PESQ-wb", "stoi": "STOI", "si_sdr": "SI-SDR dB", "mel_distance": "mel distance",
          "stft_distance": "STFT distance", "visqol": "ViSQOL", "dnsmos_sig": "DNSMOS SIG",
          "dnsmos_bak": "DNSMOS BAK", "dnsmos_ovrl": "DNSMOS OVRL"}
DECIMALS = {"pesq_wb": 2, "stoi": 3, "si_sdr": 2, "mel_distance": 3, "stft_distance": 3, "visqol": 2,
            "dnsmos_sig": 2, "dnsmos_bak": 2, "dnsmos_ovrl": 2}
#: Columns a table leaves out when no row has a value (left out by `--skip-metrics`, or no speech for DNSMOS).
OPTIONAL = ("visqol", *DNSMOS_METRICS)
#: Whether a larger value is better, for the plots' labels.
HIGHER_IS_BETTER = {"pesq_wb": True, "stoi": True, "si_sdr": True, "mel_distance": False, "stft_distance": False,
                    "visqol": True, "dnsmos_sig": True, "dnsmos_bak": True, "dnsmos_ovrl": True}


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
    """Averages per codec x bandwidth x category, then over all categories, in the order results appear; then,
    where any original has DNSMOS, an ORIGINAL row per category (bandwidth 0) with the originals' DNSMOS."""
    groups: dict[tuple[str, float, str], list] = defaultdict(list)
    originals: dict[str, list[FileReport]] = defaultdict(list)
    for file in files:
        for category in (file.category, ALL):
            originals[category].append(file)
        for result in file.results:
            for category in (file.category, ALL):
                groups[(result.codec, result.bandwidth, category)].append(result)
    out = []
    if any(v is not None for file in files for v in file.reference_metrics.values()):
        for category, group in originals.items():
            if all(f.reference_metrics.get(name) is None for f in group for name in METRICS):
                continue
            out.append(Average(ORIGINAL, 0.0, category, len(group), Mean(None, 0), Mean(None, 0),
                               {name: _mean(f.reference_metrics.get(name) for f in group) for name in METRICS}))
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


def table_rows(table: list[Average], category: str = ALL) -> tuple[list[str], list[list[str]]]:
    """The header and cells of one category's table (shared by the Markdown and HTML reports): "n/a" where no
    file had a value, "(n=k)" after a mean that covers fewer files than the row's count. Columns that are n/a
    in every row (DNSMOS off speech, metrics left out) are dropped; the original's row comes last."""
    rows = sorted((a for a in table if a.category == category), key=lambda a: a.codec == ORIGINAL)
    metrics = [m for m in METRICS if m not in OPTIONAL or any(a.metrics[m].mean is not None for a in rows)]
    header = ["codec", "nominal kb/s", "achieved kb/s", "payload kb/s", *(LABELS[m] for m in metrics), "n files"]
    cells = []
    for a in rows:
        original = a.codec == ORIGINAL
        cells.append([a.codec, "-" if original else f"{a.bandwidth:g}",
                      "-" if original else _cell(a.kbps, 2, a.n_files),
                      "-" if original else _cell(a.payload_kbps, 2, a.n_files),
                      *(_cell(a.metrics[m], DECIMALS[m], a.n_files) for m in metrics), str(a.n_files)])
    return header, cells


def markdown_table(table: list[Average], category: str = ALL) -> str:
    """The averages of one category as a Markdown table (see `table_rows`)."""
    header, cells = table_rows(table, category)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def write_markdown(path: Path, evaluation: Evaluation, table: list[Average], meta: dict,
                   health: list[LevelHealth], bins: int) -> None:
    parts = ["# Evaluation report", "",
             f"Model: {meta['model']}; data: {meta['data']}; {len(evaluation.files)} file(s) evaluated, "
             f"{len(evaluation.skipped)} skipped; speech metrics: {meta['speech']}.", "",
             "Achieved kb/s counts the whole file (headers and container included); payload kb/s the coded "
             "audio alone. n/a: not applicable "
             "(see docs/evaluation.md); (n=k): the mean covers k of the row's files. The \"original\" row gives "
             "the DNSMOS of the input files themselves, what a codec's DNSMOS is to be compared with.", ""]
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
