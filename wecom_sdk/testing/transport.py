"""EmulatorTransport: a :class:`~wecom_sdk.client.Transport` answered in process by the emulator.

Plugs into ``WeComClient(transport=...)``: the body goes through JSON text as on the wire, the
:class:`~wecom_sdk.testing.emulator.WeComEmulator` answers it, and HTTP errors become the
exceptions :class:`~wecom_sdk.client.AiohttpTransport` raises. Nothing touches the network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from yarl import URL

from ..errors import ServiceUnavailable, TransportError
from .emulator import WeComEmulator

__all__ = ["EmulatorTransport", "api_path"]


def api_path(url: URL) -> str:
    """The API path under ``/cgi-bin/`` (``"message/send"``), whatever the host; no query."""
    path = url.path
    _, sep, tail = path.partition("/cgi-bin/")
    return tail if sep else path.lstrip("/")


class EmulatorTransport:
    """One in-process exchange with ``emulator``; errors never show the query (credentials)."""

    def __init__(self, emulator: WeComEmulator) -> None:
        self.emulator = emulator

    async def exchange(self, method: str, url: URL, body: Mapping[str, Any] | None) -> object:
        """Answer as WeCom would; HTTP 5xx raises ServiceUnavailable, other errors TransportError."""
        text = None if body is None else json.dumps(body, ensure_ascii=False)
        reply = await self.emulator.handle(method, api_path(url), url.query, text)
        if reply.json is not None:
            return reply.json
        error = f"{url.path}: HTTP {reply.status}"
        if reply.status >= 500:
            raise ServiceUnavailable(error, path=url.path)
        raise TransportError(error, path=url.path)
