"""Deadlines on reading a request (its header block and its body), and the server that keeps them.

aiohttp bounds neither. Its keep-alive timer closes a connection only while it waits for a request,
counted from the accept or the end of the previous response, and that is also how long an idle
kept-alive connection may stay (75 s under ``web.run_app``, to outlive a reverse proxy's own pool);
nothing bounds a body, whose read waits as long as bytes keep coming. So a client sending a byte a
second holds a connection for 75 s in its headers, and for ever in its body.

:class:`LimitedRequestHandler` is aiohttp's ``RequestHandler`` with two timers:

- headers: from the accept, or from the first byte of a later request on a kept-alive connection,
  the header block must be complete within ``header_timeout_s``; else the connection is answered
  408 (if any byte came) and closed. An idle kept-alive connection is left to the keep-alive timer,
  so a proxy's pooled connections are not cut short.
- body: from the end of the header block, the body must be complete within ``body_timeout_s``;
  else its reader gets :class:`RequestBodyTimeout` (a ``TimeoutError``; the callback answers 408)
  and the connection is closed after that answer. Failing the read instead of closing the socket
  lets the handler answer and log the request; closing would not stop the handler anyway
  (``handler_cancellation`` is off, as in ``web.run_app``).

Each is one exact ``call_at`` deadline, set once per request (so no rounding up to whole seconds,
as aiohttp's ``timeout_ceil_threshold`` does for its frequently re-armed timeouts). Malformed HTTP (a bad request line,
oversized headers) is answered 400 with one rate-limited line instead of aiohttp's traceback per
request; tracebacks stay for errors of ours.

The subclass relies on two attributes of aiohttp 3.14's ``RequestHandler``: ``_messages`` (parsed
requests not yet handled, appended by ``data_received``) and ``_request_in_progress``;
``tests/e2e/test_slow_clients.py`` drives real slow clients through ``run_bot.py serve`` and
fails if an aiohttp upgrade changes them.

:class:`LimitedAppRunner` builds the server out of these handlers; :func:`run_app` is
``web.run_app`` for one TCP site with it.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from bot.config import ServerConfig
from bot.log import RejectLog, server_log
from bot.web.request_id import HEADER, new_request_id

__all__ = [
    "LimitedAppRunner",
    "LimitedRequestHandler",
    "LimitedServer",
    "ReadLimits",
    "RequestBodyTimeout",
    "run_app",
]


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How long a client may take to send a request (``[server]`` header/body_timeout_s)."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0

    @classmethod
    def of(cls, server: ServerConfig) -> ReadLimits:
        return cls(server.header_timeout_s, server.body_timeout_s)


class RequestBodyTimeout(TimeoutError):
    """The request body was not complete within its deadline: raised by the body's reads."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"request body not received within {timeout_s:g} s")
        self.timeout_s = timeout_s


