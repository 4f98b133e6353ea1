"""Dataclass configs that round-trip through plain dicts (JSON, YAML) and reject unknown keys.

Every config in the package (codec, quantizer, training) derives from `Config`, so a checkpoint or a
saved model can always be rebuilt from its stored dict, and a typo in a recipe fails loudly, naming
the key, instead of being silently ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Mapping, TypeVar

from .errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass
class Config:
    """Mixin for dataclass configs: `to_dict()` and `from_dict()` with nested configs."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Config):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None, *, where: str = "") -> C:
        """Build a config from a dict; an unknown key is a `ConfigError` naming it and its place."""
        data = dict(data or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            place = f" in '{where}'" if where else ""
            raise ConfigError(
                f"unknown config key{'s' if len(unknown) > 1 else ''}{place}: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(fields))})"
            )
        hints = typing.get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            nested = _config_class(hints.get(name))
            if nested is not None and isinstance(value, Mapping):
                value = nested.from_dict(value, where=f"{where}.{name}" if where else name)
            kwargs[name] = value
        return cls(**kwargs)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


def _config_class(hint: Any) -> type[Config] | None:
    """The Config subclass named by a type hint such as `QuantizerConfig` or `QuantizerConfig | None`."""
    candidates = typing.get_args(hint) or (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Config):
            return candidate
    return None
