"""What every command shares: settings from global options, output, and error handling."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console

from mlgate.config import Settings
from mlgate.workspace import Workspace

__all__ = [
    "CliState",
    "console",
    "err_console",
    "one_line",
    "open_workspace",
    "print_json",
    "state_of",
]


def _console(*, stderr: bool = False) -> Console:
    """soft_wrap keeps keys, hashes and paths on one line so they can be copied; off a
    terminal (pipes, CI logs) tables get 120 columns instead of rich's 80-column guess."""
    on_terminal = Console(stderr=stderr).is_terminal
    return Console(stderr=stderr, soft_wrap=True, width=None if on_terminal else 120)


console = _console()
err_console = _console(stderr=True)


@dataclass
class CliState:
    settings: Settings


def state_of(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    assert isinstance(state, CliState), "the root callback sets the state"
    return state


@contextmanager
def open_workspace(ctx: typer.Context) -> Iterator[Workspace]:
    with Workspace.open(state_of(ctx).settings) as workspace:
        yield workspace


def print_json(value: Any) -> None:
    """Plain JSON on stdout: no colour, no wrapping, so scripts can parse it."""
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=False) + "\n")
    sys.stdout.flush()


def one_line(exc: BaseException) -> str:
    """The message on one line: driver errors (libpq's, for one) embed newlines and indents."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
