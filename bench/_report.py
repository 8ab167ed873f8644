"""What every benchmark shares: printing its section and writing it into BENCHMARKS.md."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["publish", "write_marked_section"]


def publish(
    name: str,
    section: str,
    results: dict[str, Any],
    *,
    out: Path | None,
    write: Path | None,
    write_section: Callable[[Path, str], None],
) -> None:
    """Print ``section``; keep the raw ``results`` in ``out`` and the section in ``write``."""
    print(section)
    if out:
        out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    if write:
        write_section(write, section)
        print(f"updated the {name} section of {write}", file=sys.stderr, flush=True)


def write_marked_section(path: Path, section: str, start_mark: str, end_mark: str) -> None:
    """Put ``section`` (which carries its own marks) between the marks in ``path``.

    Other sections are kept as they are; a missing file or section is created.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    start, end = text.find(start_mark), text.find(end_mark)
    if start != -1 and end != -1 and start < end:
        text = text[:start] + section.rstrip("\n") + text[end + len(end_mark) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
