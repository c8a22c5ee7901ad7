"""The hash chain's pure core: canonical row forms, row digests, block entries and block hashes.

No I/O: :mod:`monitor.archive.chain_store` appends blocks, :mod:`monitor.archive.verify` checks
them; both compute every hash here, so writer and verifier cannot drift apart. The format (version
:data:`FORMAT`) is simple enough for an auditor to recompute with any sha256 tool:

- A row's **canonical form** is a JSON object, keys sorted, no spaces, non-ASCII characters as
  they are (UTF-8), datetimes as ISO 8601 in UTC (``2026-04-01T09:00:00.123456+00:00``; naive
  ones are UTC, as SQLite keeps them). It holds every column but the row id, plus ``"table"``; a
  message also holds its hits (``"hits"``: objects without ids, sorted), which commit with it.
- A row's **digest** is the sha256 (hex) of its canonical form.
- A block's **entries** are ``<code><row id>:<digest>`` for each of its rows, sorted by table then
  id, separated by single spaces (codes: ``m`` message, ``f`` message_flag, ``q``
  msgaudit_quarantine, ``a`` audit_event). A quarantined archive record's form holds the entry as
  pulled (:data:`QUARANTINE_FIELDS`), not its retry bookkeeping (attempts, reason, release), which
  changes by design.
- A block's **hash** is the sha256 (hex) of the JSON array ``[format, chain, seq, prev_hash,
  created_at, entries]``; ``prev_hash`` is the previous block's hash (:data:`ZERO_HASH` before
  block 1), so each hash covers every block before it.

Row ids are in the entries, not in the digests: a row's contents moved under another id then
still match a digest of its block, which is how the verifier tells rows reordered from rows
modified.

**Purge checkpoints.** ``archive purge`` (retention) deletes archive rows; each of its
transactions appends one *checkpoint block* to the archive chain, in the same transaction as the
deletions, whose entries text is::

    purge:<cutoff> -<code><row id>:<digest> -<code><row id>:<digest> ...

``<cutoff>`` is the retention cutoff (ISO 8601 UTC, as above): rows received before it were
eligible. Each ``-`` entry names one deleted row with the digest its own (earlier) block recorded
for it, sorted like ordinary entries. A checkpoint block is hashed and linked like any other
block, so changing, removing or inserting one breaks the chain. The verifier accepts a row's
absence only if a LATER checkpoint names exactly that row with exactly the digest its block
recorded, and it requires every checkpoint entry to have been used that way once: a checkpoint
naming a row that is still present, that no earlier block recorded with that digest, or that
another checkpoint named already, is reported (:func:`decode_checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "AUDIT_FIELDS",
    "CHAIN_TABLES",
    "CHECKPOINT_PREFIX",
    "FLAG_FIELDS",
    "FORMAT",
    "HIT_EXTRA_FIELDS",
    "HIT_FIELDS",
    "MESSAGE_FIELDS",
    "QUARANTINE_FIELDS",
    "TABLE_CODES",
    "ZERO_HASH",
    "Chain",
    "Checkpoint",
    "Entry",
    "audit_digest",
    "block_hash",
    "canonical",
    "decode_checkpoint",
    "decode_entries",
    "encode_checkpoint",
    "encode_entries",
    "flag_digest",
    "is_checkpoint",
    "message_digest",
    "quarantine_digest",
]

FORMAT = 1
"""Version of the canonical forms and block layout; part of every block hash."""

ZERO_HASH = "0" * 64
"""The previous hash of block 1, and the head of a chain without blocks."""


class Chain(StrEnum):
    """The two chains: what the archive stored, and what people and the system did."""

    ARCHIVE = "archive"
    """Messages (with their hits) and message flags (recalls, send failures)."""
    AUDIT = "audit"
    """The audit trail (``audit_event``)."""


MESSAGE_FIELDS = (
    "dedupe_key",
    "channel",
    "msg_type",
    "event",
    "from_user",
    "to_user",
    "agent_id",
    "create_time",
    "content",
    "raw",
    "received_at",
    "rules_version",
    "conversation_id",
    "direction",
)
"""The ``message`` columns in a message's canonical form (all but ``id``)."""
HIT_FIELDS = ("word", "rule_group", "severity", "span_start", "span_end", "rules_version")
"""The ``hit`` columns folded into its message's form (not ``id``, nor ``message_id``)."""
HIT_EXTRA_FIELDS = ("via", "parts")
"""``hit`` columns added later (revision 0004), after :data:`HIT_FIELDS` in a hit's values: in
the form only when set, so a hit without them has the form (and digest) it always had."""
FLAG_FIELDS = ("dedupe_key", "flag", "detail", "source_key", "created_at")
"""The ``message_flag`` columns in a flag's canonical form."""
QUARANTINE_FIELDS = (
    "seq",
    "msgid",
    "publickey_ver",
    "encrypt_random_key",
    "encrypt_chat_msg",
    "created_at",
)
"""The ``msgaudit_quarantine`` columns in a quarantined record's canonical form."""
AUDIT_FIELDS = ("at", "actor", "source", "action", "target", "detail", "address")
"""The ``audit_event`` columns in an audit row's canonical form."""

