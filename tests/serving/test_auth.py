"""Bearer tokens on real stores: roles, revocation, the ledger, and secrecy of the token."""

from __future__ import annotations

import hashlib
import logging

import pytest
import sqlalchemy as sa

from mlgate.errors import ForbiddenError, InvalidRequestError, UnauthorizedError
from mlgate.serving.auth import ROLES, Principal, TokenCache, TokenStore
from mlgate.store.schema import metadata
from mlgate.workspace import Workspace

_ADVICE = "create one with `mlgate tokens create NAME --role viewer`"


@pytest.fixture
def tokens(workspace: Workspace) -> TokenStore:
    return TokenStore(workspace.store, workspace.log, workspace.clock)


def _ledger(ws: Workspace) -> list[dict[str, object]]:
    with ws.store.read() as conn:
        return [entry.document() for entry in ws.log.entries(conn)]


def _everything_stored(ws: Workspace) -> str:
    """Every value in every table, ledger entries included, as one searchable text."""
    parts: list[str] = []
    with ws.store.read() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(sa.select(table)):
                for value in row:
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    parts.append(text)
    return "\n".join(parts)


def test_a_created_token_authenticates_as_its_name_and_role(tokens: TokenStore) -> None:
    token = tokens.create("ci", "deployer", actor="user:alice")
    assert token.startswith("mlg_") and len(token) > 40
    cache = tokens.load()
    assert cache.authenticate(f"Bearer {token}") == Principal("ci", "deployer")
    assert cache.authenticate(f"bearer  {token} ") == Principal("ci", "deployer")
    assert tokens.create("bob", "viewer", actor="user:alice") != token
    assert tokens.list() == [
        {"name": "bob", "role": "viewer", "created_at": tokens.list()[0]["created_at"],
         "revoked": False},
        {"name": "ci", "role": "deployer", "created_at": tokens.list()[1]["created_at"],
         "revoked": False},
    ]  # fmt: skip


def test_roles_are_ordered(tokens: TokenStore) -> None:
    assert ROLES == ("viewer", "deployer", "admin")
    issued = {role: tokens.create(f"t-{role}", role, actor="user:alice") for role in ROLES}
    cache = tokens.load()
    for held in ROLES:
        header = f"Bearer {issued[held]}"
        for needed in ROLES:
            if ROLES.index(held) >= ROLES.index(needed):
                assert cache.require(header, needed) == Principal(f"t-{held}", held)
            else:
                with pytest.raises(ForbiddenError):
                    cache.require(header, needed)
    with pytest.raises(ForbiddenError) as refused:
        cache.require(f"Bearer {issued['viewer']}", "deployer")
    assert str(refused.value) == "token 't-viewer' has role viewer; this needs deployer or admin"
    with pytest.raises(ForbiddenError, match="has role deployer; this needs admin$"):
        cache.require(f"Bearer {issued['deployer']}", "admin")
    with pytest.raises(ValueError, match="role 'root' is unknown"):
        cache.require(f"Bearer {issued['admin']}", "root")


def test_revoked_tokens_stop_working_from_the_next_load(
    workspace: Workspace, tokens: TokenStore
) -> None:
    token = tokens.create("ci", "admin", actor="user:alice")
    before = tokens.load()
    tokens.revoke("ci", actor="user:bob")
    assert before.authenticate(f"Bearer {token}").name == "ci"  # a snapshot, by design
    with pytest.raises(UnauthorizedError, match="unknown or revoked"):
        tokens.load().authenticate(f"Bearer {token}")
    assert tokens.list()[0]["revoked"] is True
    size = len(_ledger(workspace))
    tokens.revoke("ci", actor="user:bob")  # already revoked: nothing changes or is recorded
    assert len(_ledger(workspace)) == size
    with pytest.raises(InvalidRequestError, match="no token named 'nobody'"):
        tokens.revoke("nobody", actor="user:bob")


