"""Which files an evaluation runs on, and their categories.

`--data` is a corpus folder holding a `test.jsonl` manifest, a manifest file (`.jsonl` or `.txt`, read as training
reads one, `io.audio.read_manifest`: a path a line, or a JSON object with "path" relative to the manifest,
"category" and any other fields), or a plain folder searched recursively for audio files. Categories come from
JSON lines only; anything else is "unknown". A listed file that does not exist is skipped and reported rather than
silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..io.audio import AUDIO_SUFFIXES, files_below, read_manifest
from . import EvaluationError

MANIFEST = "test.jsonl"
UNKNOWN = "unknown"


@dataclass
class Item:
    """One file to evaluate: where it is, how reports name it, its category and its other manifest fields."""

    path: Path
    name: str
    category: str = UNKNOWN
    info: dict = field(default_factory=dict)


@dataclass
class Skipped:
    """A file left out of the evaluation, and why; reports list them so that nothing vanishes silently."""

    name: str
    reason: str


def find_items(data: str | Path) -> tuple[list[Item], list[Skipped]]:
    """The files `--data` names (in manifest order, or sorted for folders), and the listed ones that are missing."""
    data = Path(data)
    if not data.exists():
        raise EvaluationError(f"{data}: no such file or directory")
    if data.is_dir():
        if (data / MANIFEST).is_file():
            return _read_manifest(data / MANIFEST)
        return _scan_folder(data), []
    if data.suffix in (".jsonl", ".txt"):
        return _read_manifest(data)
    raise EvaluationError(f"{data}: expected a folder, a .jsonl manifest or a .txt list of files")


def select(items: list[Item], max_files: int | None) -> list[Item]:
    """At most `max_files` items, taken in turn from each category so that a small run still covers them all.

    The chosen items keep their original order.
    """
    if max_files is None or max_files >= len(items):
        return items
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_category[item.category].append(index)
    queues = list(by_category.values())
    chosen: list[int] = []
    while len(chosen) < max_files:
        for queue in queues:
            if queue and len(chosen) < max_files:
                chosen.append(queue.pop(0))
    return [items[i] for i in sorted(chosen)]


def _scan_folder(folder: Path) -> list[Item]:
    files = files_below(folder)
    if not files:
        raise EvaluationError(f"{folder}: no audio files found (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    return [Item(path, path.relative_to(folder).as_posix()) for path in files]


def _read_manifest(manifest: Path) -> tuple[list[Item], list[Skipped]]:
    entries = []
    for entry in read_manifest(manifest, EvaluationError):
        info = {k: v for k, v in entry.items() if k not in ("path", "category")}
        entries.append((entry["path"], str(entry.get("category", UNKNOWN)), info))
    return _resolve(manifest, entries)


def _resolve(manifest: Path, entries: list[tuple[str, str, dict]]) -> tuple[list[Item], list[Skipped]]:
    items, skipped = [], []
    for relative, category, info in entries:
        path = manifest.parent / relative
        if path.is_file():
            items.append(Item(path, relative, category, info))
        else:
            skipped.append(Skipped(relative, f"listed in {manifest.name} but no such file"))
    return items, skipped
