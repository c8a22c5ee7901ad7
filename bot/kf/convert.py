"""A pulled kf item as the pipeline's channel-neutral :class:`~bot.inbound.chat_message.ChatMessage`.

origin 3 (customer) is inspected as ``CUSTOMER`` (customer-risk groups, reply rules), origin 5
(servicer) as ``STAFF`` (staff-misconduct groups, no reply rules). System events (origin 4) and
unknown origins are inspected as ``ANY`` so no risk group is skipped; they carry no text, and the
puller only ever answers origin 3, so a system item never triggers a reply.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bot.inbound.chat_message import ChatMessage
from rules.models import Audience
from wecom_sdk.messages.kf import KfAuthor, KfItem

__all__ = ["CHANNEL", "conversation_id", "from_item", "from_unparsable", "key_of_msgid"]

CHANNEL = "kf"

_AUDIENCES = {KfAuthor.CUSTOMER: Audience.CUSTOMER, KfAuthor.STAFF: Audience.STAFF}


def conversation_id(open_kfid: str, external_userid: str) -> str:
    """``kf:<open_kfid>:<external_userid>``: one conversation per customer and kf account."""
    return f"kf:{open_kfid}:{external_userid}"


def key_of_msgid(msgid: str) -> str:
    """The archive key of the kf message with this WeCom msgid (as :attr:`KfItem.dedupe_key`)."""
    return KfItem(msgid=msgid, msgtype="").dedupe_key


def from_item(item: KfItem, open_kfid: str) -> ChatMessage:
    """The chat message for one parsed item; ``open_kfid`` is the account it was pulled from."""
    kfid = item.open_kfid or open_kfid
    return ChatMessage(
        channel=CHANNEL,
        dedupe_key=item.dedupe_key,
        conversation_id=conversation_id(kfid, item.external_userid),
        author=_AUDIENCES.get(item.author, Audience.ANY),
        from_user=item.from_user,
        customer_id=item.external_userid,
        staff_userid=item.servicer_userid,
        msg_type=item.msg_type,
        text=item.text,
        raw=item.raw_json,
        create_time=item.create_time,
        to_user=kfid,
        event=item.event,
    )


def from_unparsable(raw: Mapping[str, Any], open_kfid: str) -> ChatMessage:
    """A ``msg_list`` entry the item parser refused: archived raw, inspected as nothing.

    Its key hashes the whole entry (its msgid may be missing or malformed), so a re-read
    archives it once; ``ensure_ascii`` keeps a lone surrogate from making the row unstorable.
    """
    text = json.dumps(raw, ensure_ascii=True, sort_keys=True, separators=(",", ":"), default=str)
    user = raw.get("external_userid")
    customer = user if isinstance(user, str) else ""
    msgtype = raw.get("msgtype")
    send_time = raw.get("send_time")
    return ChatMessage(
        channel=CHANNEL,
        dedupe_key="kfbad:" + hashlib.sha256(text.encode()).hexdigest(),
        conversation_id=conversation_id(open_kfid, customer),
        author=Audience.ANY,
        from_user="",
        customer_id=customer,
        msg_type=msgtype[:64] if isinstance(msgtype, str) and msgtype else "unparsable",
        raw=text,
        create_time=send_time if type(send_time) is int and 0 <= send_time < 2**63 else 0,
        to_user=open_kfid,
    )