def test_creating_and_revoking_are_ledgered(workspace: Workspace, tokens: TokenStore) -> None:
    tokens.create("ci", "deployer", actor="user:alice")
    tokens.revoke("ci", actor="user:bob")
    created, revoked = _ledger(workspace)[-2:]
    assert created["kind"] == "token.created" and created["actor"] == "user:alice"
    assert created["subject"] == {"name": "ci", "role": "deployer"}
    assert revoked["kind"] == "token.revoked" and revoked["actor"] == "user:bob"
    assert revoked["subject"] == {"name": "ci", "role": "deployer"}
    for entry in (created, revoked):
        digests = entry["digests"]
        assert isinstance(digests, dict) and digests["record"].startswith("sha256:")


def test_names_and_roles_are_checked(tokens: TokenStore) -> None:
    tokens.create("ci", "viewer", actor="user:alice")
    with pytest.raises(InvalidRequestError, match="a token named 'ci' already exists"):
        tokens.create("ci", "admin", actor="user:alice")
    tokens.revoke("ci", actor="user:alice")
    with pytest.raises(InvalidRequestError, match="a revoked token named 'ci' already exists"):
        tokens.create("ci", "viewer", actor="user:alice")
    with pytest.raises(InvalidRequestError, match="role 'root' is unknown: use one of viewer"):
        tokens.create("ops", "root", actor="user:alice")
    for bad in ("", "has space", "-dash", "x" * 129):
        with pytest.raises(InvalidRequestError, match="token name .* is invalid"):
            tokens.create(bad, "viewer", actor="user:alice")
    assert [t["name"] for t in tokens.list()] == ["ci"]


def test_the_token_is_never_stored_logged_or_echoed(
    workspace: Workspace, tokens: TokenStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        token = tokens.create("ci", "admin", actor="user:alice")
        tokens.create("other", "viewer", actor="user:alice")
        cache = tokens.load()
        cache.require(f"Bearer {token}", "admin")
        near_miss = token[:-1] + ("A" if token[-1] != "A" else "B")
        with pytest.raises(UnauthorizedError) as refused:
            cache.authenticate(f"Bearer {near_miss}")
        tokens.revoke("ci", actor="user:alice")
        with pytest.raises(UnauthorizedError) as revoked:
            tokens.load().authenticate(f"Bearer {token}")
    secret = token.removeprefix("mlg_")
    stored = _everything_stored(workspace)
    assert secret not in stored and secret[:20] not in stored
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    assert token_hash in stored  # the hash is what api_tokens keeps...
    ledger = "\n".join(str(entry) for entry in _ledger(workspace))
    assert "token.created" in ledger and secret not in ledger
    assert token_hash not in ledger  # ...and the ledger holds only a digest of the record
    for text in (str(refused.value), str(revoked.value), caplog.text, repr(cache)):
        assert secret not in text and near_miss.removeprefix("mlg_") not in text
    assert all(entry.keys() == {"name", "role", "created_at", "revoked"} for entry in tokens.list())


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic x", "Basic bWxnOnNlY3JldA==", "Bearer", "Bearer ", "Bearer a b", "Token x"],
)
def test_malformed_headers_are_unauthorized(header: str | None) -> None:
    cache = TokenCache({hashlib.sha256(b"x").hexdigest(): Principal("x", "admin")})
    with pytest.raises(UnauthorizedError) as refused:
        cache.authenticate(header)
    message = str(refused.value)
    assert "send Authorization: Bearer <token>" in message and _ADVICE in message
    assert "bWxnOnNlY3JldA==" not in message  # other schemes' credentials are not echoed
    with pytest.raises(UnauthorizedError):
        cache.require(header, "viewer")


def test_unknown_and_oversized_tokens_are_unauthorized() -> None:
    cache = TokenCache({hashlib.sha256(b"x").hexdigest(): Principal("x", "viewer")})
    assert cache.authenticate("Bearer x") == Principal("x", "viewer")
    assert len(cache) == 1
    for token in ("y", "x" * 10_000):
        with pytest.raises(UnauthorizedError, match="unknown or revoked"):
            cache.authenticate(f"Bearer {token}")
