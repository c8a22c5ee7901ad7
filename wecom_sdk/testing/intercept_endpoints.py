"""Chat interception rules (管理聊天敏感词, doc 95130 / 95097) as WeCom checks and keeps them.

``externalcontact/add_intercept_rule``, ``get_intercept_rule_list`` (a GET), ``get_intercept_rule``,
``update_intercept_rule``, ``del_intercept_rule``. The limits are WeCom's (doc 95130): rule_name
1..20 characters; word_list 1..300 words of 1..32 characters; at most 100 rules per company;
applicable_range at most 1000 userids and 1000 departments and never empty; intercept_type 1 or
2; semantics_list values 1, 2, 3. The doc names no errcodes for these refusals: the emulator
answers 40058 (invalid parameter) for each, and for an unknown rule_id, and refuses a second rule
of the same name (a stricter choice than the doc states, so a sync that would make two is caught).
"""

from __future__ import annotations

import itertools
from typing import Any

from .checks import Accepted, Endpoint, Refusal, need_str
from .settings import EmulatorSettings
from .state import EmulatorState

__all__ = [
    "INTERCEPT_ENDPOINTS",
    "INTERCEPT_GET_PATHS",
    "MAX_NAME_CHARS",
    "MAX_RANGE",
    "MAX_RULES",
    "MAX_WORDS",
    "MAX_WORD_CHARS",
]

MAX_RULES = 100
MAX_WORDS = 300
MAX_WORD_CHARS = 32
MAX_NAME_CHARS = 20
MAX_RANGE = 1000
_SEMANTICS = frozenset({1, 2, 3})
_ids = itertools.count(1)


def _name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_CHARS:
        raise Refusal(40058, f"rule_name must be 1..{MAX_NAME_CHARS} characters")
    return value


def _words(value: object) -> list[str]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_WORDS:
        raise Refusal(40058, f"word_list must hold 1..{MAX_WORDS} words")
    for word in value:
        if not isinstance(word, str) or not 1 <= len(word) <= MAX_WORD_CHARS:
            raise Refusal(40058, f"a word must be 1..{MAX_WORD_CHARS} characters")
    return list(value)


def _type(value: object) -> int:
    if value not in (1, 2) or isinstance(value, bool):
        raise Refusal(40058, "intercept_type must be 1 or 2")
    return int(value)


def _semantics(value: object) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or any(v not in _SEMANTICS for v in value):
        raise Refusal(40058, "semantics_list values must be 1, 2 or 3")
    return sorted(set(value))


def _range(value: object, *, may_be_empty: bool = False) -> tuple[list[str], list[int]]:
    if not isinstance(value, dict):
        raise Refusal(40058, "applicable_range missing")
    users, parts = value.get("user_list") or [], value.get("department_list") or []
    if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
        raise Refusal(40058, "user_list must list userids")
    if not isinstance(parts, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in parts
    ):
        raise Refusal(40058, "department_list must list department ids")
    if len(users) > MAX_RANGE or len(parts) > MAX_RANGE:
        raise Refusal(40058, f"applicable_range holds at most {MAX_RANGE} userids and departments")
    if not users and not parts and not may_be_empty:
        raise Refusal(40058, "applicable_range: user_list and department_list both empty")
    return users, parts


def _rule(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    rule_id = need_str(body, "rule_id")
    rule = state.intercept_rules.get(rule_id)
    if rule is None:
        raise Refusal(40058, "invalid rule_id")
    return rule


def _name_free(state: EmulatorState, name: str, rule_id: str = "") -> None:
    if any(r["rule_name"] == name and i != rule_id for i, r in state.intercept_rules.items()):
        raise Refusal(40058, "rule_name already used")


def add_intercept_rule(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``externalcontact/add_intercept_rule``: a new rule, within the company's 100."""
    name = _name(body.get("rule_name"))
    words = _words(body.get("word_list"))
    kind = _type(body.get("intercept_type"))
    semantics = _semantics(body.get("semantics_list"))
    users, parts = _range(body.get("applicable_range"))
    if len(state.intercept_rules) >= MAX_RULES:
        raise Refusal(40058, f"a company holds at most {MAX_RULES} rules")
    _name_free(state, name)
    rule_id = f"{settings.id_prefix}rule-{next(_ids)}"
    state.intercept_rules[rule_id] = {
        "rule_id": rule_id,
        "rule_name": name,
        "word_list": words,
        "extra_rule": {"semantics_list": semantics},
        "intercept_type": kind,
        "applicable_range": {"user_list": users, "department_list": parts},
        "create_time": int(settings.wall()),
    }
    return Accepted({"rule_id": rule_id})


def get_intercept_rule_list(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``externalcontact/get_intercept_rule_list`` (GET): id, name and create time of each rule."""
    rules = [
        {"rule_id": r["rule_id"], "rule_name": r["rule_name"], "create_time": r["create_time"]}
        for r in state.intercept_rules.values()
    ]
    return Accepted({"rule_list": rules})


def get_intercept_rule(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``externalcontact/get_intercept_rule``: one rule in full."""
    rule = _rule(state, body)
    shown = {k: v for k, v in rule.items() if k != "create_time"}
    return Accepted({"rule": shown})


def update_intercept_rule(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``externalcontact/update_intercept_rule``: what is given changes; the range must stay
    non-empty. Every field is checked before anything changes."""
    rule = _rule(state, body)
    changed = dict(rule)
    if "rule_name" in body:
        changed["rule_name"] = _name(body["rule_name"])
        _name_free(state, changed["rule_name"], rule["rule_id"])
    if "word_list" in body:
        changed["word_list"] = _words(body["word_list"])
    if "intercept_type" in body:
        changed["intercept_type"] = _type(body["intercept_type"])
    if "extra_rule" in body:
        extra = body["extra_rule"]
        if not isinstance(extra, dict):
            raise Refusal(40058, "extra_rule must be an object")
        changed["extra_rule"] = {"semantics_list": _semantics(extra.get("semantics_list"))}
    users = list(rule["applicable_range"]["user_list"])
    parts = list(rule["applicable_range"]["department_list"])
    if "add_applicable_range" in body:
        more_users, more_parts = _range(body["add_applicable_range"], may_be_empty=True)
        users += [u for u in more_users if u not in users]
        parts += [d for d in more_parts if d not in parts]
    if "remove_applicable_range" in body:
        less_users, less_parts = _range(body["remove_applicable_range"], may_be_empty=True)
        users = [u for u in users if u not in less_users]
        parts = [d for d in parts if d not in less_parts]
    changed["applicable_range"] = {"user_list": users, "department_list": parts}
    _range(changed["applicable_range"])
    state.intercept_rules[rule["rule_id"]] = changed
    return Accepted()


def del_intercept_rule(
    settings: EmulatorSettings, state: EmulatorState, body: dict[str, Any]
) -> Accepted:
    """``externalcontact/del_intercept_rule``."""
    rule = _rule(state, body)
    del state.intercept_rules[rule["rule_id"]]
    return Accepted()


INTERCEPT_ENDPOINTS: dict[str, Endpoint] = {
    "externalcontact/add_intercept_rule": add_intercept_rule,
    "externalcontact/get_intercept_rule_list": get_intercept_rule_list,
    "externalcontact/get_intercept_rule": get_intercept_rule,
    "externalcontact/update_intercept_rule": update_intercept_rule,
    "externalcontact/del_intercept_rule": del_intercept_rule,
}
#: The endpoints WeCom serves over GET, without a body.
INTERCEPT_GET_PATHS = frozenset({"externalcontact/get_intercept_rule_list"})
