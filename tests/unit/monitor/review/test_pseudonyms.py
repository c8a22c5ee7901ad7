"""Pseudonyms: stable per key, distinct across keys and ids, and what each display helper hides."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select

from monitor.archive import make_engine
from monitor.archive.schema import create_schema
from monitor.review.pseudonyms import (
    PREFIX,
    KeyCache,
    Pseudonymiser,
    load_secret,
    pseudonym,
)
from monitor.review.review_secrets import PSEUDONYM_KEY, SAMPLE_KEY, SECRETS

KEY = b"k" * 32
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SHAPE = re.compile(r"客户-[0-9A-HJKMNP-TV-Z]{8}")


def test_same_key_same_pseudonym_in_every_instance() -> None:
    one, other = Pseudonymiser(KEY), Pseudonymiser(bytes(KEY))
    assert one.customer("wmCustomer1") == other.customer("wmCustomer1")
    assert one.customer("wmCustomer1") == pseudonym(KEY, "wmCustomer1")
    assert SHAPE.fullmatch(one.customer("wmCustomer1"))


def test_different_keys_give_different_pseudonyms() -> None:
    ids = [f"wm{i:06d}" for i in range(200)]
    a = [pseudonym(KEY, i) for i in ids]
    b = [pseudonym(b"another key of thirty-two bytes!", i) for i in ids]
    assert sum(x == y for x, y in zip(a, b, strict=True)) == 0


@pytest.mark.parametrize("key", [KEY, hashlib.sha256(b"a second key").digest()], ids=["k1", "k2"])
def test_no_collisions_on_ten_thousand_ids(key: bytes) -> None:
    ids = [f"wmExternalUser{i:05d}" for i in range(10_000)]
    assert len({pseudonym(key, i) for i in ids}) == len(ids)


def test_hidden_and_revealed_display() -> None:
    privacy = Pseudonymiser(KEY, shown=frozenset({"wmShown"}))
    hidden = pseudonym(KEY, "wmHidden")
    assert privacy.customer("wmHidden") == hidden and privacy.customer("") == ""
    assert privacy.name("wmHidden", "王女士") == hidden
    assert privacy.label("wmHidden", "王女士") == hidden
    assert privacy.label("wmShown", "李先生") == "wmShown（李先生）"
    assert privacy.label("wmShown") == "wmShown"
    assert privacy.name("wmShown", "李先生") == "李先生"
    assert privacy.author("customer", "wmHidden") == hidden
    assert privacy.author("staff", "zhangsan") == "zhangsan"
    assert privacy.author("bot", "bot") == "bot"
    assert privacy.author("system", "wmHidden") == hidden  # an external id is a customer
    assert privacy.revealed("wmShown") and not privacy.revealed("wmHidden")


@pytest.mark.parametrize(
    ("conversation", "hidden_part"),
    [
        ("kf:wkAccount:wmHidden", "wmHidden"),
        ("app:wmHidden", "wmHidden"),
        ("ma:zhangsan:wmHidden", "wmHidden"),
        ("ma:room:wrRoom1", ""),
        ("ma:lisi:zhangsan", ""),
        ("plain", ""),
    ],
)
def test_conversation_titles(conversation: str, hidden_part: str) -> None:
    privacy = Pseudonymiser(KEY)
    shown = privacy.conversation(conversation)
    if hidden_part:
        assert hidden_part not in shown
        assert shown == conversation.replace(hidden_part, pseudonym(KEY, hidden_part))
    else:
        assert shown == conversation
    assert Pseudonymiser(KEY, shown=frozenset({hidden_part})).conversation(conversation) == (
        conversation
    )


def test_text_of_replaces_only_the_hidden_ids() -> None:
    privacy = Pseudonymiser(KEY, shown=frozenset({"wmB"}))
    text = privacy.text_of("导出 wmA12 与 wmB 的会话 wmA1", ["wmA1", "wmA12", "wmB"])
    assert "wmA1" not in text and "wmB" in text
    assert pseudonym(KEY, "wmA12") in text and pseudonym(KEY, "wmA1") in text


def test_off_changes_nothing() -> None:
    off = Pseudonymiser(b"", enabled=False)
    assert off.customer("wmX") == "wmX" and off.name("wmX", "王") == "王"
    assert off.label("wmX", "王") == "wmX（王）" and off.conversation("kf:a:wmX") == "kf:a:wmX"
    assert off.author("customer", "wmX") == "wmX" and off.text_of("wmX", ["wmX"]) == "wmX"
    assert off.hidden(["wmX"]) == [] and off.revealed("wmX")


def test_hidden_lists_each_customer_once_with_a_sealed_reference() -> None:
    privacy = Pseudonymiser(KEY, shown=frozenset({"wmShown"}))
    found = privacy.hidden(["wmB", "wmA", "", "wmShown"], ["wmA"])
    assert [h.pseudonym for h in found] == sorted([pseudonym(KEY, "wmA"), pseudonym(KEY, "wmB")])
    assert {privacy.unseal(h.ref) for h in found} == {"wmA", "wmB"}
    assert all("wm" not in h.ref for h in found)


def test_sealed_references_are_opaque_and_tamper_proof() -> None:
    privacy = Pseudonymiser(KEY)
    token = privacy.seal("wmSecretCustomer")
    assert "wmSecret" not in token and privacy.unseal(token) == "wmSecretCustomer"
    assert privacy.seal("wmSecretCustomer") != token  # a fresh nonce each time
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert privacy.unseal(flipped) is None
    assert privacy.unseal("not a token") is None and privacy.unseal("") is None
    assert Pseudonymiser(b"other" * 8).unseal(token) is None
    assert PREFIX == "客户-"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def test_a_generated_key_is_made_once_and_shared(engine: Engine) -> None:
    with engine.begin() as conn:
        first = load_secret(conn, PSEUDONYM_KEY, NOW)
    with engine.begin() as conn:
        again = load_secret(conn, PSEUDONYM_KEY, NOW)
        sample = load_secret(conn, SAMPLE_KEY, NOW)
    assert first == again and len(first) == 32 and sample != first
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SECRETS)).scalar_one() == 2


async def test_workers_racing_for_the_key_agree(engine: Engine, database_url: str) -> None:
    others = [make_engine(database_url) for _ in range(3)]
    try:
        keys = await asyncio.gather(*(KeyCache().get(e, NOW) for e in [engine, *others]))
    finally:
        for other in others:
            other.dispose()
    assert len(set(keys)) == 1
    assert pseudonym(keys[0], "wmX") == pseudonym(keys[-1], "wmX")


async def test_a_configured_key_is_used_as_given(engine: Engine) -> None:
    configured = "a-configured-key-of-32-characters!"
    key = await KeyCache(configured).get(engine, NOW)
    assert key == configured.encode()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SECRETS)).scalar_one() == 0
