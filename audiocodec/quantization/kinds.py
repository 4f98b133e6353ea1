"""The registry of level kinds: `QuantizerConfig.kind` names one of these, whose settings are the config's
section of the same name. A new kind is a `QuantizerLevel` subclass in its own file, a line here, and its
section in config.py."""

from __future__ import annotations

from .ema import EMALevel
from .fsq import FSQLevel
from .gumbel import GumbelCodebook
from .level import QuantizerLevel

KINDS: dict[str, type[QuantizerLevel]] = {
    "ema": EMALevel,
    "gumbel": GumbelCodebook,
    "fsq": FSQLevel,
}
