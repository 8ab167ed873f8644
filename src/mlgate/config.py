"""Where mlgate keeps its state, resolved once at start-up and passed down.

Precedence for every setting: explicit argument (CLI flag) > ``MLGATE_*``
environment variable > default. Nothing else reads the environment, so tests and
embedding applications can build a :class:`Settings` directly.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_HOME", "Settings"]

DEFAULT_HOME = Path(".mlgate")


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = "unknown"
    return f"user:{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Settings:
    """The few facts every component needs: the home folder, the store URL, who acts."""

    home: Path
    store_url: str
    actor: str

    @classmethod
    def resolve(
        cls,
        *,
        home: Path | str | None = None,
        store_url: str | None = None,
        actor: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        resolved_home = Path(home or env.get("MLGATE_HOME") or DEFAULT_HOME).expanduser()
        url = store_url or env.get("MLGATE_STORE") or _sqlite_url(resolved_home / "mlgate.db")
        who = actor or env.get("MLGATE_ACTOR") or _default_actor()
        return cls(home=resolved_home.absolute(), store_url=url, actor=who)

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def private_key_path(self) -> Path:
        return self.keys_dir / "ledger.key"

    @property
    def public_key_path(self) -> Path:
        return self.keys_dir / "ledger.pub"


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.absolute()}"
