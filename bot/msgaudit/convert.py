"""A decrypted archive record as the pipeline's channel-neutral :class:`ChatMessage`.

Who wrote it decides the audience (design.md §3): an external id (``wm…``, ``wo…``) is a customer,
a member userid is staff; records without an author's words (agree/disagree, switch) are system
records and carry no text. Conversations:

- a group chat (``roomid``) is one conversation, ``ma:room:<roomid>``, whoever writes;
- a 1:1 chat is the pair of the staff member and the customer: ``ma:<staff>:<customer>``, the
  same whichever of them writes; a chat between two members is ``ma:<a>:<b>`` (sorted), with no
  customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.inbound.chat_message import ChatMessage
from rules.models import Audience
from wecom_sdk.messages.msgaudit import (
    ArchiveAgree,
    ArchiveRecord,
    ArchiveSwitch,
    is_external_id,
)

__all__ = ["CHANNEL", "Parties", "conversation_of", "parties_of", "to_chat_message"]

CHANNEL = "msgaudit"


@dataclass(frozen=True, slots=True)
class Parties:
    """Who a record is between: its staff member and customer ("" when there is none)."""

    conversation_id: str
    staff_userid: str
    customer_id: str


def _first(ids: list[str], external: bool) -> str:
    return next((i for i in ids if i and is_external_id(i) is external), "")


def parties_of(record: ArchiveRecord) -> Parties:
    """The conversation of a record and the staff member and customer it concerns."""
    sender = record.from_user
    people = [sender, *record.tolist]
    if record.roomid:
        return Parties(
            f"ma:room:{record.roomid}",
            sender if sender and not is_external_id(sender) else "",
            sender if sender and is_external_id(sender) else "",
        )
    staff, customer = _first(people, external=False), _first(people, external=True)
    if customer:
        return Parties(f"ma:{staff}:{customer}", staff, customer)
    members = sorted({p for p in people if p})
    return Parties("ma:" + ":".join(members[:2]), staff, "")


def conversation_of(record: ArchiveRecord) -> str:
    """The conversation id of a record (see the module docstring)."""
    return parties_of(record).conversation_id


def _author(record: ArchiveRecord) -> Audience:
    if isinstance(record, ArchiveAgree | ArchiveSwitch) or not record.from_user:
        return Audience.ANY
    return Audience.CUSTOMER if is_external_id(record.from_user) else Audience.STAFF


def to_chat_message(
    record: ArchiveRecord,
    parties: Parties | None = None,
    *,
    customer_name: str = "",
    staff_name: str = "",
) -> ChatMessage:
    """The chat message for one record; the names as the contact APIs know them.

    ``parties`` is :func:`parties_of` the record, when the caller has it already.
    """
    parties = parties or parties_of(record)
    author = _author(record)
    return ChatMessage(
        channel=CHANNEL,
        dedupe_key=record.dedupe_key,
        conversation_id=parties.conversation_id,
        author=author,
        from_user=record.from_user,
        customer_id=parties.customer_id,
        staff_userid=parties.staff_userid,
        staff_name=staff_name,
        customer_name=customer_name,
        msg_type=record.msg_type,
        # System records carry no words to inspect; the rules never see their fields.
        text=record.text if author is not Audience.ANY else "",
        raw=record.raw_json,
        create_time=record.create_time,
        to_user=(record.roomid or ",".join(record.tolist))[:512],
        event=record.action if record.action != "send" else None,
    )
