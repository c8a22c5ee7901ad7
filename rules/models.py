"""Typed rule and result models (frozen values; the pure core passes nothing else around).

Two kinds of rules live in rule files: *sensitive groups* (risk words that produce hits and alerts)
and *reply rules* (keywords that produce an automatic answer to a customer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from enum import IntEnum, StrEnum
from typing import Literal

__all__ = [
    "Audience",
    "Boundary",
    "Hit",
    "Inspection",
    "LinkReply",
    "MenuOption",
    "MenuReply",
    "ReplyContent",
    "ReplyRule",
    "RuleSet",
    "SensitiveGroup",
    "Severity",
    "TextReplyContent",
    "TimeRange",
    "Word",
]


class Severity(IntEnum):
    """How bad a hit is; ordered, so ``max()`` of hits gives the conversation's level."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """Chinese label for alerts and the review page."""
        return {1: "低", 2: "中", 3: "高", 4: "严重"}[self.value]

    @classmethod
    def parse(cls, name: str) -> Severity:
        """``"high"`` -> ``Severity.HIGH``; raises ``ValueError`` naming the allowed values."""
        try:
            return cls[name.upper()]
        except KeyError:
            allowed = ", ".join(m.name.lower() for m in cls)
            raise ValueError(f"severity must be one of {allowed}, got {name!r}") from None


class Audience(StrEnum):
    """Whose messages a group applies to: customers, staff (servicers / members), or both."""

    CUSTOMER = "customer"
    STAFF = "staff"
    ANY = "any"

    def covers(self, author: Audience) -> bool:
        """Whether a group with this audience applies to a message written by ``author``."""
        return self is Audience.ANY or author is Audience.ANY or self is author


class Boundary(StrEnum):
    """``substring``: match anywhere. ``word``: drop a hit that cuts across a segmented word."""

    SUBSTRING = "substring"
    WORD = "word"


@dataclass(frozen=True, slots=True)
class Word:
    """One sensitive word with its options. ``boundary=None`` means the engine's default."""

    text: str
    boundary: Boundary | None = None
    #: Also match its pinyin: full ("weiquan") and mixed ("wei权", "维quan"). Chinese words only.
    pinyin: bool = True
    #: Also match it with one character replaced by a common sound-alike (薇信, 鸿包, 头诉).
    homophones: bool = True
    #: Also match the initials of its pinyin as a standalone Latin token ("wq"). Opt-in.
    initials: bool = False


@dataclass(frozen=True, slots=True)
class SensitiveGroup:
    """A named set of risk words sharing severity, audience and recipients."""

    name: str
    severity: Severity
    audience: Audience
    words: tuple[Word, ...]
    #: WeCom userids alerted for this group; empty = ``[alerts].managers``.
    recipients: tuple[str, ...] = ()
    #: Phrases inside which a hit does not count (垃圾桶 for 垃圾).
    allow: tuple[str, ...] = ()
    #: Words whose presence anywhere in the message suppresses this group's hits.
    must_not: tuple[str, ...] = ()
    #: ``file:line`` where the group is defined, for error messages.
    source: str = ""


@dataclass(frozen=True, slots=True)
class TextReplyContent:
    """A plain text answer."""

    text: str


@dataclass(frozen=True, slots=True)
class MenuOption:
    """One clickable option of a menu reply (kf ``msgmenu`` click item)."""

    id: str
    text: str


@dataclass(frozen=True, slots=True)
class MenuReply:
    """A menu: head text, up to 10 options, tail text."""

    head: str
    options: tuple[MenuOption, ...]
    tail: str = ""


@dataclass(frozen=True, slots=True)
class LinkReply:
    """A link card."""

    title: str
    url: str
    description: str = ""
    pic_url: str = ""


ReplyContent = TextReplyContent | MenuReply | LinkReply


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A daily window ``start <= t < end`` (local time); ``end < start`` spans midnight."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        """Whether ``t`` falls in the window."""
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True, slots=True)
class ReplyRule:
    """Keywords -> an automatic answer to a customer. First match by priority wins."""

    name: str
    keywords: tuple[str, ...]
    match: Literal["exact", "contains", "all"]
    reply: ReplyContent
    #: Higher first; ties keep file order.
    priority: int = 0
    #: Seconds before the same customer gets this rule's answer again (0 = always).
    cooldown_s: int = 0
    #: Empty = always active.
    active_hours: tuple[TimeRange, ...] = ()
    source: str = ""
    #: This rule hands the customer over to a human servicer (e.g. 转人工).
    handoff: bool = False
    #: Phrases that stop the rule from matching (人工智能 is not a request for 人工).
    must_not: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """One sensitive-word hit; ``text[start:end]`` is the matched span of the ORIGINAL text."""

    word: str
    start: int
    end: int
    group: str
    severity: Severity
    #: How the span spells the word when not as the word itself (after the ordinary evasions:
    #: separators, width, case, 繁简, repeats): ``"pinyin"``, ``"homophone"``, ``"initials"``,
    #: ``"lookalike"``, ``"numerals"``; ``"split"`` for a word spread over several messages.
    via: str | None = None


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Everything loaded from the rule files, plus a version that identifies the content."""

    groups: tuple[SensitiveGroup, ...]
    replies: tuple[ReplyRule, ...] = ()
    #: Content hash of the rule files (first 12 hex digits of a sha256); stored with every hit.
    version: str = ""


@dataclass(frozen=True, slots=True)
class Inspection:
    """The result of inspecting one message with one rule version."""

    hits: tuple[Hit, ...]
    reply: ReplyRule | None
    rules_version: str
    #: Recipients named by the groups that hit (empty = default managers).
    recipients: tuple[str, ...] = field(default=())
