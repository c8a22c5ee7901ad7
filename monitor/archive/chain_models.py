"""The hash chain's tables: the blocks, one lock row per chain, and the daily anchor claims.

How blocks are made and hashed: :mod:`monitor.archive.chain`; appended by
:mod:`monitor.archive.chain_store`, checked by :mod:`monitor.archive.verify`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = ["ChainAnchorRecord", "ChainBlockRecord", "ChainLockRecord"]


class ChainBlockRecord(TableModel, table=True):
    """One block: the rows one transaction committed to a chain, and the hash linking it."""

    __tablename__ = "chain_block"

    chain: str = Field(primary_key=True, max_length=16)
    """``archive`` or ``audit`` (:class:`monitor.archive.chain.Chain`)."""
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    """1, 2, 3, ... within its chain."""
    prev_hash: str = Field(max_length=64)
    block_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    entries: str = Field(sa_type=Text)
    """``<code><row id>:<digest>`` per row, space-separated (:func:`~monitor.archive.chain.encode_entries`)."""


class ChainLockRecord(TableModel, table=True):
    """One row per chain, locked (PostgreSQL ``SELECT ... FOR UPDATE``) by each block append, so
    appends to a chain are serialised while the rest of each transaction runs concurrently. A
    chain's head is its last block; this row holds nothing else (SQLite needs no row lock: its
    writer holds the database's write lock)."""

    __tablename__ = "chain_lock"

    chain: str = Field(primary_key=True, max_length=16)


class ChainAnchorRecord(TableModel, table=True):
    """The daily post of the chain heads to a WeCom group chat: one row per (UTC) day.

    A worker claims the day with a lease before posting, so one worker posts; ``posted_at`` is set
    once WeCom accepted the post (its audit row holds the heads posted).
    """

    __tablename__ = "chain_anchor"

    day: str = Field(primary_key=True, max_length=10)
    """``YYYY-MM-DD`` (UTC)."""
    owner: str = Field(default="", max_length=64)
    lease_until: datetime = Field(sa_type=UTCDateTime)
    posted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
