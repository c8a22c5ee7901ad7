"""Allow-list proposals in the database: propose, confirm, reject, list; each step audited.

Every write function is one unit of work for the group-commit writer and returns a refusal
(:class:`~monitor.review.transitions.ActionRefused`) rather than raising it. The audit rows use
the target ``allowlist:<group>`` and the actions ``allow_propose``, ``allow_confirm`` and
``allow_reject``; a confirmation's detail holds the rule file, the phrase, the file's sha256
before and after, and the backtest's counts, so the change is in the audit hash chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.review.proposal_models import PROPOSAL_LABELS, AllowProposalRecord, ProposalStatus
from monitor.review.transitions import ActionRefused

__all__ = [
    "Proposal",
    "ProposalDraft",
    "audit_target",
    "confirm_proposal",
    "list_proposals",
    "load_proposal",
    "propose",
    "reject_proposal",
]

_PROPOSALS: Table = AllowProposalRecord.__table__


@dataclass(frozen=True, slots=True)
class Proposal:
    """One row of ``allow_proposal``."""

    id: int
    rule_group: str
    phrase: str
    alert_id: str
    rule_file: str
    file_sha256: str
    counts: Mapping[str, Any]
    status: str
    proposed_by: str
    proposed_at: datetime
    decided_by: str
    decided_at: datetime | None
    comment: str
    sha256_after: str

    @property
    def status_label(self) -> str:
        return PROPOSAL_LABELS.get(self.status, self.status)

    @property
    def pending(self) -> bool:
        return self.status == ProposalStatus.PENDING


def audit_target(group: str) -> str:
    """The audit rows' target for a group's allow-list."""
    return f"allowlist:{group}"


def _proposal(row: Any) -> Proposal:
    return Proposal(
        id=int(row.id),
        rule_group=row.rule_group,
        phrase=row.phrase,
        alert_id=row.alert_id,
        rule_file=row.rule_file,
        file_sha256=row.file_sha256,
        counts=json.loads(row.backtest or "{}"),
        status=row.status,
        proposed_by=row.proposed_by,
        proposed_at=row.proposed_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        comment=row.comment,
        sha256_after=row.sha256_after,
    )


def load_proposal(conn: Connection, proposal_id: int) -> Proposal | None:
    row = conn.execute(select(_PROPOSALS).where(_PROPOSALS.c.id == proposal_id)).first()
    return None if row is None else _proposal(row)


def list_proposals(conn: Connection, *, decided: int = 50) -> tuple[list[Proposal], list[Proposal]]:
    """Every pending proposal (oldest first) and the ``decided`` latest decided ones."""
    pending = [
        _proposal(row)
        for row in conn.execute(
            select(_PROPOSALS)
            .where(_PROPOSALS.c.status == ProposalStatus.PENDING)
            .order_by(_PROPOSALS.c.id)
        )
    ]
    done = [
        _proposal(row)
        for row in conn.execute(
            select(_PROPOSALS)
            .where(_PROPOSALS.c.status != ProposalStatus.PENDING)
            .order_by(_PROPOSALS.c.id.desc())
            .limit(decided)
        )
    ]
    return pending, done


@dataclass(frozen=True, slots=True)
class ProposalDraft:
    """What a proposal or a confirmation is about, as the backtest page showed it."""

    group: str
    phrase: str
    alert_id: str
    rule_file: str
    file_sha256: str
    counts: Mapping[str, Any]


def propose(
    conn: Connection, draft: ProposalDraft, *, actor: str, now: datetime, address: str = ""
) -> int | ActionRefused:
    """Store a pending proposal (audited); refused when the same one is already pending."""
    same = conn.execute(
        select(_PROPOSALS.c.id).where(
            _PROPOSALS.c.rule_group == draft.group,
            _PROPOSALS.c.phrase == draft.phrase,
            _PROPOSALS.c.status == ProposalStatus.PENDING,
        )
    ).first()
    if same is not None:
        return ActionRefused("duplicate", "同样的白名单提议已在等待管理员审批")
    proposal_id = _insert(conn, draft, ProposalStatus.PENDING, actor, now)
    _audit(
        conn,
        "allow_propose",
        draft,
        actor=actor,
        now=now,
        address=address,
        extra={"proposal": proposal_id},
    )
    return proposal_id


def confirm_proposal(
    conn: Connection,
    draft: ProposalDraft,
    *,
    proposal_id: int | None,
    sha256_before: str,
    sha256_after: str,
    actor: str,
    now: datetime,
    address: str = "",
) -> int | ActionRefused:
    """Record that ``actor`` wrote ``draft.phrase`` into the rule file (audited): the pending
    proposal ``proposal_id`` becomes confirmed, or a confirmed row is stored for a direct one."""
    decided = {
        "status": ProposalStatus.CONFIRMED,
        "decided_by": actor,
        "decided_at": now,
        "sha256_after": sha256_after,
        "backtest": json.dumps(dict(draft.counts), sort_keys=True),
    }
    if proposal_id is not None:
        done = conn.execute(
            update(_PROPOSALS)
            .where(
                _PROPOSALS.c.id == proposal_id,
                _PROPOSALS.c.status == ProposalStatus.PENDING,
                _PROPOSALS.c.rule_group == draft.group,
                _PROPOSALS.c.phrase == draft.phrase,
            )
            .values(**decided)
        )
        if done.rowcount != 1:
            return ActionRefused("decided", "这条提议已被处理或与页面不符，请刷新后再试")
    else:
        proposal_id = _insert(conn, draft, ProposalStatus.PENDING, actor, now)
        conn.execute(update(_PROPOSALS).where(_PROPOSALS.c.id == proposal_id).values(**decided))
    extra = {"proposal": proposal_id, "sha256_before": sha256_before, "sha256_after": sha256_after}
    _audit(conn, "allow_confirm", draft, actor=actor, now=now, address=address, extra=extra)
    return proposal_id


def reject_proposal(
    conn: Connection,
    proposal_id: int,
    *,
    actor: str,
    comment: str,
    now: datetime,
    address: str = "",
) -> ActionRefused | None:
    """Reject a pending proposal (audited)."""
    found = load_proposal(conn, proposal_id)
    if found is None:
        return ActionRefused("not_found", "没有这条提议")
    done = conn.execute(
        update(_PROPOSALS)
        .where(_PROPOSALS.c.id == proposal_id, _PROPOSALS.c.status == ProposalStatus.PENDING)
        .values(
            status=ProposalStatus.REJECTED,
            decided_by=actor,
            decided_at=now,
            comment=comment.strip(),
        )
    )
    if done.rowcount != 1:
        return ActionRefused("decided", "这条提议已被处理")
    draft = ProposalDraft(
        found.rule_group,
        found.phrase,
        found.alert_id,
        found.rule_file,
        found.file_sha256,
        found.counts,
    )
    _audit(
        conn,
        "allow_reject",
        draft,
        actor=actor,
        now=now,
        address=address,
        extra={"proposal": proposal_id, "comment": comment.strip()},
    )
    return None


def _insert(conn: Connection, draft: ProposalDraft, status: str, actor: str, now: datetime) -> int:
    values = {
        "rule_group": draft.group,
        "phrase": draft.phrase,
        "alert_id": draft.alert_id,
        "rule_file": draft.rule_file,
        "file_sha256": draft.file_sha256,
        "backtest": json.dumps(dict(draft.counts), sort_keys=True),
        "status": status,
        "proposed_by": actor,
        "proposed_at": now,
        "decided_by": "",
        "decided_at": None,
        "comment": "",
        "sha256_after": "",
    }
    return int(conn.execute(insert(_PROPOSALS).returning(_PROPOSALS.c.id), values).scalar_one())


def _audit(
    conn: Connection,
    action: str,
    draft: ProposalDraft,
    *,
    actor: str,
    now: datetime,
    address: str,
    extra: Mapping[str, Any],
) -> None:
    detail = {
        "group": draft.group,
        "phrase": draft.phrase,
        "file": draft.rule_file,
        "file_sha256": draft.file_sha256,
        "alert_id": draft.alert_id,
        "backtest": dict(draft.counts),
        **extra,
    }
    record_audit_event(
        conn,
        AuditEvent(
            at=now,
            actor=actor,
            source="web",
            action=action,
            target=audit_target(draft.group),
            detail=detail,
            address=address,
        ),
    )
