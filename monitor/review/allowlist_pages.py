"""The allow-list pages: learning from false positives.

- ``GET <path>/cases/{alert_id}/allow``: the offer after a 误报: each hit of the case with the
  phrase around it (``monitor.review.phrase``), editable, leading to the backtest.
- ``GET <path>/allowlist?group=&phrase=[&hit=][&alert=][&proposal=]``: the backtest over the
  whole archive (``monitor.review.allow_backtest``), then a form: an admin confirms (the rule file
  is changed), a reviewer submits the proposal for an admin.
- ``POST <path>/allowlist/propose``, ``POST <path>/allowlist/confirm`` (admins),
  ``GET <path>/admin/allowlist`` (admins: the proposals), ``POST
  <path>/admin/allowlist/{id}/reject`` (admins).

Every page that shows chat text is audited (the offer as a view of the conversation, the
backtest as ``allow_backtest``), and every change too (``monitor.review.allow_proposals``). A
confirmation re-runs the backtest (its counts go into the audit row), writes the rule file
(``monitor.review.rule_edit``: refused when it changed since the page showed its sha256), then
records it; if recording fails the file is put back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from monitor.alerts import store
from monitor.archive.audit import record_audit_event
from monitor.review.allow_backtest import Backtest, CaseHit, load_case_hits, load_hit, run_backtest
from monitor.review.allow_proposals import (
    Proposal,
    ProposalDraft,
    audit_target,
    confirm_proposal,
    list_proposals,
    load_proposal,
    propose,
    reject_proposal,
)
from monitor.review.auth import (
    client_address,
    current_reviewer,
    require_admin,
    services_of,
    web_audit_event,
)
from monitor.review.case_actions import record_view
from monitor.review.case_pages import conversation_url
from monitor.review.flash import Flash
from monitor.review.phrase import PhraseError, check_phrase, suggest_phrase
from monitor.review.render import render_page
from monitor.review.rule_edit import (
    RuleEditError,
    RuleFile,
    find_group_file,
    restore_rule_file,
    write_allow_phrase,
)
from monitor.review.services import read_in_thread
from monitor.review.transitions import ActionRefused

__all__ = ["add_allowlist_routes", "allowlist_url", "offer_url"]

T = TypeVar("T")

_DONE = {
    "allow_proposed": Flash("ok", "提议已提交，等待管理员审批"),
    "allow_confirmed": Flash("ok", "短语已加入白名单，规则文件已更新，各进程会在几秒内重新加载"),
    "allow_rejected": Flash("ok", "提议已驳回"),
}


def offer_url(base: str, alert_id: str) -> str:
    """The page offering allow-list phrases for a case's hits."""
    return f"{base}/cases/{alert_id}/allow"


def allowlist_url(base: str, **params: str | int) -> str:
    """The backtest page for ``group`` and ``phrase`` (and ``hit``, ``alert``, ``proposal``)."""
    query = {k: str(v) for k, v in params.items() if v not in ("", None)}
    return f"{base}/allowlist?{urlencode(query)}"


def add_allowlist_routes(app: web.Application) -> None:
    """Register the allow-list pages on the review sub-app."""
    app.router.add_get("/cases/{alert_id}/allow", offer_page)
    app.router.add_get("/allowlist", backtest_page)
    app.router.add_post("/allowlist/propose", propose_action)
    app.router.add_post("/allowlist/confirm", confirm_action)
    app.router.add_get("/admin/allowlist", admin_page)
    app.router.add_post("/admin/allowlist/{proposal_id:\\d+}/reject", reject_action)


def _flashes(request: web.Request) -> list[Flash]:
    found = _DONE.get(request.query.get("done", ""))
    return [found] if found is not None else []


def _rule_paths(request: web.Request) -> tuple[str, ...]:
    paths = services_of(request).settings.rule_paths
    if not paths:
        raise web.HTTPServiceUnavailable(
            text="没有配置规则文件路径（[rules] paths），无法修改白名单。"
        )
    return paths


# -- the offer ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Offer:
    """One hit of the case and the phrase suggested for it."""

    hit: CaseHit
    suggestion: str


