"""What every benchmark shares: writing its own marked section of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_marked_section"]


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
