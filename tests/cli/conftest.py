"""CLI fixtures: ``mlgate`` run in-process against the test's workspace."""

from __future__ import annotations

import pytest

from mlgate.config import Settings
from tests.cli._in_process import Cli, Run, run_main


@pytest.fixture
def workspace_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> Cli:
    """``mlgate --home HOME --store URL ...`` on the workspace fixture's settings."""
    prefix = ["--home", str(settings.home), "--store", settings.store_url]

    def run(*args: object) -> Run:
        return run_main(capsys, monkeypatch, prefix, args)

    return run
