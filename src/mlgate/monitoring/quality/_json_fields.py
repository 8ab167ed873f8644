"""Typed reading of parsed JSON objects, failing with :class:`ProfileError` and a path.

A stored profile is read back by code that must not guess: a missing key, a string
where a number belongs, or a bool posing as an int is a corrupt profile, reported
with where it was found so that a person can fix or refit it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from mlgate.errors import ProfileError

__all__ = ["Fields"]


class Fields:
    """A JSON object plus the path it was found at, with one getter per field type."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ProfileError(
                f"{path} must be a JSON object, found {type(data).__name__}; "
                f"the profile is corrupt, fit it again."
            )
        self._data = data
        self.path = path

    def _bad(self, key: str, expected: str) -> ProfileError:
        found = self._data.get(key, "<missing>")
        return ProfileError(
            f"{self.path}.{key} must be {expected}, found {found!r}; "
            f"the profile is corrupt, fit it again."
        )

    def raw(self, key: str) -> object:
        if key not in self._data:
            raise self._bad(key, "present")
        return self._data[key]

    def obj(self, key: str) -> Fields:
        return Fields(self.raw(key), f"{self.path}.{key}")

    def opt_obj(self, key: str) -> Fields | None:
        value = self.raw(key)
        return None if value is None else Fields(value, f"{self.path}.{key}")

    def keys(self) -> list[str]:
        return [str(k) for k in self._data]

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._bad(key, "a non-negative integer")
        return value

    def number(self, key: str) -> float:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number")
        if not math.isfinite(value):
            raise self._bad(key, "a finite number")
        return float(value)

    def opt_number(self, key: str) -> float | None:
        return None if self.raw(key) is None else self.number(key)

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def flag(self, key: str) -> bool:
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def items(self, key: str) -> list[object]:
        value = self.raw(key)
        if not isinstance(value, list | tuple):
            raise self._bad(key, "a list")
        return list(value)

    def texts(self, key: str) -> tuple[str, ...]:
        items = self.items(key)
        if not all(isinstance(item, str) for item in items):
            raise self._bad(key, "a list of strings")
        return tuple(str(item) for item in items)

    def numbers(self, key: str) -> tuple[float, ...]:
        items = self.items(key)
        if not all(_is_finite_number(item) for item in items):
            raise self._bad(key, "a list of finite numbers")
        return tuple(float(item) for item in items)  # type: ignore[arg-type]

    def counts(self, key: str) -> dict[str, int]:
        inner = self.obj(key)
        return {name: inner.integer(name) for name in inner.keys()}


def _is_finite_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
