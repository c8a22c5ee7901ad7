"""A channel-neutral chat message: what the kf puller and the archive adapter hand the pipeline."""

from __future__ import annotations

from dataclasses import dataclass

from rules.models import Audience

__all__ = ["ChatMessage"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """One message of a customer chat, channel-neutral.

    The attribute names match what the pipeline reads from a callback message (``dedupe_key``,
    ``msg_type``, ``from_user``, ``to_user``, ``create_time``, ``text``), so it runs through the
    very same stages.
    """

    channel: str
    dedupe_key: str
    conversation_id: str
    author: Audience
    #: Who wrote it: the external_userid of a customer, the userid of a servicer, "" for system.
    from_user: str
    #: The customer of the conversation (external_userid).
    customer_id: str
    #: The servicer of the conversation, when known (kf origin 5, or the session's servicer).
    staff_userid: str = ""
    #: The staff member's display name, when the channel could resolve it ("" otherwise).
    staff_name: str = ""
    customer_name: str = ""
    msg_type: str
    #: The text the rules inspect ("" for media and events).
    text: str = ""
    #: The item exactly as received (JSON text), archived verbatim.
    raw: str
    create_time: int
    #: The account it was written to/from (kf: the open_kfid).
    to_user: str = ""
    agent_id: str | None = None
    #: Event name for system events (kf: ``enter_session``, ``msg_send_fail``, ...).
    event: str | None = None
