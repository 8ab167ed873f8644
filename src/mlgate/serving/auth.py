"""Bearer tokens (RFC 6750) with three ordered roles: viewer < deployer < admin.

A token is shown once, when created, and only its SHA-256 is stored, so a copy of the
database grants nothing. Tokens are 256 random bits, so one unsalted hash suffices: there
is no dictionary to attack. Creating and revoking a token are ledger events that name
the token and its role and carry a digest of the stored record, never the token.

The hot path never touches the database: :class:`TokenCache` is an immutable snapshot
that the server swaps for a fresh one from :meth:`TokenStore.load` as it polls.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa

from mlgate.errors import ForbiddenError, InvalidRequestError, UnauthorizedError
from mlgate.ledger.events import LedgerEvent, digest_json, format_time
from mlgate.ledger.log import MerkleLog
from mlgate.store.engine import Store
from mlgate.store.schema import api_tokens

__all__ = ["ROLES", "TOKEN_PREFIX", "Principal", "TokenCache", "TokenStore"]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

ROLES = ("viewer", "deployer", "admin")
_RANK = {role: rank for rank, role in enumerate(ROLES)}
TOKEN_PREFIX = "mlg_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
# Far above a real token (4 + 43 characters): longer values are refused before hashing.
_MAX_TOKEN_LENGTH = 256
_HOW_TO = (
    "send Authorization: Bearer <token>; create one with `mlgate tokens create NAME --role viewer`"
)


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the token's name, never the token."""

    name: str
    role: str


def _token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_role(role: str) -> None:
    if role not in _RANK:
        raise InvalidRequestError(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")


class TokenStore:
    """Creates, revokes and lists tokens; each change commits with its ledger entry."""

    def __init__(self, store: Store, log: MerkleLog, clock: Clock) -> None:
        self._store = store
        self._log = log
        self._clock = clock

    def create(self, name: str, role: str, *, actor: str) -> str:
        """Return a new token for ``name``: the only time its plaintext exists anywhere."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise InvalidRequestError(
                f"token name {name!r:.140} is invalid: use 1 to 128 letters, digits or "
                "'._:@-', starting with a letter or digit (for example 'ci' or 'alice')"
            )
        _check_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = {
            "name": name,
            "token_sha256": _token_sha256(token),
            "role": role,
            "created_at": format_time(self._clock()),
            "revoked": False,
        }
        try:
            with self._store.write() as conn:
                existing = conn.execute(
                    sa.select(api_tokens.c.revoked).where(api_tokens.c.name == name)
                ).first()
                if existing is not None:
                    raise _duplicate(name, revoked=bool(existing[0]))
                conn.execute(api_tokens.insert().values(**record))
                self._log.append(
                    conn,
                    LedgerEvent(
                        kind="token.created",
                        actor=actor,
                        subject={"name": name, "role": role},
                        digests={"record": digest_json(record)},
                    ),
                )
        except sa.exc.IntegrityError:
            # Another process created the same name between our check and insert.
            raise _duplicate(name, revoked=False) from None
        logger.info("created API token %r with role %s", name, role)
        return token

    def revoke(self, name: str, *, actor: str) -> None:
        """Revoke ``name`` for good; revoking a revoked token changes (and records) nothing."""
        with self._store.write() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.name == name)).first()
            if row is None:
                raise InvalidRequestError(
                    f"there is no token named {name!r:.140}: `mlgate tokens list` shows them"
                )
            if row.revoked:
                return
            conn.execute(api_tokens.update().where(api_tokens.c.name == name).values(revoked=True))
            record = {**row._asdict(), "revoked": True}
            self._log.append(
                conn,
                LedgerEvent(
                    kind="token.revoked",
                    actor=actor,
                    subject={"name": name, "role": str(row.role)},
                    digests={"record": digest_json(record)},
                ),
            )
        logger.info("revoked API token %r", name)

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every token ever created, by name, without hashes."""
        query = sa.select(
            api_tokens.c.name, api_tokens.c.role, api_tokens.c.created_at, api_tokens.c.revoked
        ).order_by(api_tokens.c.name)
        with self._store.read() as conn:
            return [
                {"name": n, "role": r, "created_at": c, "revoked": bool(v)}
                for n, r, c, v in conn.execute(query)
            ]

    def load(self) -> TokenCache:
        """A snapshot of the live (unrevoked) tokens for the hot path."""
        query = sa.select(api_tokens.c.token_sha256, api_tokens.c.name, api_tokens.c.role).where(
            api_tokens.c.revoked == sa.false()
        )
        with self._store.read() as conn:
            rows = conn.execute(query).all()
        principals: dict[str, Principal] = {}
        for digest, name, role in rows:
            if role not in _RANK:  # fail closed on a row edited by hand
                logger.warning("ignoring API token %r: its role %r is unknown", name, role)
                continue
            principals[str(digest)] = Principal(name=str(name), role=str(role))
        return TokenCache(principals)


def _duplicate(name: str, *, revoked: bool) -> InvalidRequestError:
    state = "a revoked token" if revoked else "a token"
    return InvalidRequestError(
        f"{state} named {name!r} already exists; names are never reused, so every ledger "
        f"entry names one token: choose another name (such as '{name}-2')"
    )


class TokenCache:
    """An immutable map from token hash to principal, checked on every request."""

    __slots__ = ("_entries",)

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        """``principals`` maps the hex SHA-256 of each live token to its principal."""
        self._entries: Mapping[str, tuple[str, Principal]] = MappingProxyType(
            {digest: (digest, principal) for digest, principal in principals.items()}
        )

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, authorization_header: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header value.

        Every refusal says the same about the token itself (never echoing it, nor the
        header, which may carry other credentials), so a caller learns nothing by probing.
        """
        if not authorization_header:
            raise UnauthorizedError(f"the request has no Authorization header: {_HOW_TO}")
        scheme, _, token = authorization_header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise UnauthorizedError(f"the Authorization header is not a bearer token: {_HOW_TO}")
        digest = _token_sha256(token) if len(token) <= _MAX_TOKEN_LENGTH else ""
        # The lookup is keyed by a SHA-256 the caller cannot steer, so its timing leaks
        # nothing useful; the equality that grants access is checked in constant time.
        entry = self._entries.get(digest)
        if entry is None or not hmac.compare_digest(entry[0], digest):
            raise UnauthorizedError(f"the bearer token is unknown or revoked: {_HOW_TO}")
        return entry[1]

    def require(self, authorization_header: str | None, role: str) -> Principal:
        """Authenticate, then refuse a principal whose role ranks below ``role``."""
        needed = _RANK.get(role)
        if needed is None:
            raise ValueError(f"role {role!r} is unknown: use one of {', '.join(ROLES)}")
        principal = self.authenticate(authorization_header)
        if _RANK[principal.role] < needed:
            allowed = " or ".join(ROLES[needed:])
            raise ForbiddenError(
                f"token {principal.name!r} has role {principal.role}; this needs {allowed}"
            )
        return principal
