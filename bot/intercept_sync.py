"""``rules sync-intercept [--dry-run]``: push the staff words into WeCom's own chat interception.

Reads the rules (``[rules].paths``) and every interception rule WeCom holds, plans the changes
with the pure :func:`rules.intercept.plan` (only rules named ``sentinel-<n>`` are managed; rules
an admin made by hand are counted towards WeCom's limit of 100 and never touched), prints the
diff and, unless ``dry_run``, makes it: deletes, then updates, then creates, so room is freed
before it is used. A second run finds nothing to change and prints ``no changes``. A dry run
calls only the read endpoints (``get_intercept_rule_list``, ``get_intercept_rule``).

Without ``[wecom].secret`` the calls go to an in-process WeCom emulator (nothing leaves the
machine, and the rules it holds are gone when the command ends): a way to see the plan.
"""

from __future__ import annotations

import asyncio
from typing import Any, TextIO

from bot.config import Config
from bot.sandbox.offline import offline_client
from rules.errors import RuleFileError
from rules.intercept import (
    InterceptLimitError,
    InterceptRange,
    InterceptRule,
    InterceptTarget,
    Plan,
    is_managed,
    plan,
    staff_words,
)
from rules.loader import load_rules
from wecom_sdk.client import WeComClient
from wecom_sdk.client.externalcontact import ExternalContactApi
from wecom_sdk.errors import WeComError

__all__ = ["EXIT_FAILED", "EXIT_OK", "read_rule", "sync_command", "sync_intercept", "target_of"]

EXIT_OK = 0
EXIT_FAILED = 1


def target_of(config: Config) -> InterceptTarget:
    """Type, semantics and range of the managed rules, from ``[rules]``."""
    rules = config.rules
    return InterceptTarget(
        intercept_type=1 if rules.intercept_block else 2,
        semantics=tuple(sorted(set(rules.intercept_semantics))),
        range=InterceptRange.of(rules.intercept_userids, rules.intercept_departments),
    )


def read_rule(rule: dict[str, Any]) -> InterceptRule:
    """A rule as ``get_intercept_rule`` answers it, as the planner takes it."""
    scope = rule.get("applicable_range") or {}
    extra = rule.get("extra_rule") or {}
    return InterceptRule(
        rule_id=str(rule["rule_id"]),
        name=str(rule.get("rule_name", "")),
        words=tuple(str(w) for w in rule.get("word_list") or ()),
        intercept_type=int(rule.get("intercept_type", 0)),
        semantics=tuple(sorted({int(s) for s in extra.get("semantics_list") or ()})),
        range=InterceptRange(
            tuple(sorted({str(u) for u in scope.get("user_list") or ()})),
            tuple(sorted({int(d) for d in scope.get("department_list") or ()})),
        ),
    )


async def sync_intercept(
    api: ExternalContactApi, words: list[str], target: InterceptTarget, *, dry_run: bool
) -> Plan:
    """Plan against what WeCom holds and, unless ``dry_run``, make the changes.

    Raises:
        InterceptLimitError: the words need more rules than WeCom allows (nothing written).
        wecom_sdk.errors.WeComError: WeCom refused a call (the changes before it stay made;
            running again continues from there).
    """
    listed = await api.get_intercept_rule_list()
    managed_ids = [str(r["rule_id"]) for r in listed if is_managed(str(r.get("rule_name", "")))]
    managed = [read_rule(await api.get_intercept_rule(rule_id)) for rule_id in managed_ids]
    changes = plan(words, managed, others=len(listed) - len(managed), target=target)
    if dry_run:
        return changes
    for delete in changes.deletes:
        await api.del_intercept_rule(delete.rule.rule_id)
    for update in changes.updates:
        added, removed = update.range_added, update.range_removed
        await api.update_intercept_rule(
            update.rule.rule_id,
            word_list=update.words if update.words_changed else None,
            intercept_type=target.intercept_type if update.type_changed else None,
            semantics=target.semantics if update.semantics_changed else None,
            add_range=(added.userids, added.departments) if added != InterceptRange() else None,
            remove_range=(removed.userids, removed.departments)
            if removed != InterceptRange()
            else None,
        )
    for create in changes.creates:
        await api.add_intercept_rule(
            create.name,
            create.words,
            intercept_type=target.intercept_type,
            userids=target.range.userids,
            departments=target.range.departments,
            semantics=target.semantics,
        )
    return changes


def _client(config: Config, stdout: TextIO) -> WeComClient:
    wc = config.wecom
    if wc.secret:
        return WeComClient(wc.corp_id, wc.secret, api_base=wc.api_base)
    print(
        "no [wecom].secret: talking to an in-process WeCom emulator, nothing is sent to WeCom",
        file=stdout,
    )
    return offline_client(wc.corp_id, wc.api_base)


def sync_command(config: Config, *, dry_run: bool, stdout: TextIO, stderr: TextIO) -> int:
    """``rules sync-intercept``: print the diff (``no changes`` when in step) and make it."""
    try:
        ruleset = load_rules(config.rules.paths)
    except RuleFileError as exc:
        print(f"rules sync-intercept: the rules are invalid:\n{exc}", file=stderr)
        return EXIT_FAILED
    words = staff_words(ruleset)

    async def run() -> Plan:
        async with _client(config, stdout) as client:
            return await sync_intercept(
                client.externalcontact, words, target_of(config), dry_run=dry_run
            )

    try:
        changes = asyncio.run(run())
    except InterceptLimitError as exc:
        print(f"rules sync-intercept: {exc}", file=stderr)
        return EXIT_FAILED
    except WeComError as exc:
        print(f"rules sync-intercept: WeCom refused: {exc}", file=stderr)
        return EXIT_FAILED
    for line in changes.lines():
        print(line, file=stdout)
    if dry_run and not changes.empty:
        print("dry run: nothing changed", file=stdout)
    return EXIT_OK
