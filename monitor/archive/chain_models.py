"""The hash chain's tables: the blocks, one head row per chain, and the daily anchor claims.

How blocks are made and hashed: :mod:`monitor.archive.chain`; appended by
:mod:`monitor.archive.chain_store`, checked by :mod:`monitor.archive.verify`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field

from monitor.archive.chain import ZERO_HASH
from monitor.tables import TableModel, UTCDateTime

__all__ = ["ChainAnchorRecord", "ChainBlockRecord", "ChainHeadRecord"]


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


class ChainHeadRecord(TableModel, table=True):
    """The latest block of a chain. Appends lock this row, so they are serialised per chain while
    the rest of each transaction runs concurrently."""

    __tablename__ = "chain_head"

    chain: str = Field(primary_key=True, max_length=16)
    seq: int = 0
    """The latest block's seq (0: no block yet)."""
    block_hash: str = Field(default=ZERO_HASH, max_length=64)


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
