"""Dataclass configs that round-trip through plain dicts (JSON, YAML) and reject unknown keys.

Every config in the package (codec, quantizer, training) derives from `Config`, so a checkpoint or a
saved model can always be rebuilt from its stored dict, and a typo in a recipe fails loudly, naming
the key, instead of being silently ignored.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import types
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
            key = f"{where}.{name}" if where else name
            nested = _config_class(hints.get(name))
            if nested is not None and isinstance(value, Mapping):
                value = nested.from_dict(value, where=key)
            elif not _matches(value, hints.get(name, Any)):
                raise ConfigError(f"config key '{key}' must be {_describe(hints[name])}, got {value!r}")
            kwargs[name] = value
        return cls(**kwargs)

    def _check(self, where: str, checks: list[tuple[str, bool, str]]) -> None:
        """Refuse the first field whose check failed: `(field, ok, what it must be)`, named under `where`."""
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{f'{where} ' if where else ''}{name} must be {expected}, "
                                  f"got {getattr(self, name)!r}")

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a value read from JSON or YAML fits a field's type hint: an int where a float is expected, lists
    for sequences and tuples. Hints other than plain types, unions, sequences and tuples are not checked."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if _is_sequence(hint):
        if not isinstance(value, (list, tuple)):
            return False
        return all(_matches(v, args[0] if args else Any) for v in value)  # list[X], Sequence[X], tuple[X, ...]
    if isinstance(hint, type) and issubclass(hint, Config):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    """'an integer', 'a list of numbers', 'a number or null', ... for error messages."""
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    if hint in names:
        return names[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if _is_sequence(hint):
        return "a list" + (f" of {_PLURAL.get(args[0], 'values')}" if args else "")
    if isinstance(hint, type) and issubclass(hint, Config):
        return "a mapping of its settings"
    return str(hint)


_PLURAL = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def _is_sequence(hint: Any) -> bool:
    """`tuple`, `list`, `list[X]`, `tuple[X, ...]` or `Sequence[X]`: a JSON or YAML list."""
    return hint in (tuple, list) or typing.get_origin(hint) in (tuple, list, collections.abc.Sequence)


def _config_class(hint: Any) -> type[Config] | None:
    """The Config subclass named by a type hint such as `QuantizerConfig` or `QuantizerConfig | None`."""
    candidates = typing.get_args(hint) or (hint,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Config):
            return candidate
    return None