async def offer_page(request: web.Request) -> web.Response:
    """``GET /review/cases/{alert_id}/allow``: each hit of the case with a suggested phrase."""
    services = services_of(request)
    alert_id = request.match_info["alert_id"]
    row, hits = await read_in_thread(
        services.engine,
        lambda conn: (store.load_alert(conn, alert_id), load_case_hits(conn, alert_id)),
    )
    if row is None:
        raise web.HTTPNotFound(text="案件不存在")
    reviewer = current_reviewer(request)
    now = services.clock()
    await services.writer.run(
        lambda conn: record_view(
            conn,
            row.conversation_id,
            actor=reviewer.username,
            now=now,
            address=client_address(request),
        )
    )
    offers = [
        Offer(hit, suggest_phrase(hit.content, hit.start, hit.end))
        for hit in hits
        if hit.via != "split" and 0 <= hit.start < hit.end <= len(hit.content)
    ]
    return render_page(
        request,
        "allowlist.html",
        {
            "mode": "offer",
            "alert_id": alert_id,
            "conversation": conversation_url(services.settings.path, row.conversation_id),
            "closed_as_false_positive": row.status == "false_positive",
            "offers": offers,
            "split_hits": sum(1 for h in hits if h.via == "split"),
            "flashes": _flashes(request),
        },
    )


# -- the backtest ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    """The backtest's parameters as a query or a form gives them."""

    group: str
    phrase: str
    hit_id: int | None
    alert_id: str
    proposal_id: int | None

    @classmethod
    def of(cls, values: Any) -> _Request:
        return cls(
            group=str(values.get("group", "")).strip(),
            phrase=str(values.get("phrase", "")),
            hit_id=_int(values.get("hit")),
            alert_id=str(values.get("alert", "")).strip(),
            proposal_id=_int(values.get("proposal")),
        )

    def params(self) -> dict[str, str | int]:
        return {
            "group": self.group,
            "phrase": self.phrase.strip(),
            "hit": self.hit_id or "",
            "alert": self.alert_id,
            "proposal": self.proposal_id or "",
        }


def _int(raw: object) -> int | None:
    try:
        return int(str(raw)) if raw not in (None, "") else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Checked:
    """A backtest request checked against the rule files and the archive."""

    want: _Request
    phrase: str
    rule_file: RuleFile | None
    hit: CaseHit | None
    proposal: Proposal | None
    error: str


async def _check(request: web.Request, want: _Request) -> _Checked:
    services = services_of(request)
    paths = _rule_paths(request)
    hit, proposal = await read_in_thread(
        services.engine,
        lambda conn: (
            load_hit(conn, want.hit_id) if want.hit_id is not None else None,
            load_proposal(conn, want.proposal_id) if want.proposal_id is not None else None,
        ),
    )
    if not want.group:
        return _Checked(want, want.phrase, None, hit, proposal, "请选择敏感词组")
    try:
        rule_file = await asyncio.to_thread(find_group_file, paths, want.group)
    except RuleEditError as exc:
        return _Checked(want, want.phrase, None, hit, proposal, exc.message)
    if hit is not None and hit.group != want.group:
        hit = None
    try:
        phrase = check_phrase(
            want.phrase, hit_text=hit.text if hit else "", existing=rule_file.group_allow
        )
    except PhraseError as exc:
        return _Checked(want, want.phrase, rule_file, hit, proposal, str(exc))
    return _Checked(want, phrase, rule_file, hit, proposal, "")


async def _backtest(request: web.Request, checked: _Checked) -> Backtest:
    rule_file = checked.rule_file
    assert rule_file is not None
    return await read_in_thread(
        services_of(request).engine,
        lambda conn: run_backtest(
            conn, checked.want.group, checked.phrase, current_allow=rule_file.group_allow
        ),
    )


async def _render_backtest(
    request: web.Request,
    checked: _Checked,
    *,
    error: str = "",
    status: int = 200,
) -> web.Response:
    services = services_of(request)
    reviewer = current_reviewer(request)
    result: Backtest | None = None
    if not checked.error and checked.rule_file is not None:
        result = await _backtest(request, checked)
        event = web_audit_event(
            request,
            "allow_backtest",
            actor=reviewer.username,
            target=audit_target(checked.want.group),
            detail={
                "phrase": checked.phrase,
                "counts": result.counts(),
                "conversations": sorted({e.conversation_id for e in result.examples}),
            },
        )
        await services.writer.run(lambda conn: record_audit_event(conn, event))
    base = services.settings.path
    flashes = _flashes(request)
    if error:
        flashes = [Flash("error", error)]
    return render_page(
        request,
        "allowlist.html",
        {
            "mode": "backtest",
            "want": checked.want,
            "phrase": checked.phrase,
            "rule_file": checked.rule_file,
            "hit": checked.hit,
            "hit_dropped": checked.hit.dropped_by(checked.phrase)
            if checked.hit is not None and not checked.error
            else None,
            "proposal": checked.proposal,
            "phrase_error": checked.error,
            "result": result,
            "conversation_url": lambda cid: conversation_url(base, cid),
            "offer": offer_url(base, checked.want.alert_id) if checked.want.alert_id else "",
            "reload_s": services.settings.rules_reload_s,
            "flashes": flashes,
        },
        status=status if not checked.error else 400,
    )


