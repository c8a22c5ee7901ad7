"""The staff words as WeCom's own chat interception rules: the pure plan of ``rules sync-intercept``.

WeCom can block (or warn about) a sensitive word before a staff member's message to a customer
is even sent ("管理聊天敏感词", externalcontact/*_intercept_rule). This module computes which
interception rules should exist for the staff-audience words of a rule set and the smallest set
of changes that gets there from the rules WeCom holds; ``bot.intercept_sync`` reads and writes
them. Pure: no I/O.

WeCom's limits, from doc 95130 (管理聊天敏感词, https://developer.work.weixin.qq.com/document/path/95130,
the enterprise copy of doc 95097; the same limits are in go-laoji/wecom-go-sdk's validation):
``rule_name`` 1..20 characters; ``word_list`` at most 300 words of 1..32 characters each; a
company holds at most 100 rules; ``applicable_range`` at most 1000 userids and 1000 departments,
never both empty; ``intercept_type`` 1 (warn and block) or 2 (warn only); ``semantics_list``
1 phone, 2 e-mail, 3 red packet. Department 1 is WeCom's root department: the whole company.

Rules this tool manages are named ``sentinel-<n>``; any other rule was made by an admin and is
never changed. Words too long for WeCom are skipped and reported. A word already in a managed
rule stays in it (so adding one word touches one rule, not every rule after it in sorted order);
new words fill the managed rules' free room first, then new rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rules.models import Audience, RuleSet

__all__ = [
    "MANAGED_PREFIX",
    "MAX_NAME_CHARS",
    "MAX_RANGE",
    "MAX_RULES",
    "MAX_WORDS_PER_RULE",
    "MAX_WORD_CHARS",
    "ROOT_DEPARTMENT",
    "Create",
    "Delete",
    "InterceptLimitError",
    "InterceptRange",
    "InterceptRule",
    "InterceptTarget",
    "Plan",
    "Update",
    "is_managed",
    "plan",
    "staff_words",
]

#: A company holds at most this many interception rules (doc 95130: 企业敏感词规则条数上限为100个).
MAX_RULES = 100
#: Words per rule (doc 95130: word_list 列表大小不能超过300个).
MAX_WORDS_PER_RULE = 300
#: Characters per word (doc 95130: 敏感词长度1~32个utf8字符).
MAX_WORD_CHARS = 32
#: Characters per rule name (doc 95130: rule_name 长度1~20个utf8字符).
MAX_NAME_CHARS = 20
#: Userids, and departments, per applicable range (doc 95130: 最多支持传1000个节点).
MAX_RANGE = 1000
#: WeCom's root department: the whole company.
ROOT_DEPARTMENT = 1
#: Names of the rules this tool manages: ``sentinel-1``, ``sentinel-2``, ...
MANAGED_PREFIX = "sentinel-"


class InterceptLimitError(ValueError):
    """The words do not fit WeCom's limits (too many rules in all); nothing should be written."""


@dataclass(frozen=True, slots=True)
class InterceptRange:
    """Whom a rule applies to: members and departments (both sorted, duplicates removed)."""

    userids: tuple[str, ...] = ()
    departments: tuple[int, ...] = ()

    @classmethod
    def of(cls, userids: Iterable[str], departments: Iterable[int]) -> InterceptRange:
        """A range from any iterables; both empty means the whole company (department 1)."""
        users, parts = tuple(sorted(set(userids))), tuple(sorted(set(departments)))
        if not users and not parts:
            parts = (ROOT_DEPARTMENT,)
        return cls(users, parts)


@dataclass(frozen=True, slots=True)
class InterceptTarget:
    """How every managed rule should look, besides its words."""

    intercept_type: int = 1
    semantics: tuple[int, ...] = ()
    range: InterceptRange = field(default_factory=lambda: InterceptRange.of((), ()))


@dataclass(frozen=True, slots=True)
class InterceptRule:
    """An interception rule as WeCom holds it (``get_intercept_rule``)."""

    rule_id: str
    name: str
    words: tuple[str, ...]
    intercept_type: int
    semantics: tuple[int, ...]
    range: InterceptRange


@dataclass(frozen=True, slots=True)
class Create:
    """A managed rule to add."""

    name: str
    words: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Update:
    """A managed rule to change into ``words`` with the target's type, semantics and range."""

    rule: InterceptRule
    words: tuple[str, ...]
    target: InterceptTarget

    @property
    def added(self) -> tuple[str, ...]:
        """Words the rule gains."""
        return tuple(w for w in self.words if w not in self.rule.words)

    @property
    def removed(self) -> tuple[str, ...]:
        """Words the rule loses."""
        return tuple(w for w in self.rule.words if w not in self.words)

    @property
    def words_changed(self) -> bool:
        """Whether the word list changes (as a set: WeCom's order does not matter)."""
        return set(self.words) != set(self.rule.words)

    @property
    def type_changed(self) -> bool:
        return self.rule.intercept_type != self.target.intercept_type

    @property
    def semantics_changed(self) -> bool:
        return set(self.rule.semantics) != set(self.target.semantics)

    @property
    def range_added(self) -> InterceptRange:
        """Members and departments the rule gains (``add_applicable_range``)."""
        now, want = self.rule.range, self.target.range
        return InterceptRange(
            tuple(u for u in want.userids if u not in now.userids),
            tuple(d for d in want.departments if d not in now.departments),
        )

    @property
    def range_removed(self) -> InterceptRange:
        """Members and departments the rule loses (``remove_applicable_range``)."""
        now, want = self.rule.range, self.target.range
        return InterceptRange(
            tuple(u for u in now.userids if u not in want.userids),
            tuple(d for d in now.departments if d not in want.departments),
        )


