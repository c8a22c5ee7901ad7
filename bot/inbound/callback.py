"""WeCom's callback endpoint: GET verifies the URL, POST receives messages and events.

POST: bounded body (size, and the read time of ``[server].body_timeout_s``) -> ``Encrypt`` taken by a
flat scan of the envelope -> signature (constant time) + timestamp window -> decrypt -> parse (no
DTD/entities, bounded depth and size) -> pipeline (dedupe, durable archive, router) -> sealed passive
reply or an empty 200.

Bad input is a 4xx with one rate-limited log line (``log_rejected``: reason, remote address,
request id), without secrets, chat text or a traceback; the server stays healthy. A storage
failure is a 503 so that WeCom retries (the no-data-loss rule).
"""

from __future__ import annotations

import time

from aiohttp import web

from bot.inbound.context import ChannelFacts, Context
from bot.inbound.reply_step import seal_reply
from bot.log import callback_log
from bot.web.keys import CONFIG, CRYPTO, METRICS, PIPELINE, SERVICES
from bot.web.limits import RequestBodyTimeout
from bot.web.request_id import current_request_id, log_rejected
from monitor.errors import StorageError
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.errors import (
    CryptoError,
    DecryptError,
    ReceiveIdError,
    SignatureError,
    TimestampError,
    XmlError,
)
from wecom_sdk.messages.callback import Message, parse

__all__ = ["app_facts", "handle_callback_get", "handle_callback_post"]

_TEXT_PLAIN = "text/plain"


def _status_for(exc: CryptoError | XmlError) -> int:
    # Forgery / replay / another corp's traffic are 403; garbage that is merely broken is 400.
    if isinstance(exc, SignatureError | TimestampError | ReceiveIdError):
        return 403
    return 400


def _reject(request: web.Request, method: str, status: int, reason: str) -> web.Response:
    request.app[METRICS].callbacks.labels(method, f"rejected_{status}").inc()
    log_rejected(request, callback_log, status, reason)
    response = web.Response(status=status, text=reason, content_type=_TEXT_PLAIN)
    if status == 408:  # the rest of the body is not read: this connection cannot carry another
        response.force_close()
    return response


def _required_params(request: web.Request, names: tuple[str, ...]) -> dict[str, str] | str:
    # request.query decodes percent-escapes exactly once; never unquote again (protocol doc §1.1).
    missing = [n for n in names if not request.query.get(n)]
    if missing:
        return f"missing query parameter(s): {', '.join(missing)}"
    return {n: request.query[n] for n in names}


async def handle_callback_get(request: web.Request) -> web.Response:
    """URL verification: answer the decrypted echostr as bare text (WeCom allows 1 s)."""
    params = _required_params(request, ("msg_signature", "timestamp", "nonce", "echostr"))
    if isinstance(params, str):
        return _reject(request, "GET", 400, params)
    try:
        plain = request.app[CRYPTO].verify_url(
            params["msg_signature"], params["timestamp"], params["nonce"], params["echostr"]
        )
    except (CryptoError, XmlError) as exc:
        return _reject(request, "GET", _status_for(exc), _describe(exc))
    request.app[METRICS].callbacks.labels("GET", "verified").inc()
    callback_log.info("URL verification passed (from %s)", request.remote)
    return web.Response(text=plain, content_type=_TEXT_PLAIN)


def _describe(exc: CryptoError | XmlError) -> str:
    kind = {
        SignatureError: "bad signature",
        TimestampError: "timestamp outside the allowed window",
        ReceiveIdError: "message is for another corp (receiveid mismatch)",
        DecryptError: "cannot decrypt",
        XmlError: "malformed XML",
    }
    for cls, text in kind.items():
        if isinstance(exc, cls):
            return f"{text} (errcode {exc.errcode})"
    return f"invalid callback (errcode {exc.errcode})"


def app_facts(msg: Message, raw: str) -> ChannelFacts:
    """What an app callback says about ``msg``: a member writing to the app, answered passively.

    Each member is one conversation, and the customer of it.
    """
    return ChannelFacts(
        channel="app",
        raw=raw,
        passive_reply=True,
        conversation_id=f"app:{msg.from_user}",
        customer_id=msg.from_user,
    )


async def handle_callback_post(request: web.Request) -> web.Response:
    """Receive one pushed message or event; answer only after it is durably stored."""
    started = time.perf_counter()
    latency = request.app[METRICS].post.latency
    try:
        return await _post(request)
    finally:
        latency.observe(time.perf_counter() - started)


class _Rejected(Exception):
    """Bad input: answered with ``status`` and logged once by ``_post``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _Rejected(413, f"body larger than {limit} bytes")
    try:
        # client_max_size (= the same limit) also bounds chunked bodies that declare no length.
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise _Rejected(413, f"body larger than {limit} bytes") from None
    except RequestBodyTimeout as exc:
        raise _Rejected(408, str(exc)) from None


def _open(crypto: MsgCrypto, params: dict[str, str], body: bytes) -> tuple[Message, str]:
    try:
        plain = crypto.open_envelope(
            params["msg_signature"], params["timestamp"], params["nonce"], body
        )
        return parse(plain), plain.decode("utf-8")
    except (CryptoError, XmlError) as exc:
        raise _Rejected(_status_for(exc), _describe(exc)) from None
    except UnicodeDecodeError:
        raise _Rejected(400, "decrypted message is not UTF-8") from None


async def _post(request: web.Request) -> web.Response:
    app = request.app
    params = _required_params(request, ("msg_signature", "timestamp", "nonce"))
    try:
        if isinstance(params, str):
            raise _Rejected(400, params)
        body = await _read_body(request, app[CONFIG].server.max_body_bytes)
        msg, raw = _open(app[CRYPTO], params, body)
    except _Rejected as rejected:
        return _reject(request, "POST", rejected.status, rejected.reason)

    ctx = Context(app_facts(msg, raw), app[SERVICES])
    try:
        result = await app[PIPELINE](msg, ctx)
    except StorageError as exc:
        app[METRICS].callbacks.labels("POST", "storage_failed").inc()
        callback_log.error(
            "storage failed, answering 503 so WeCom retries (request %s): %s",
            current_request_id(),
            exc,
        )
        return web.Response(status=503, text="storage unavailable", content_type=_TEXT_PLAIN)
    except Exception:
        # A bug of ours: nothing is acknowledged, so WeCom's retry gets another chance (a fixed
        # deployment, a transient cause); 503 rather than aiohttp's bare 500.
        app[METRICS].callbacks.labels("POST", "internal_error").inc()
        callback_log.exception(
            "callback failed before it was stored; answering 503 (request %s)",
            current_request_id(),
        )
        return web.Response(status=503, text="temporarily unavailable", content_type=_TEXT_PLAIN)

    sealed = seal_reply(
        result, msg, app[CRYPTO], timestamp=params["timestamp"], nonce=params["nonce"]
    )
    if sealed is None:
        app[METRICS].post.stored.inc()
        return web.Response(status=200)
    app[METRICS].post.replied.inc()
    return web.Response(body=sealed, content_type="text/xml", charset="utf-8")