async def backtest_page(request: web.Request) -> web.Response:
    """``GET /review/allowlist``: what the phrase would have dropped, then propose or confirm."""
    want = _Request.of(request.query)
    return await _render_backtest(request, await _check(request, want))


def _draft(checked: _Checked, result: Backtest) -> ProposalDraft:
    rule_file = checked.rule_file
    assert rule_file is not None
    return ProposalDraft(
        group=checked.want.group,
        phrase=checked.phrase,
        alert_id=checked.want.alert_id,
        rule_file=str(rule_file.path),
        file_sha256=rule_file.sha256,
        counts=result.counts(),
    )


def _back_to(request: web.Request, want: _Request, done: str) -> web.HTTPSeeOther:
    base = services_of(request).settings.path
    return web.HTTPSeeOther(allowlist_url(base, **want.params(), done=done))


async def propose_action(request: web.Request) -> web.StreamResponse:
    """``POST /review/allowlist/propose``: a reviewer submits the phrase for an admin."""
    services = services_of(request)
    reviewer = current_reviewer(request)
    want = _Request.of(await request.post())
    checked = await _check(request, want)
    if checked.error:
        return await _render_backtest(request, checked)
    draft = _draft(checked, await _backtest(request, checked))
    now = services.clock()
    outcome = await services.writer.run(
        lambda conn: propose(
            conn, draft, actor=reviewer.username, now=now, address=client_address(request)
        )
    )
    if isinstance(outcome, ActionRefused):
        return await _render_backtest(request, checked, error=outcome.message, status=409)
    raise _back_to(request, want, "allow_proposed")


async def confirm_action(request: web.Request) -> web.StreamResponse:
    """``POST /review/allowlist/confirm`` (admins): write the phrase into the rule file."""
    admin = require_admin(request)
    services = services_of(request)
    form = await request.post()
    want = _Request.of(form)
    shown_sha = str(form.get("sha256", ""))
    checked = await _check(request, want)
    if checked.error:
        return await _render_backtest(request, checked)
    if checked.proposal is not None and not checked.proposal.pending:
        return await _render_backtest(request, checked, error="这条提议已被处理", status=409)
    result = await _backtest(request, checked)
    draft = _draft(checked, result)
    try:
        edit = await asyncio.to_thread(
            write_allow_phrase, _rule_paths(request), want.group, checked.phrase, shown_sha
        )
    except RuleEditError as exc:
        status = 409 if exc.code == "changed" else 400
        return await _render_backtest(request, checked, error=exc.message, status=status)
    now = services.clock()
    draft = ProposalDraft(
        draft.group, draft.phrase, draft.alert_id, str(edit.path), edit.sha256_before, draft.counts
    )
    try:
        outcome = await services.writer.run(
            lambda conn: confirm_proposal(
                conn,
                draft,
                proposal_id=want.proposal_id,
                sha256_before=edit.sha256_before,
                sha256_after=edit.sha256_after,
                actor=admin.username,
                now=now,
                address=client_address(request),
            )
        )
    except Exception:
        await asyncio.to_thread(restore_rule_file, edit)
        raise
    if isinstance(outcome, ActionRefused):
        await asyncio.to_thread(restore_rule_file, edit)
        return await _render_backtest(request, checked, error=outcome.message, status=409)
    raise web.HTTPSeeOther(f"{services.settings.path}/admin/allowlist?done=allow_confirmed")


# -- the admins' list -----------------------------------------------------------------------


async def admin_page(request: web.Request) -> web.Response:
    """``GET /review/admin/allowlist`` (admins): pending proposals and the latest decisions."""
    require_admin(request)
    services = services_of(request)
    pending, decided = await read_in_thread(services.engine, list_proposals)
    base = services.settings.path
    return render_page(
        request,
        "allowlist_admin.html",
        {
            "pending": pending,
            "decided": decided,
            "review_url": lambda p: allowlist_url(
                base, group=p.rule_group, phrase=p.phrase, alert=p.alert_id, proposal=p.id
            ),
            "flashes": _flashes(request),
        },
    )


async def reject_action(request: web.Request) -> web.StreamResponse:
    """``POST /review/admin/allowlist/{id}/reject`` (admins)."""
    admin = require_admin(request)
    services = services_of(request)
    proposal_id = int(request.match_info["proposal_id"])
    form = await request.post()
    comment = str(form.get("comment", ""))[:2000]
    now = services.clock()
    refused = await services.writer.run(
        lambda conn: reject_proposal(
            conn,
            proposal_id,
            actor=admin.username,
            comment=comment,
            now=now,
            address=client_address(request),
        )
    )
    if refused is not None:
        raise web.HTTPConflict(text=refused.message)
    raise web.HTTPSeeOther(f"{services.settings.path}/admin/allowlist?done=allow_rejected")