@dataclass(frozen=True, slots=True)
class Delete:
    """A managed rule with no words left."""

    rule: InterceptRule


@dataclass(frozen=True, slots=True)
class Plan:
    """The changes, in the order to make them: deletes and updates free room before creates."""

    creates: tuple[Create, ...] = ()
    updates: tuple[Update, ...] = ()
    deletes: tuple[Delete, ...] = ()
    #: Words WeCom cannot take (longer than :data:`MAX_WORD_CHARS`), left out.
    skipped: tuple[str, ...] = ()
    target: InterceptTarget = field(default_factory=InterceptTarget)

    @property
    def empty(self) -> bool:
        """Nothing to change."""
        return not (self.creates or self.updates or self.deletes)

    def lines(self) -> list[str]:
        """The diff as the CLI prints it, one change per line (``no changes`` when empty)."""
        out = [f"skip {w}: longer than {MAX_WORD_CHARS} characters" for w in self.skipped]
        for d in self.deletes:
            out.append(f"- delete {d.rule.name} ({d.rule.rule_id}): {len(d.rule.words)} words")
        for u in self.updates:
            out.append(f"~ update {u.rule.name} ({u.rule.rule_id}): {_describe(u)}")
        for c in self.creates:
            shown = " ".join(f"+{w}" for w in c.words)
            out.append(f"+ create {c.name}: {len(c.words)} words {shown}")
        if self.empty:
            out.append("no changes")
        return out


def _describe(update: Update) -> str:
    parts = []
    if update.words_changed:
        parts.append(
            " ".join([*(f"+{w}" for w in update.added), *(f"-{w}" for w in update.removed)])
        )
    if update.type_changed:
        parts.append(
            f"intercept_type {update.rule.intercept_type} -> {update.target.intercept_type}"
        )
    if update.semantics_changed:
        parts.append(f"semantics {list(update.rule.semantics)} -> {list(update.target.semantics)}")
    added, removed = update.range_added, update.range_removed
    for sign, rng in (("+", added), ("-", removed)):
        parts.extend(f"{sign}user {u}" for u in rng.userids)
        parts.extend(f"{sign}department {d}" for d in rng.departments)
    return "; ".join(parts)


def staff_words(ruleset: RuleSet) -> list[str]:
    """The words of every group that applies to staff messages (audience ``staff`` or ``any``),
    in file order without repeats: what WeCom should intercept in staff chats."""
    seen: dict[str, None] = {}
    for group in ruleset.groups:
        if group.audience in (Audience.STAFF, Audience.ANY):
            seen.update(dict.fromkeys(w.text for w in group.words))
    return list(seen)


def is_managed(name: str) -> bool:
    """Whether a rule of this name is one ``rules sync-intercept`` made (``sentinel-<n>``)."""
    return name.startswith(MANAGED_PREFIX) and name[len(MANAGED_PREFIX) :].isdigit()


def _number(rule: InterceptRule) -> int:
    return int(rule.name[len(MANAGED_PREFIX) :])


def plan(
    words: Sequence[str],
    managed: Sequence[InterceptRule],
    *,
    others: int,
    target: InterceptTarget,
) -> Plan:
    """The changes that make the managed rules hold exactly ``words`` with ``target``'s settings.

    Args:
        words: the words to intercept (:func:`staff_words`); repeats and over-long words dropped.
        managed: the managed rules WeCom holds (names for which :func:`is_managed` is true).
        others: how many other rules (made by hand) the company holds; they count to the limit.
        target: intercept type, semantics and range of every managed rule.

    Raises:
        InterceptLimitError: more rules would be needed than WeCom allows a company.
    """
    wanted = [w for w in dict.fromkeys(words) if 1 <= len(w) <= MAX_WORD_CHARS]
    skipped = tuple(w for w in dict.fromkeys(words) if len(w) > MAX_WORD_CHARS)
    wanted_set = set(wanted)
    ordered = sorted(managed, key=lambda r: (_number(r), r.rule_id))
    kept: dict[str, list[str]] = {}
    placed: set[str] = set()
    for rule in ordered:
        keep = [w for w in dict.fromkeys(rule.words) if w in wanted_set and w not in placed]
        placed.update(keep)
        kept[rule.rule_id] = keep
    fresh = [w for w in wanted if w not in placed]
    for rule in ordered:
        room = MAX_WORDS_PER_RULE - len(kept[rule.rule_id])
        if room > 0 and fresh:
            kept[rule.rule_id].extend(fresh[:room])
            fresh = fresh[room:]
    updates, deletes = [], []
    for rule in ordered:
        words_now = tuple(kept[rule.rule_id])
        if not words_now:
            deletes.append(Delete(rule))
            continue
        update = Update(rule, words_now, target)
        if (
            update.words_changed
            or update.type_changed
            or update.semantics_changed
            or update.range_added != InterceptRange()
            or update.range_removed != InterceptRange()
        ):
            updates.append(update)
    used = {_number(r) for r in ordered if kept[r.rule_id]}
    creates = []
    number = 0
    for start in range(0, len(fresh), MAX_WORDS_PER_RULE):
        number += 1
        while number in used:
            number += 1
        creates.append(
            Create(f"{MANAGED_PREFIX}{number}", tuple(fresh[start : start + MAX_WORDS_PER_RULE]))
        )
    total = others + len(ordered) - len(deletes) + len(creates)
    if total > MAX_RULES:
        raise InterceptLimitError(
            f"{len(wanted)} words need {total - others} interception rules of at most "
            f"{MAX_WORDS_PER_RULE} words, and the company holds {others} other rules: WeCom "
            f"allows {MAX_RULES} rules in all"
        )
    return Plan(tuple(creates), tuple(updates), tuple(deletes), skipped, target)
