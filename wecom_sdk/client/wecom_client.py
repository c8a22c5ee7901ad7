"""The WeCom API client: one transport, errcode mapping, bounded retries, token refresh.

API groups (``client.message``, ``client.appchat``, ``client.kf``, ``client.robot``,
``client.externalcontact``, ``client.user``) are thin classes over the
:class:`~wecom_sdk.client.caller.Caller` protocol, which :class:`WeComClient` satisfies.
Errcodes: https://developer.work.weixin.qq.com/document/path/90313.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import aiohttp
from yarl import URL

from ..errors import ApiError, ServiceUnavailable, TokenInvalid, TransportError, api_error
from .appchat import AppChatApi
from .externalcontact import ExternalContactApi
from .kf import KfApi
from .message import MessageApi
from .models import log
from .robot import RobotApi
from .token import MemoryTokenCache, TokenCache, TokenManager, token_key
from .transport import AiohttpTransport, Transport, redact
from .user import UserApi

__all__ = ["DEFAULT_API_BASE", "RetryPolicy", "WeComClient", "check_response", "redact"]

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"
_RETRY_ERRCODES = frozenset({-1, 45009, 45033})


def check_response(data: object, path: str) -> dict[str, Any]:
    """Return WeCom's JSON answer, or raise the typed error its errcode maps to."""
    if not isinstance(data, dict):
        raise TransportError(f"{path}: answer is not a JSON object", path=path)
    errcode = data.get("errcode", 0)
    if not isinstance(errcode, int):
        raise TransportError(f"{path}: errcode is not an integer", path=path)
    if errcode != 0:
        raise api_error(errcode, redact(str(data.get("errmsg", ""))), path)
    return data


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter: sleep ``random() * min(cap, base * 2**n)``.

    Attributes:
        attempts: Total tries per call (the token-invalid retry is extra, once).
        base_s / cap_s: Backoff for -1, 45033, network errors and HTTP 5xx.
        rate_limit_base_s / rate_limit_cap_s: Longer backoff for 45009 (frequency limit).
    """

    attempts: int = 3
    base_s: float = 0.5
    cap_s: float = 8.0
    rate_limit_base_s: float = 5.0
    rate_limit_cap_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be >= 1")

    def delay(self, attempt: int, errcode: int | None, rand: float) -> float:
        """Sleep before try ``attempt + 1`` (``attempt`` counts from 1)."""
        if errcode == 45009:
            return rand * min(self.rate_limit_cap_s, self.rate_limit_base_s * 2.0 ** (attempt - 1))
        return rand * min(self.cap_s, self.base_s * 2.0 ** (attempt - 1))


class WeComClient:
    """Async client of the WeCom server API for one app (corp_id + secret + agent_id).

    Use ``async with WeComClient(...) as client`` or call :meth:`close`. Calls go through
    ``transport`` (default: an :class:`AiohttpTransport` over ``session`` with ``timeout_s``); a
    session or transport passed in is not closed by the client.
    Tokens: https://developer.work.weixin.qq.com/document/path/91039.
    """

    def __init__(
        self,
        corp_id: str,
        secret: str,
        *,
        api_base: str = DEFAULT_API_BASE,
        agent_id: int | None = None,
        token_cache: TokenCache | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        transport: Transport | None = None,
    ) -> None:
        if transport is not None and session is not None:
            raise ValueError("give a session or a transport, not both")
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.api_base = URL(api_base if api_base.endswith("/") else api_base + "/")
        self._secret = secret
        self._owned: AiohttpTransport | None = None
        if transport is None:
            transport = self._owned = AiohttpTransport(session, timeout_s=timeout_s)
        self.transport: Transport = transport
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        cache = token_cache if token_cache is not None else MemoryTokenCache(clock=clock)
        self.tokens = TokenManager(self._fetch_token, cache, token_key(corp_id, secret))
        self.message = MessageApi(self)
        self.appchat = AppChatApi(self)
        self.kf = KfApi(self)
        self.robot = RobotApi(self)
        self.externalcontact = ExternalContactApi(self)
        self.user = UserApi(self)

    def __repr__(self) -> str:
        return f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the default transport's session if it created one (idempotent)."""
        if self._owned is not None:
            await self._owned.close()

    def url(self, path: str) -> URL:
        """Absolute URL of an API path relative to ``api_base`` (e.g. ``"message/send"``)."""
        return self.api_base.join(URL(path))

    async def call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST ``body`` (or GET when None) to ``path`` with the access token; see :meth:`request`."""
        return await self.request(self.url(path), body, auth=True)

    async def request(
        self, url: URL, body: Mapping[str, Any] | None, *, auth: bool
    ) -> dict[str, Any]:
        """One API call with retries: -1/45033/45009, network errors and HTTP 5xx are retried
        with backoff up to ``RetryPolicy.attempts``; 40014/42001 refresh the token and retry once;
        every other errcode raises at once.
        """
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            token = await self.tokens.get() if auth else None
            target = url.update_query(access_token=token) if token is not None else url
            try:
                return check_response(await self._send(target, body), url.path)
            except TokenInvalid as exc:
                if token is None or refreshed:
                    raise
                refreshed = True
                attempt -= 1  # the token retry is extra, not one of the backoff attempts
                dropped = await self.tokens.invalidate(token)
                log.warning(
                    "%s: errcode %s, refreshing token (dropped=%s)", url.path, exc.errcode, dropped
                )
            except ApiError as exc:
                if exc.errcode not in _RETRY_ERRCODES or attempt >= self._retry.attempts:
                    raise
                await self._backoff(url.path, attempt, exc.errcode, str(exc))
            except ServiceUnavailable as exc:
                if attempt >= self._retry.attempts:
                    raise
                await self._backoff(url.path, attempt, None, str(exc))

    async def _backoff(self, path: str, attempt: int, errcode: int | None, why: str) -> None:
        delay = self._retry.delay(attempt, errcode, self._rand())
        log.warning("%s: %s; retry %d in %.2fs", path, why, attempt, delay)
        await self._sleep(delay)

    async def _send(self, url: URL, body: Mapping[str, Any] | None) -> object:
        return await self.transport.exchange("GET" if body is None else "POST", url, body)

    async def _fetch_token(self) -> tuple[str, int]:
        """``GET gettoken`` once, outside the retry path (a failure surfaces to the caller)."""
        url = self.url("gettoken").with_query(corpid=self.corp_id, corpsecret=self._secret)
        data = check_response(await self._send(url, None), url.path)
        token, expires_in = data.get("access_token"), data.get("expires_in", 7200)
        if not isinstance(token, str) or not token or not isinstance(expires_in, int):
            raise TransportError(f"{url.path}: answer lacks access_token", path=url.path)
        return token, expires_in