_HIT_KEYS = sorted((name, index) for index, name in enumerate((*HIT_FIELDS, *HIT_EXTRA_FIELDS)))

TABLE_CODES = {"message": "m", "message_flag": "f", "msgaudit_quarantine": "q", "audit_event": "a"}
"""Table name -> its one-letter code in block entries (the order entries are sorted in)."""
_TABLES = {code: table for table, code in TABLE_CODES.items()}
_ORDER = {table: index for index, table in enumerate(TABLE_CODES)}

CHAIN_TABLES: Mapping[Chain, tuple[str, ...]] = {
    Chain.ARCHIVE: ("message", "message_flag", "msgaudit_quarantine"),
    Chain.AUDIT: ("audit_event",),
}
"""The tables each chain covers (hits ride with their messages)."""

_HEX = frozenset("0123456789abcdef")


def _plain(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


# Keys are put in order here, not by sort_keys: that costs the encoder more than the rest of a
# digest (this runs once per stored message, on the writer thread).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def canonical(table: str, values: Mapping[str, Any]) -> bytes:
    """The canonical form of one row of ``table``: its column values (no id) as compact JSON.

    Nested objects (a message's hits) must already have their keys in sorted order.
    """
    form = {**values, "table": table}
    return _ENCODE(
        {key: _plain(v) if isinstance(v := form[key], datetime) else v for key in sorted(form)}
    ).encode("utf-8", "surrogatepass")  # a lone surrogate cannot be stored; it must not crash


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def message_digest(values: Sequence[Any], hits: Iterable[Sequence[Any]] = ()) -> str:
    """Digest of a message: ``values`` in :data:`MESSAGE_FIELDS` order, each hit's values in
    :data:`HIT_FIELDS` order, optionally followed by :data:`HIT_EXTRA_FIELDS` (any order of hits:
    they are sorted here)."""
    form: dict[str, Any] = dict(zip(MESSAGE_FIELDS, values, strict=True))
    plain = sorted(tuple("" if v is None else v for v in hit) for hit in hits)
    form["hits"] = [
        {  # keys in sorted order (_HIT_KEYS); extra fields only when set
            name: hit[index]
            for name, index in _HIT_KEYS
            if index < len(HIT_FIELDS) or (index < len(hit) and hit[index] != "")
        }
        for hit in plain  # plain values: ints and strings ("" for an unset extra field)
    ]
    return _digest(canonical("message", form))


def flag_digest(values: Sequence[Any]) -> str:
    """Digest of a message flag: ``values`` in :data:`FLAG_FIELDS` order."""
    return _digest(canonical("message_flag", dict(zip(FLAG_FIELDS, values, strict=True))))


def quarantine_digest(values: Sequence[Any]) -> str:
    """Digest of a quarantined record: ``values`` in :data:`QUARANTINE_FIELDS` order."""
    return _digest(
        canonical("msgaudit_quarantine", dict(zip(QUARANTINE_FIELDS, values, strict=True)))
    )


def audit_digest(values: Sequence[Any]) -> str:
    """Digest of an audit row: ``values`` in :data:`AUDIT_FIELDS` order."""
    return _digest(canonical("audit_event", dict(zip(AUDIT_FIELDS, values, strict=True))))


@dataclass(frozen=True, slots=True)
class Entry:
    """One row a block holds: its table, id and digest."""

    table: str
    row_id: int
    digest: str


def encode_entries(entries: Iterable[Entry]) -> str:
    """A block's entries as text: sorted by table then id (see the module docstring)."""
    ordered = sorted(entries, key=lambda e: (_ORDER[e.table], e.row_id))
    return " ".join(f"{TABLE_CODES[e.table]}{e.row_id}:{e.digest}" for e in ordered)


def decode_entries(text: str) -> list[Entry]:
    """The entries of a block, as :func:`encode_entries` wrote them.

    Raises:
        ValueError: ``text`` is not in that form (the block was tampered with).
    """
    entries: list[Entry] = []
    for item in text.split(" ") if text else ():
        ident, sep, digest = item.partition(":")
        table = _TABLES.get(ident[:1])
        number = ident[1:]
        if (
            not sep
            or table is None
            or not number.isascii()
            or not number.isdigit()
            or len(digest) != 64
            or not _HEX.issuperset(digest)
        ):
            raise ValueError(f"malformed block entry {item[:80]!r}")
        entries.append(Entry(table, int(number), digest))
    return entries


CHECKPOINT_PREFIX = "purge:"
"""How a checkpoint block's entries text starts (an ordinary block's starts with a table code)."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A purge checkpoint: the rows one purge transaction deleted, under one retention cutoff."""

    cutoff: datetime
    """Rows received before this (aware) instant were eligible for the purge."""
    purged: tuple[Entry, ...]
    """Each deleted row with the digest its own block recorded."""


def is_checkpoint(text: str) -> bool:
    """Whether a block's entries text is a purge checkpoint's."""
    return text.startswith(CHECKPOINT_PREFIX)


def encode_checkpoint(checkpoint: Checkpoint) -> str:
    """A checkpoint block's entries text (see the module docstring)."""
    if checkpoint.cutoff.tzinfo is None:
        raise ValueError("a checkpoint cutoff must be timezone-aware")
    rows = encode_entries(checkpoint.purged)
    parts = [CHECKPOINT_PREFIX + _plain(checkpoint.cutoff)]
    if rows:
        parts.extend("-" + item for item in rows.split(" "))
    return " ".join(parts)


def decode_checkpoint(text: str) -> Checkpoint:
    """The checkpoint :func:`encode_checkpoint` wrote as ``text``.

    Raises:
        ValueError: ``text`` is not a well-formed checkpoint (in the canonical form exactly).
    """
    head, _sep, rest = text.partition(" ")
    if not head.startswith(CHECKPOINT_PREFIX):
        raise ValueError("not a purge checkpoint")
    try:
        cutoff = datetime.fromisoformat(head.removeprefix(CHECKPOINT_PREFIX))
    except ValueError:
        raise ValueError("malformed checkpoint cutoff") from None
    items = rest.split(" ") if rest else []
    if cutoff.tzinfo is None or any(not item.startswith("-") for item in items):
        raise ValueError("malformed purge checkpoint")
    checkpoint = Checkpoint(cutoff, tuple(decode_entries(" ".join(i[1:] for i in items))))
    if len({(e.table, e.row_id) for e in checkpoint.purged}) != len(checkpoint.purged):
        raise ValueError("a row is named twice in one purge checkpoint")
    if encode_checkpoint(checkpoint) != text:  # one spelling only: sorted, no repeats, UTC
        raise ValueError("purge checkpoint not in canonical form")
    return checkpoint


def block_hash(chain: str, seq: int, prev_hash: str, created_at: datetime, entries: str) -> str:
    """The hash of block ``seq`` of ``chain``; ``entries`` as :func:`encode_entries` made them."""
    header = [FORMAT, chain, seq, prev_hash, _plain(created_at), entries]
    return _digest(_ENCODE(header).encode("utf-8"))
