"""Customer contact (客户联系): customer details, and the chat interception rules (管理聊天敏感词).

``externalcontact/get`` (GET): one customer and the members who added them,
https://developer.work.weixin.qq.com/document/path/92114. The app must be allowed to call the
customer-contact API (客户联系 → 可调用应用; else 48002, :class:`PermissionDenied`); a customer no
member has (any more) answers 84061 and a malformed id 40096 (plain :class:`ApiError`s).

The interception rules: ``externalcontact/add_intercept_rule``, ``get_intercept_rule_list``
(GET), ``get_intercept_rule``, ``update_intercept_rule`` and ``del_intercept_rule``:
https://developer.work.weixin.qq.com/document/path/95130 (enterprise doc 95097). WeCom's limits
(checked by the emulator, respected by ``rules.intercept``): rule_name 1..20 characters, at most
300 words of 1..32 characters per rule, at most 100 rules per company, at most 1000 userids and
1000 departments per applicable range, never both empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .caller import Caller
from .models import ExternalContact

__all__ = ["ExternalContactApi"]


def _range(userids: Sequence[str], departments: Sequence[int]) -> dict[str, Any]:
    return {"user_list": list(userids), "department_list": list(departments)}


class ExternalContactApi:
    """``client.externalcontact``: customers, and WeCom's own sensitive-word interception in
    staff chats."""

    def __init__(self, client: Caller) -> None:
        self._client = client

    async def get(self, external_userid: str) -> ExternalContact:
        """One customer and the members who added them (the first 500; GET
        ``externalcontact/get?external_userid=``).

        Raises ApiError 84061 when no member has the customer, 40096 for a malformed id, and
        PermissionDenied (48002) when the app may not call the customer-contact API.
        https://developer.work.weixin.qq.com/document/path/92114
        """
        if not external_userid:
            raise ValueError("external_userid is required")
        url = self._client.url("externalcontact/get").with_query(external_userid=external_userid)
        return ExternalContact.from_response(await self._client.request(url, None, auth=True))

    async def add_intercept_rule(
        self,
        rule_name: str,
        word_list: Sequence[str],
        *,
        intercept_type: int,
        userids: Sequence[str] = (),
        departments: Sequence[int] = (),
        semantics: Sequence[int] = (),
    ) -> str:
        """Add a rule; returns its ``rule_id``. https://developer.work.weixin.qq.com/document/path/95130"""
        body: dict[str, Any] = {
            "rule_name": rule_name,
            "word_list": list(word_list),
            "intercept_type": intercept_type,
            "applicable_range": _range(userids, departments),
        }
        if semantics:
            body["semantics_list"] = list(semantics)
        answer = await self._client.call("externalcontact/add_intercept_rule", body)
        return str(answer["rule_id"])

    async def get_intercept_rule_list(self) -> list[dict[str, Any]]:
        """Every rule of the company: ``rule_id``, ``rule_name``, ``create_time`` (GET).
        https://developer.work.weixin.qq.com/document/path/95130"""
        answer = await self._client.call("externalcontact/get_intercept_rule_list")
        return list(answer.get("rule_list", []))

    async def get_intercept_rule(self, rule_id: str) -> dict[str, Any]:
        """One rule in full: words, ``intercept_type``, ``extra_rule.semantics_list``,
        ``applicable_range``. https://developer.work.weixin.qq.com/document/path/95130"""
        answer = await self._client.call("externalcontact/get_intercept_rule", {"rule_id": rule_id})
        rule: dict[str, Any] = answer["rule"]
        return rule

    async def update_intercept_rule(
        self,
        rule_id: str,
        *,
        rule_name: str | None = None,
        word_list: Sequence[str] | None = None,
        intercept_type: int | None = None,
        semantics: Sequence[int] | None = None,
        add_range: tuple[Sequence[str], Sequence[int]] | None = None,
        remove_range: tuple[Sequence[str], Sequence[int]] | None = None,
    ) -> None:
        """Change what is given (``word_list`` replaces the words; the ranges are (userids,
        departments) added or removed). https://developer.work.weixin.qq.com/document/path/95130"""
        body: dict[str, Any] = {"rule_id": rule_id}
        if rule_name is not None:
            body["rule_name"] = rule_name
        if word_list is not None:
            body["word_list"] = list(word_list)
        if intercept_type is not None:
            body["intercept_type"] = intercept_type
        if semantics is not None:
            body["extra_rule"] = {"semantics_list": list(semantics)}
        if add_range is not None:
            body["add_applicable_range"] = _range(*add_range)
        if remove_range is not None:
            body["remove_applicable_range"] = _range(*remove_range)
        await self._client.call("externalcontact/update_intercept_rule", body)

    async def del_intercept_rule(self, rule_id: str) -> None:
        """Delete a rule. https://developer.work.weixin.qq.com/document/path/95130"""
        await self._client.call("externalcontact/del_intercept_rule", {"rule_id": rule_id})
