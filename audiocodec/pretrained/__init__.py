"""Where the embedded default model lives and which models were the default before it.

Kept free of torch: `audiocodec info` names the default that coded a file, and loading torch would take it from a
fraction of a second to seconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

PRETRAINED_DIR = Path(__file__).parent
CONFIG_FILE = "config.json"

#: Models the package embedded as its default before the present one: id -> (the commit that shipped it, the day
#: it was replaced). A file coded with one names it, and `check_model` says where to find it (docs/default-model.md,
#: "Files made with an earlier default"). Add the outgoing default's line whenever the default changes.
EARLIER_DEFAULTS = {
    "f38673078bc6f412": ("0eb4947", "2026-11-27"),
    "3276ee4908bd1930": ("fe402a5", "2026-11-27"),
    "3d8aba808954fd9f": ("8ea1c7d", "2026-11-27"),
    "5c3ad288b88a9766": ("acad70e", "2026-11-26"),
    "a36eb8ae064db31a": ("c6a783b", "2026-11-26"),
    "a59bd1eac02bfa5c": ("19cdcbb", "2026-11-26"),
    "938da2df24537bfd": ("3768b46", "2026-11-26"),
    "38a49b781fa74d30": ("78619f5", "2026-11-26"),
    "d02d3e0cd7576c81": ("d0157a2", "2026-11-25"),
}


def model_directory(name: str | os.PathLike) -> Path:
    """The folder a model name means: "default" is the one embedded in the package, anything else a path."""
    return PRETRAINED_DIR / "default" if str(name) == "default" else Path(name)


def embedded_config() -> dict | None:
    """The embedded default's config.json, read without torch (`--help` names its bandwidths); None when there is
    none or it is damaged, which loading the model reports."""
    try:
        meta = json.loads((model_directory("default") / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def model_origin(model_id: str) -> str | None:
    """What the package knows of the model that coded a file: the embedded default, or an earlier default and where
    it is (`info` says so, since a file names its model only by id); None for any other model."""
    if model_id == (embedded_config() or {}).get("model_id"):
        return "the embedded default model"
    return earlier_default(model_id)


def earlier_default(model_id: str) -> str | None:
    """Which earlier default `model_id` was and where it is, as `info` and a refused decompress say it; None for
    any other model."""
    if model_id not in EARLIER_DEFAULTS:
        return None
    commit, until = EARLIER_DEFAULTS[model_id]
    return f"the default model until {until}, in audiocodec's git history (commit {commit}, docs/default-model.md)"
