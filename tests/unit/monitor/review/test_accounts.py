"""Accounts on both databases: add, disable, list, password checks, rehash, audit rows."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from monitor.archive import GroupCommitWriter
from monitor.archive.audit import AuditEventRecord
from monitor.review.accounts import AccountError, Accounts
from monitor.review.models import ReviewerRecord, ReviewSessionRecord
from tests.support.review import FAST_HASHER, review_services
from tests.unit.monitor.review.conftest import FakeClock


class CountingHasher(PasswordHasher):
    """FAST_HASHER's parameters, counting verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


@pytest.fixture
def accounts(writer: GroupCommitWriter, clock: FakeClock) -> Accounts:
    return Accounts(writer, clock=clock, hasher=CountingHasher())


def audit_rows(writer: GroupCommitWriter) -> list[dict]:
    table = AuditEventRecord.__table__
    with writer.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).order_by(table.c.id)).mappings()]


async def test_add_list_disable_with_audit(
    accounts: Accounts, writer: GroupCommitWriter, clock: FakeClock
) -> None:
    await accounts.add("bob", "bob-password", "admin", actor="ops", source="cli")
    await accounts.add(
        "alice", "alice-password", "reviewer", actor="bob", source="web", address="10.1.1.1"
    )
    listed = await accounts.list()
    assert [(a.username, a.role, a.disabled, a.created_at, a.last_login_at) for a in listed] == [
        ("alice", "reviewer", False, clock.now, None),
        ("bob", "admin", False, clock.now, None),
    ]
    with writer.engine.connect() as conn:
        stored = conn.execute(select(ReviewerRecord.__table__.c.password_hash)).scalars().all()
    assert all(h.startswith("$argon2id$") for h in stored)
    assert not any("password" in h for h in stored)
    assert await accounts.disable("alice", actor="bob", source="web") is True
    assert await accounts.disable("alice", actor="bob", source="web") is False
    assert (await accounts.get("alice")).disabled
    rows = audit_rows(writer)
    assert [(r["action"], r["actor"], r["source"], r["target"], r["address"]) for r in rows] == [
        ("user_add", "ops", "cli", "bob", ""),
        ("user_add", "bob", "web", "alice", "10.1.1.1"),
        ("user_disable", "bob", "web", "alice", ""),
    ]
    assert json.loads(rows[0]["detail"]) == {"role": "admin"}


@pytest.mark.parametrize(
    "case",
    [
        ("carol", "short-pw", "reviewer", "short"),
        ("carol", "long-enough-pw", "root", "role"),
        ("", "long-enough-pw", "reviewer", "name"),
        ("ca rol", "long-enough-pw", "reviewer", "name"),
        ("c" * 65, "long-enough-pw", "reviewer", "name"),
        ("alice", "long-enough-pw", "admin", "exists"),
    ],
)
async def test_add_refusals(accounts: Accounts, writer: GroupCommitWriter, case: tuple) -> None:
    username, password, role, kind = case
    await accounts.add("alice", "alice-password", "reviewer", actor="ops", source="cli")
    with pytest.raises(AccountError) as caught:
        await accounts.add(username, password, role, actor="ops", source="cli")
    assert caught.value.kind == kind
    assert len(await accounts.list()) == 1
    assert len(audit_rows(writer)) == 1


async def test_disable_unknown(accounts: Accounts, writer: GroupCommitWriter) -> None:
    with pytest.raises(AccountError) as caught:
        await accounts.disable("ghost", actor="ops", source="cli")
    assert caught.value.kind == "unknown"
    assert audit_rows(writer) == []


async def test_disable_ends_database_sessions(writer: GroupCommitWriter, clock: FakeClock) -> None:
    services = review_services(writer, clock=clock)
    await services.accounts.add("alice", "alice-password", "reviewer", actor="ops", source="cli")
    await services.accounts.add("bob", "bob-password", "reviewer", actor="ops", source="cli")
    await services.sessions.start("alice", "")
    bob_token, _ = await services.sessions.start("bob", "")
    await services.accounts.disable("alice", actor="ops", source="cli")
    with writer.engine.connect() as conn:
        users = conn.execute(select(ReviewSessionRecord.__table__.c.username)).scalars().all()
    assert users == ["bob"]
    assert await services.sessions.resume(bob_token) is not None


async def test_authenticate(accounts: Accounts) -> None:
    await accounts.add("alice", "alice-password", "reviewer", actor="ops", source="cli")
    hasher = accounts.hasher
    assert isinstance(hasher, CountingHasher)
    check = await accounts.authenticate("alice", "alice-password")
    assert check is not None
    assert (check.account.username, check.new_hash) == ("alice", None)
    for username, password in [
        ("alice", "wrong-password"),
        ("alice", "Alice-password"),
        ("Alice", "alice-password"),
        ("nobody", "alice-password"),
        ("bad name", "alice-password"),
        ("alice", "x" * 5000),
    ]:
        before = hasher.verified
        assert await accounts.authenticate(username, password) is None, (username, password)
        # An unknown name costs a verification too (against the dummy hash).
        assert hasher.verified == before + 1
    await accounts.disable("alice", actor="ops", source="cli")
    before = hasher.verified
    assert await accounts.authenticate("alice", "alice-password") is None
    assert hasher.verified == before + 1


async def test_authenticate_offers_rehash(writer: GroupCommitWriter, clock: FakeClock) -> None:
    old = Accounts(
        writer, clock=clock, hasher=PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    )
    await old.add("alice", "alice-password", "reviewer", actor="ops", source="cli")
    new = Accounts(writer, clock=clock, hasher=FAST_HASHER)
    check = await new.authenticate("alice", "alice-password")
    assert check is not None and check.new_hash is not None
    assert not FAST_HASHER.check_needs_rehash(check.new_hash)
    assert FAST_HASHER.verify(check.new_hash, "alice-password")
