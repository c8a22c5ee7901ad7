"""FakeWeCom: the WeCom emulator served over HTTP as an aiohttp application, for client tests.

Run it under ``aiohttp_server(fake.app)``; point the client at ``server.make_url("/cgi-bin/")``.
Requests are checked and answered by :class:`~wecom_sdk.testing.emulator.WeComEmulator` (errcodes
there and in the endpoint modules); ``kf_strict=True`` adds WeCom's 微信客服 rules
(:mod:`~wecom_sdk.testing.kf_endpoints`; off by default, so plain client tests can send
anything). Deliveries are in ``kf_deliveries``, refusals in ``kf_refused``; kf times use ``wall``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .emulator import CallHook, WeComEmulator
from .kf_endpoints import KF_OVER_LIMIT, KF_STATE_REFUSES
from .kf_items import kf_event, kf_text
from .records import Call, KfDelivery

__all__ = [
    "KF_OVER_LIMIT",
    "KF_STATE_REFUSES",
    "Call",
    "FakeWeCom",
    "KfDelivery",
    "kf_event",
    "kf_text",
]

BodyHook = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(eq=False)
class FakeWeCom(WeComEmulator):
    """The emulator with an HTTP front end; ``app`` is the aiohttp application.

    Times use ``clock`` (monotonic) for tokens and ``wall`` for the kf rules.
    """

    @property
    def app(self) -> web.Application:
        """A new aiohttp application answering ``/cgi-bin/…`` from this emulator."""
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/{path:.+}", self._serve)
        return app

    async def _serve(self, request: web.Request) -> web.Response:
        body = await request.read()
        reply = await self.handle(request.method, request.match_info["path"], request.query, body)
        if reply.json is None:
            return web.Response(status=reply.status, text=HTTPStatus(reply.status).phrase)
        return web.json_response(reply.json)

    def on_call(self, path: str, hook: BodyHook | None) -> None:
        """Await ``hook(body)`` after an accepted call to ``path`` is processed, before answering."""
        self.on_accepted(path, None if hook is None else _with_body(hook))

    # -- the state, by the names tests read -----------------------------------------------
    @property
    def token_fetches(self) -> int:
        """Successful ``gettoken`` calls."""
        return self.state.token_fetches

    @property
    def current_token(self) -> str | None:
        """The token ``gettoken`` hands out while it is valid."""
        return self.state.current_token

    @property
    def kf_deliveries(self) -> list[KfDelivery]:
        """kf messages delivered to customers, in order."""
        return self.state.kf_deliveries

    @property
    def kf_refused(self) -> list[tuple[str, int, dict[str, Any]]]:
        """kf sends the kf rules refused: (path, errcode, body)."""
        return self.state.kf_refused

    @property
    def kf_duplicates(self) -> int:
        """kf sends answered ok without delivering (msgid already delivered)."""
        return self.state.kf_duplicates

    @property
    def _tokens(self) -> dict[str, float]:
        return self.state.tokens

    @property
    def _states(self) -> dict[tuple[str, str], tuple[int, str]]:
        return self.state.sessions


def _with_body(hook: BodyHook) -> CallHook:
    async def on_call(call: Call) -> None:
        await hook(call.body)

    return on_call