class LimitedRequestHandler(RequestHandler):
    """One HTTP connection, with deadlines on reading each request's headers and body."""

    __slots__ = (
        "_body",
        "_body_deadline",
        "_header_bytes",
        "_header_deadline",
        "_limits",
        "_rejects",
    )

    def __init__(
        self, manager: web.Server, *, limits: ReadLimits, rejects: RejectLog, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._limits = limits
        self._rejects = rejects
        self._header_deadline: asyncio.TimerHandle | None = None
        #: Some bytes of the request whose header block is awaited have arrived.
        self._header_bytes = False
        #: The body being received, while its deadline runs.
        self._body: StreamReader | None = None
        self._body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_header_deadline()

    def data_received(self, data: bytes) -> None:
        if data and self._body is None:
            self._header_bytes = True
            if self._header_deadline is None:
                # The first byte of a later request on a kept-alive connection.
                self._start_header_deadline()
        parsed = len(self._messages)
        super().data_received(data)
        if self._body is not None and self._body.is_eof():
            self._stop_body_deadline()
        if len(self._messages) > parsed:  # a header block is complete
            self._stop_header_deadline()
            payload = self._messages[-1][1]
            if not payload.is_eof():
                self._start_body_deadline(payload)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._stop_header_deadline()
        self._stop_body_deadline()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A malformed request is one rejection line, a vanished client a debug line; the rest
        (errors of ours) keep aiohttp's traceback."""
        request_id = new_request_id()
        if isinstance(exc, ConnectionError):
            server_log.debug("client went away (request %s)", request_id)
        elif status < 500:
            self._rejects.rejected(
                server_log,
                f"{status} malformed HTTP ({type(exc).__name__})",
                "rejected %d: malformed HTTP request (%s) (from %s, request %s)",
                status,
                type(exc).__name__,
                request.remote,
                request_id,
            )
        else:
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:  # as aiohttp: no second response on a started one
            raise ConnectionError("response already started")
        response = web.Response(
            status=status, text=message or HTTPStatus(status).phrase, content_type="text/plain"
        )
        response.headers[HEADER] = request_id
        response.force_close()
        return response

    def _start_header_deadline(self) -> None:
        self._header_deadline = self._loop.call_at(
            self._loop.time() + self._limits.header_timeout_s, self._headers_timed_out
        )

    def _stop_header_deadline(self) -> None:
        self._header_bytes = False
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _start_body_deadline(self, payload: StreamReader) -> None:
        self._body = payload
        self._body_deadline = self._loop.call_at(
            self._loop.time() + self._limits.body_timeout_s, self._body_timed_out
        )

    def _stop_body_deadline(self) -> None:
        self._body = None
        if self._body_deadline is not None:
            self._body_deadline.cancel()
            self._body_deadline = None

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        if self.transport is None:
            return
        request_id = new_request_id()
        if self._header_bytes:
            self._rejects.rejected(
                server_log,
                "408 header timeout",
                "rejected 408: request headers not received within %g s (from %s, request %s)",
                self._limits.header_timeout_s,
                _host(self.peername),
                request_id,
            )
        else:
            server_log.debug("closing a connection that sent nothing (request %s)", request_id)
        if self._request_in_progress or self._messages:
            # Pipelining: an earlier request on this connection is still being answered. Let that
            # answer go out, then close instead of waiting for these headers.
            self.close()
            return
        if self._header_bytes:
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n"
                + f"{HEADER}: {request_id}\r\n\r\n".encode("ascii")
            )
        self.force_close()

    def _body_timed_out(self) -> None:
        payload, self._body, self._body_deadline = self._body, None, None
        if payload is None or payload.is_eof() or self.transport is None:
            return
        self.close()  # the rest of this body is never read: no further request on the connection
        payload.set_exception(RequestBodyTimeout(self._limits.body_timeout_s))


def _host(peername: object) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername)


class LimitedServer(web.Server):
    """aiohttp's low-level server, making :class:`LimitedRequestHandler` connections."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: ReadLimits,
        rejects: RejectLog,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.rejects = rejects

    def __call__(self) -> RequestHandler:
        # web.Server.__call__ with the subclass; _kwargs are the handler options it was given.
        return LimitedRequestHandler(
            self, loop=self._loop, limits=self.limits, rejects=self.rejects, **self._kwargs
        )


class LimitedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server keeps :class:`ReadLimits`.

    Args:
        app: The application.
        limits: The read deadlines.
        rejects: Rate limit of the server's rejection lines (malformed HTTP, header timeouts);
            a new default one when None. The app's own rejections have the app's.
        kwargs: As ``web.AppRunner``.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        limits: ReadLimits,
        rejects: RejectLog | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits
        self.rejects = rejects or RejectLog()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()  # starts the app and collects the handler options
        return LimitedServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=asyncio.get_running_loop(),
            limits=self.limits,
            rejects=self.rejects,
            **server._kwargs,
        )


def run_app(
    app: web.Application,
    *,
    limits: ReadLimits,
    host: str,
    port: int,
    loop: asyncio.AbstractEventLoop,
    reuse_port: bool = False,
    shutdown_timeout: float = 60.0,
    keepalive_timeout: float = 75.0,
    access_log: logging.Logger | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until SIGINT or SIGTERM, as ``web.run_app`` does.

    The same life cycle: a signal stops accepting, in-flight requests get ``shutdown_timeout``
    seconds, the app's cleanup runs, then leftover tasks are cancelled and ``loop`` is closed.
    """

    async def serve() -> None:
        runner = LimitedAppRunner(
            app,
            limits=limits,
            handle_signals=True,
            shutdown_timeout=shutdown_timeout,
            keepalive_timeout=keepalive_timeout,
            access_log=access_log,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    main = loop.create_task(serve())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception while shutting down",
                    "exception": task.exception(),
                    "task": task,
                }
            )
