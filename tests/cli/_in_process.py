"""Running ``mlgate`` in-process through its real entry point, for the CLI tests.

:func:`mlgate.cli.app.main` is the console script's own entry point, so exit codes and
the one-line error handling are the real ones, without a second-long process start per
case. Tests that must see the installed executable run it in a subprocess instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from mlgate.cli.app import main

__all__ = ["Cli", "Run", "run_main"]


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


Cli = Callable[..., Run]


def run_main(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    prefix: Sequence[str],
    args: Sequence[object],
) -> Run:
    """``mlgate *prefix *args``, with its exit code and captured output."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["mlgate", *prefix, *(str(a) for a in args)])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return Run(0 if code is None else int(code), out, err)
