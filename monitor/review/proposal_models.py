"""The allow-list proposals table: a reviewer's 误报 turned into a proposed rule change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field

from monitor.tables import TableModel, UTCDateTime

__all__ = ["PROPOSAL_LABELS", "AllowProposalRecord", "ProposalStatus"]


class ProposalStatus:
    """Life of a proposal (plain constants: stored as text)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


PROPOSAL_LABELS = {
    ProposalStatus.PENDING: "待审批",
    ProposalStatus.CONFIRMED: "已加入白名单",
    ProposalStatus.REJECTED: "已驳回",
}


class AllowProposalRecord(TableModel, table=True):
    """A phrase proposed for a group's allow-list; an admin confirms (writes the rule file) or
    rejects it. Every step is also an audit row."""

    __tablename__ = "allow_proposal"

    id: int | None = Field(default=None, primary_key=True)
    rule_group: str
    phrase: str
    alert_id: str = Field(default="", max_length=128)
    """The case it came from ("" when proposed from the backtest page alone)."""
    rule_file: str = Field(sa_type=Text)
    """The rule file that defines the group, as the backtest found it."""
    file_sha256: str = Field(max_length=64)
    """The file's sha256 when the backtest was shown."""
    backtest: str = Field(default="{}", sa_type=Text)
    """JSON: the backtest's counts when proposed (``Backtest.counts``)."""
    status: str = Field(index=True)
    proposed_by: str = Field(max_length=64)
    proposed_at: datetime = Field(sa_type=UTCDateTime)
    decided_by: str = Field(default="", max_length=64)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    comment: str = Field(default="", sa_type=Text)
    """Why it was rejected (optional)."""
    sha256_after: str = Field(default="", max_length=64)
    """The rule file's sha256 after the phrase was written (confirmed proposals)."""
