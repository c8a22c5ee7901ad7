"""The contact reads as WeCom checks and answers them: ``user/get`` (doc 90196) and
``externalcontact/get`` (doc 92114), both GETs whose id is in the query.

Their errcodes are WeCom's global ones (doc 90313). ``user/get``: 41009 when the ``userid``
parameter is missing; 60111 when it is empty or names no member ("UserID不存在；UserID参数为空，
或者不存在通讯录中"); 40003 (无效的UserID) for one WeCom could never have issued (doc 90195: 1..64
bytes of letters, digits and ``_-@.``, starting with a letter or digit). Members are matched
ignoring case, as WeCom compares UserIDs, and answered with the UserID as stored.
``externalcontact/get``: 40096 (不合法的外部联系人userid) when the ``external_userid`` is missing,
empty or malformed (our reading: the doc gives no separate code for a missing one); 84061
(不存在外部联系人的关系, errmsg "not external contact") when the emulator knows no such customer
or no member has them. Members and customers are seeded with
:meth:`~wecom_sdk.testing.emulator.WeComEmulator.add_member` and
:meth:`~wecom_sdk.testing.emulator.WeComEmulator.add_external_contact`; visibility and the
customer-contact permission are not modelled (script 60011 / 48002 with ``fail_next``).
"""

from __future__ import annotations

import re
from typing import Any

from .checks import Accepted, Endpoint, Refusal
from .settings import EmulatorSettings
from .state import EmulatorState

__all__ = ["CONTACT_ENDPOINTS", "CONTACT_GET_PATHS", "EXTERNAL_USERID", "USERID"]

#: A UserID WeCom can issue (doc 90195); it compares them ignoring case.
USERID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_\-@.]{0,63}")
#: An external_userid as the emulator takes one (WeCom's are ``wm``/``wo`` + 30 such chars).
EXTERNAL_USERID = re.compile(r"[0-9A-Za-z_\-]{1,64}")


def user_get(settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]) -> Accepted:
    """``user/get``: the member, as it was seeded."""
    userid = body.get("userid")
    if userid is None:
        raise Refusal(41009, "missing userid")
    if not isinstance(userid, str) or not userid:
        raise Refusal(60111, "userid not found")
    if not USERID.fullmatch(userid):
        raise Refusal(40003, "invalid userid")
    member = state.members.get(userid.lower())
    if member is None:
        raise Refusal(60111, "userid not found")
    return Accepted(dict(member))


def externalcontact_get(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``externalcontact/get``: the customer and the members who added them."""
    external_userid = body.get("external_userid")
    if not isinstance(external_userid, str) or not EXTERNAL_USERID.fullmatch(external_userid):
        raise Refusal(40096, "invalid external userid")
    contact = state.external_contacts.get(external_userid)
    if contact is None or not contact["follow_user"]:
        raise Refusal(84061, "not external contact")
    return Accepted(
        {
            "external_contact": dict(contact["external_contact"]),
            "follow_user": [dict(f) for f in contact["follow_user"]],
        }
    )


CONTACT_ENDPOINTS: dict[str, Endpoint] = {
    "user/get": user_get,
    "externalcontact/get": externalcontact_get,
}
#: Both are GETs: the id is a query parameter, the emulator hands the query over as the body.
CONTACT_GET_PATHS = frozenset(CONTACT_ENDPOINTS)
