"""How :class:`~wecom_sdk.client.WeComClient` reaches WeCom: one HTTP exchange per call.

:class:`AiohttpTransport` talks to the real API. Any object with a matching ``exchange`` (a
:class:`Transport`) can stand in for it, e.g. an in-process sandbox that answers like WeCom
without touching the network (httpx's ``MockTransport`` idea).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
from yarl import URL

from ..errors import ServiceUnavailable, TransportError

__all__ = ["AiohttpTransport", "Transport", "redact"]

_SECRET_QUERY = re.compile(r"((?:access_token|corpsecret|key)=)[^&\s'\"]*")


def redact(text: str) -> str:
    """Blank out access_token, corpsecret and robot key values in a URL or message."""
    return _SECRET_QUERY.sub(r"\1***", text)


class Transport(Protocol):
    """One request/answer exchange with the WeCom API.

    ``url`` carries the credential in its query (``access_token``, ``corpsecret`` or robot
    ``key``): an implementation must never put the query into an error, a log or a record.
    """

    async def exchange(self, method: str, url: URL, body: Mapping[str, Any] | None) -> object:
        """Send ``body`` as JSON (None: no body) and return the parsed JSON answer.

        Raises:
            ServiceUnavailable: network error, timeout or HTTP 5xx (the client retries these).
            TransportError: any other HTTP status, or an answer that is not JSON.
        """
        ...


class AiohttpTransport:
    """The real exchange over an ``aiohttp.ClientSession``.

    A session passed in is borrowed and never closed here; otherwise one is created on first use
    and closed by :meth:`close` (after which the next exchange creates a new one).
    """

    def __init__(
        self, session: aiohttp.ClientSession | None = None, *, timeout_s: float = 10.0
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def exchange(self, method: str, url: URL, body: Mapping[str, Any] | None) -> object:
        """One HTTP exchange; errors never show the query string (it holds token/secret/key)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        path = url.path
        try:
            async with self._session.request(method, url, json=body, timeout=self._timeout) as resp:
                if resp.status >= 500:
                    raise ServiceUnavailable(f"{path}: HTTP {resp.status}", path=path)
                if resp.status != 200:
                    raise TransportError(f"{path}: HTTP {resp.status}", path=path)
                try:
                    return await resp.json(content_type=None)
                except ValueError:
                    raise TransportError(f"{path}: answer is not JSON", path=path) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            # `from None`: the chained aiohttp error would carry the full URL with the token.
            why = redact(str(exc)) or type(exc).__name__
            raise ServiceUnavailable(f"{path}: {type(exc).__name__}: {why}", path=path) from None
