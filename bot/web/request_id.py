"""Each request's id, and the one log line a rejected request gets.

The id is the caller's ``X-Request-Id`` when it is sane (1-64 characters of letters, digits and
``._:+/=-``: a proxy's or WeCom-side gateway's id stays traceable end to end), else 16 new hex
digits. :func:`request_id_middleware` sends it back in the response's ``X-Request-Id`` header and
makes it :func:`current_request_id` for everything the handler calls; :func:`log_rejected` writes a
rejection line carrying it, rate-limited by the app's :data:`REJECTS`.

A handler that raises (a bug of ours) is logged once, with its traceback and the id, and answered
500; a client that went away mid-request is not a bug, and is left to the server to drop.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.log import RejectLog, server_log

__all__ = [
    "HEADER",
    "REJECTS",
    "current_request_id",
    "log_rejected",
    "new_request_id",
    "request_id_middleware",
]

HEADER = "X-Request-Id"
#: The app's rate limit on rejection lines (one per app, so apps never share windows).
REJECTS = web.AppKey("rejects", RejectLog)

_SANE_RE = re.compile(r"[A-Za-z0-9._:+/=\-]{1,64}")
# Each request runs in its own task, whose context is a copy: a value set here is seen only by
# this request's handler and the tasks it starts.
_current: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id() -> str:
    """16 random hex digits."""
    return os.urandom(8).hex()


def current_request_id() -> str:
    """The id of the request being handled, ``-`` outside one."""
    return _current.get()


def log_rejected(request: web.Request, logger: logging.Logger, status: int, reason: str) -> None:
    """One line for a rejected request: method, path, status, reason, remote address, request id.

    ``reason`` must come from our code (it is the rate limit's kind), never from request data.
    """
    request.app[REJECTS].rejected(
        logger,
        f"{request.method} {status} {reason}",
        "%s %s rejected %d: %s (from %s, request %s)",
        request.method,
        request.path,
        status,
        reason,
        request.remote,
        current_request_id(),
    )


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give the request its id and the response its ``X-Request-Id``; log a failing handler once."""
    given = request.headers.get(HEADER, "")
    request_id = given if _SANE_RE.fullmatch(given) else new_request_id()
    token = _current.set(request_id)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # an answer (404, 405, 413, ...), not a failure
        exc.headers[HEADER] = request_id
        raise
    except ConnectionError:  # the client went away: nothing to answer, nothing of ours broke
        raise
    except Exception:
        server_log.exception(
            "%s %s failed (from %s, request %s)",
            request.method,
            request.path,
            request.remote,
            request_id,
        )
        response = web.Response(status=500, text="internal error", content_type="text/plain")
    finally:
        _current.reset(token)
    if not response.prepared:
        response.headers[HEADER] = request_id
    return response
