"""The hash chain's pure core on fixed vectors: canonical forms, digests, entries, block hashes.

The expected forms are written out as literal JSON text and hashed with hashlib here, so the
format the module docstring documents is what an auditor's own tool would recompute.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.archive.chain import (
    ZERO_HASH,
    Entry,
    audit_digest,
    block_hash,
    decode_entries,
    encode_entries,
    flag_digest,
    message_digest,
)

BEIJING = timezone(timedelta(hours=8))

MESSAGE = (
    "msg:1",
    "app",
    "text",
    None,
    "zhangsan",
    "wx5823bf96d3bd56c7",
    "1000002",
    1775034000,
    "我要投诉😡",
    "<xml/>",
    datetime(2026, 4, 1, 17, 0, 0, 123456, tzinfo=BEIJING),  # 09:00 UTC
    "r1",
    "app:zhangsan",
    "customer",
)
HIT = ("投诉", "customer_risk", 3, 2, 4, "r1")
MESSAGE_FORM = (
    '{"agent_id":"1000002","channel":"app","content":"我要投诉😡","conversation_id":"app:zhangsan",'
    '"create_time":1775034000,"dedupe_key":"msg:1","direction":"customer","event":null,'
    '"from_user":"zhangsan","hits":[{"rule_group":"customer_risk","rules_version":"r1",'
    '"severity":3,"span_end":4,"span_start":2,"word":"投诉"}],"msg_type":"text","raw":"<xml/>",'
    '"received_at":"2026-04-01T09:00:00.123456+00:00","rules_version":"r1","table":"message",'
    '"to_user":"wx5823bf96d3bd56c7"}'
)
MESSAGE_DIGEST = "708e82877349728d909e92dcf2106e05538e2408827585589e6ce733005dee25"
FLAG = ("kf:m1", "recalled", "recall_msg", "kf:e1", datetime(2026, 4, 1, 9, 0, tzinfo=UTC))
FLAG_FORM = (
    '{"created_at":"2026-04-01T09:00:00+00:00","dedupe_key":"kf:m1","detail":"recall_msg",'
    '"flag":"recalled","source_key":"kf:e1","table":"message_flag"}'
)
FLAG_DIGEST = "084f279b3f9442ff2538657d5bf51b3e9f75a499ab7e184972b4630ebdf828f6"
AUDIT = (
    datetime(2026, 4, 1, 9, 0, tzinfo=UTC),
    "li.na",
    "web",
    "resolve",
    "al-1",
    '{"after":"resolved"}',
    "10.0.0.1",
)
AUDIT_FORM = (
    '{"action":"resolve","actor":"li.na","address":"10.0.0.1","at":"2026-04-01T09:00:00+00:00",'
    '"detail":"{\\"after\\":\\"resolved\\"}","source":"web","table":"audit_event","target":"al-1"}'
)
AUDIT_DIGEST = "3b918688900e732933697795561c4874085fffff42c23ea1bccb3a4f3a3e1cc8"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_message_digest_covers_its_columns_and_hits_in_the_documented_form() -> None:
    assert sha256(MESSAGE_FORM) == MESSAGE_DIGEST
    assert message_digest(MESSAGE, [HIT]) == MESSAGE_DIGEST


def test_flag_and_audit_digests_in_the_documented_form() -> None:
    assert sha256(FLAG_FORM) == FLAG_DIGEST
    assert flag_digest(FLAG) == FLAG_DIGEST
    assert sha256(AUDIT_FORM) == AUDIT_DIGEST
    assert audit_digest(AUDIT) == AUDIT_DIGEST


def test_times_are_compared_as_instants_and_naive_ones_are_utc() -> None:
    as_utc = (*MESSAGE[:10], datetime(2026, 4, 1, 9, 0, 0, 123456, tzinfo=UTC), *MESSAGE[11:])
    naive = (*MESSAGE[:10], datetime(2026, 4, 1, 9, 0, 0, 123456), *MESSAGE[11:])  # SQLite's
    assert message_digest(as_utc, [HIT]) == message_digest(naive, [HIT]) == MESSAGE_DIGEST


def test_hit_order_does_not_matter_but_every_hit_value_does() -> None:
    other = ("12315", "customer_risk", 3, 5, 10, "r1")
    assert message_digest(MESSAGE, [HIT, other]) == message_digest(MESSAGE, [other, HIT])
    assert message_digest(MESSAGE, [HIT, other]) != MESSAGE_DIGEST
    assert message_digest(MESSAGE, []) != MESSAGE_DIGEST
    assert message_digest(MESSAGE, [(*HIT[:3], 3, 4, "r1")]) != MESSAGE_DIGEST


def test_hit_extras_count_only_when_set() -> None:
    # Hits stored before revision 0004 (no via, no parts) keep the digest they were chained with.
    assert message_digest(MESSAGE, [(*HIT, None, None)]) == MESSAGE_DIGEST
    split = (*HIT, "split", '[{"dedupe_key":"m0","end":1,"start":0}]')
    assert message_digest(MESSAGE, [split]) != MESSAGE_DIGEST
    assert message_digest(MESSAGE, [(*HIT, "split", None)]) != message_digest(MESSAGE, [split])
    assert message_digest(MESSAGE, [(*HIT, "pinyin", None), split]) == message_digest(
        MESSAGE, [split, (*HIT, "pinyin", None)]
    )


@pytest.mark.parametrize("index", range(len(MESSAGE)))
def test_every_message_column_changes_the_digest(index: int) -> None:
    value = MESSAGE[index]
    changed = (
        value + timedelta(microseconds=1)
        if isinstance(value, datetime)
        else value + 1
        if isinstance(value, int)
        else "x"
        if value is None
        else None
    )
    assert message_digest((*MESSAGE[:index], changed, *MESSAGE[index + 1 :]), [HIT]) != (
        MESSAGE_DIGEST
    )


def test_entries_are_sorted_by_table_then_id_and_round_trip() -> None:
    entries = [
        Entry("message_flag", 3, FLAG_DIGEST),
        Entry("message", 12, MESSAGE_DIGEST),
        Entry("message", 2, MESSAGE_DIGEST),
    ]
    text = encode_entries(entries)
    assert text == f"m2:{MESSAGE_DIGEST} m12:{MESSAGE_DIGEST} f3:{FLAG_DIGEST}"
    assert decode_entries(text) == sorted(entries, key=lambda e: (e.table != "message", e.row_id))
    assert decode_entries(f"a7:{AUDIT_DIGEST}") == [Entry("audit_event", 7, AUDIT_DIGEST)]
    assert decode_entries("") == []


@pytest.mark.parametrize(
    "text",
    [
        f"x2:{MESSAGE_DIGEST}",  # no such table
        f"m:{MESSAGE_DIGEST}",  # no id
        f"m-2:{MESSAGE_DIGEST}",
        f"m２:{MESSAGE_DIGEST}",  # a full-width digit
        f"m2{MESSAGE_DIGEST}",  # no colon
        f"m2:{MESSAGE_DIGEST[:-1]}",  # short digest
        f"m2:{MESSAGE_DIGEST.upper()}",
        f"m2:{MESSAGE_DIGEST}  m3:{MESSAGE_DIGEST}",  # two spaces
    ],
)
def test_malformed_entries_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="malformed block entry"):
        decode_entries(text)


def test_block_hash_covers_chain_seq_previous_hash_time_and_entries() -> None:
    at = datetime(2026, 4, 1, 9, 0, 0, 5, tzinfo=UTC)
    entries = f"m2:{MESSAGE_DIGEST} f3:{FLAG_DIGEST}"
    header = f'[1,"archive",1,"{ZERO_HASH}","2026-04-01T09:00:00.000005+00:00","{entries}"]'
    expected = sha256(header)
    assert block_hash("archive", 1, ZERO_HASH, at, entries) == expected
    assert expected == "c7298c062329bd9c39b1f4a9fd6fe3741d58b15f59b1b76a6770f8e88e447e15"
    changed = [
        block_hash("audit", 1, ZERO_HASH, at, entries),
        block_hash("archive", 2, ZERO_HASH, at, entries),
        block_hash("archive", 1, "1" * 64, at, entries),
        block_hash("archive", 1, ZERO_HASH, at + timedelta(microseconds=1), entries),
        block_hash("archive", 1, ZERO_HASH, at, entries.replace("m2:", "m4:")),
    ]
    assert expected not in changed
    assert len(set(changed)) == len(changed)
