"""``<path>/admin/holds``: legal holds, set and released by admins, every step audited.

- ``GET /admin/holds`` lists active and released holds (audited as ``hold_view``);
- ``POST /admin/holds`` sets a hold (``scope`` = ``conversation`` | ``staff``, ``value``, a
  required ``reason``), from this page or from the admin block of a conversation page;
- ``POST /admin/holds/{id}/release`` releases one (a required ``reason``).

Admins only (:func:`monitor.review.auth.require_admin`: a reviewer gets 403); the forms carry
the CSRF token (checked by the auth middleware). Setting and releasing write their audit rows in
the same transaction as the change (:mod:`monitor.archive.holds`). What a hold keeps from a
retention purge: ``docs/retention.md``.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import Connection

from monitor.archive.audit import record_audit_event
from monitor.archive.holds import Hold, HoldError, list_holds, release_hold, set_hold
from monitor.review.auth import (
    client_address,
    require_admin,
    services_of,
    settings_of,
    web_audit_event,
)
from monitor.review.flash import Flash
from monitor.review.pseudonyms import pseudonymiser_for
from monitor.review.render import render_page
from monitor.review.services import read_in_thread

__all__ = ["DONE", "add_hold_routes"]

DONE = {
    "hold_set": Flash("ok", "已设置法律保留：清理时将保留相关消息。"),
    "hold_released": Flash("ok", "已解除法律保留。"),
}
"""This page's ``?done=`` notices."""


async def _holds(request: web.Request) -> list[Hold]:
    return await read_in_thread(services_of(request).engine, list_holds)


async def _page(
    request: web.Request, *, error: HoldError | None = None, form: dict[str, str] | None = None
) -> web.Response:
    admin = require_admin(request)
    holds = await _holds(request)
    event = web_audit_event(request, "hold_view", actor=admin.username, target="legal_hold")
    await services_of(request).writer.run(lambda conn: record_audit_event(conn, event))
    done = DONE.get(request.query.get("done", ""))
    flashes = [Flash("error", error.message)] if error else ([done] if done else [])
    fields = {"scope": "", "value": "", "reason": "", "hold": "", **(form or {})}
    return render_page(
        request,
        "holds.html",
        {
            "active": [h for h in holds if h.active],
            "released": [h for h in holds if not h.active],
            "flashes": flashes,
            "form": fields,
            "error_hold": fields["hold"],
        },
        status=400 if error else 200,
    )


async def holds_page(request: web.Request) -> web.Response:
    """``GET /admin/holds``: the list, and a form to add one."""
    return await _page(request)


async def add_hold(request: web.Request) -> web.Response:
    """``POST /admin/holds``: put a conversation or a staff member under hold."""
    admin = require_admin(request)
    form = await request.post()
    values = {name: str(form.get(name, "")) for name in ("scope", "value", "reason")}
    if "value_ref" in form:  # a pseudonymised conversation page seals the conversation id
        privacy = await pseudonymiser_for(request)
        values["value"] = privacy.unseal(str(form["value_ref"])) or ""
    services = services_of(request)
    now = services.clock()
    address = client_address(request)

    def work(conn: Connection) -> HoldError | int:
        try:
            return set_hold(
                conn,
                scope=values["scope"],
                value=values["value"],
                reason=values["reason"],
                actor=admin.username,
                now=now,
                address=address,
            )
        except HoldError as refused:  # returned: a raising unit re-runs the writer's batch
            return refused

    outcome = await services.writer.run(work)
    if isinstance(outcome, HoldError):
        return await _page(request, error=outcome, form=values)
    raise web.HTTPSeeOther(f"{settings_of(request).path}/admin/holds?done=hold_set")


async def release(request: web.Request) -> web.Response:
    """``POST /admin/holds/{id}/release``: end a hold, with a reason."""
    admin = require_admin(request)
    try:
        hold_id = int(request.match_info["hold_id"])
    except ValueError:
        raise web.HTTPNotFound(text="没有这个保留") from None
    form = await request.post()
    reason = str(form.get("reason", ""))
    services = services_of(request)
    now = services.clock()
    address = client_address(request)

    def work(conn: Connection) -> HoldError | Hold:
        try:
            return release_hold(
                conn,
                hold_id,
                reason=reason,
                actor=admin.username,
                now=now,
                address=address,
            )
        except HoldError as refused:
            return refused

    outcome = await services.writer.run(work)
    if isinstance(outcome, HoldError):
        return await _page(request, error=outcome, form={"hold": str(hold_id), "reason": reason})
    raise web.HTTPSeeOther(f"{settings_of(request).path}/admin/holds?done=hold_released")


def add_hold_routes(app: web.Application) -> None:
    """Register the legal hold pages on the review sub-app."""
    app.router.add_get("/admin/holds", holds_page, name="review_admin_holds")
    app.router.add_post("/admin/holds", add_hold)
    app.router.add_post("/admin/holds/{hold_id}/release", release)
