"""The ``mlgate`` command line: thin commands that parse, call the library and print."""

from __future__ import annotations

__all__: list[str] = []
