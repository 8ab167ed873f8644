"""``python -m mlgate`` runs the command line."""

from __future__ import annotations

from mlgate.cli.app import main

main()
