"""What an API group needs from the client: :class:`Caller`, which ``WeComClient`` satisfies.

The groups (``message``, ``kf``, ``robot``) depend on this protocol rather than on the client
class, so the client module composes them without an import circle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from yarl import URL

__all__ = ["Caller"]


class Caller(Protocol):
    """The calls an API group makes through the client (errcode mapping, retries, token)."""

    @property
    def agent_id(self) -> int | None:
        """The app's AgentID, None when the client was built without one."""

    def url(self, path: str) -> URL:
        """Absolute URL of an API path relative to the client's ``api_base``."""

    async def call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """POST ``body`` (GET when None) to ``path`` with the access token."""

    async def request(
        self, url: URL, body: Mapping[str, Any] | None, *, auth: bool
    ) -> dict[str, Any]:
        """One call to ``url`` with retries; ``auth`` adds the access token."""
