"""The callback sealer: a WeCom callback POST as WeCom sends it to a self-built app.

The inner XML of a member's text message (wecom-protocol.md §3), encrypted and signed with
:class:`~wecom_sdk.crypto.MsgCrypto` (§1.3), wrapped in the ``<xml><ToUserName/><Encrypt/>
<AgentID/></xml>`` envelope (§1.2), with ``msg_signature``, ``timestamp`` and ``nonce`` for the
query. Used by the tests, ``bench/`` and ``run_bot.py simulate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from ..crypto import MsgCrypto
from ..xmlsafe import render_xml

__all__ = ["CallbackRequest", "CallbackSealer", "text_message_xml"]


def text_message_xml(
    content: str,
    msg_id: int,
    *,
    to_user: str,
    from_user: str,
    agent_id: int,
    create_time: int | None = None,
) -> bytes:
    """A member's text message, field for field as WeCom writes the inner XML (CreateTime now
    when not given)."""
    return render_xml(
        {
            "ToUserName": to_user,
            "FromUserName": from_user,
            "CreateTime": int(time.time()) if create_time is None else create_time,
            "MsgType": "text",
            "Content": content,
            "MsgId": msg_id,
            "AgentID": agent_id,
        }
    )


@dataclass(frozen=True, slots=True)
class CallbackRequest:
    """One sealed callback: the POST body, its query parameters, and the plaintext inside."""

    body: bytes
    query: dict[str, str]
    inner: bytes

    def target(self, path: str) -> str:
        """The request target, ``path?msg_signature=..&timestamp=..&nonce=..``."""
        return f"{path}?{urlencode(self.query)}"


class CallbackSealer:
    """Seals callbacks for one app.

    Args:
        crypto: The app's Token and EncodingAESKey, with the corp id as receive id (its
            ``random_bytes`` and ``clock`` decide the random prefix, nonce and timestamp).
        corp_id: The envelope's ``ToUserName`` and the messages' ``ToUserName``.
        agent_id: The app's AgentID (omitted from the envelope and 0 in messages when None).
    """

    def __init__(self, crypto: MsgCrypto, corp_id: str, agent_id: str | None) -> None:
        self.crypto = crypto
        self.corp_id = corp_id
        self.agent_id = agent_id

    def seal(
        self, inner: bytes, *, timestamp: str | None = None, nonce: str | None = None
    ) -> CallbackRequest:
        """Encrypt and sign ``inner`` (any bytes, valid XML or not) into a callback."""
        sealed = self.crypto.seal(inner, timestamp=timestamp, nonce=nonce)
        return CallbackRequest(
            sealed.callback_xml(self.corp_id, self.agent_id), sealed.query(), inner
        )

    def text_xml(
        self, content: str, msg_id: int, from_user: str, *, create_time: int | None = None
    ) -> bytes:
        """The inner XML of ``from_user``'s text message to this app."""
        return text_message_xml(
            content,
            msg_id,
            to_user=self.corp_id,
            from_user=from_user,
            agent_id=int(self.agent_id or 0),
            create_time=create_time,
        )

    def text(
        self,
        content: str,
        msg_id: int,
        from_user: str,
        *,
        create_time: int | None = None,
        timestamp: str | None = None,
        nonce: str | None = None,
    ) -> CallbackRequest:
        """A sealed text-message callback."""
        inner = self.text_xml(content, msg_id, from_user, create_time=create_time)
        return self.seal(inner, timestamp=timestamp, nonce=nonce)
