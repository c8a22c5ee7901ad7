"""Rules: typed models, normalisation and the compiled matcher (all pure)."""

from __future__ import annotations

from rules.matcher import DEFAULT_BOUNDARY, Matcher, compile_rules
from rules.models import (
    Audience,
    Boundary,
    Hit,
    Inspection,
    LinkReply,
    MenuOption,
    MenuReply,
    ReplyContent,
    ReplyRule,
    RuleSet,
    SensitiveGroup,
    Severity,
    TextReplyContent,
    TimeRange,
    Word,
)
from rules.normalize import Normalized, normalize, normalize_word

__all__ = [
    "DEFAULT_BOUNDARY",
    "Audience",
    "Boundary",
    "Hit",
    "Inspection",
    "LinkReply",
    "Matcher",
    "MenuOption",
    "MenuReply",
    "Normalized",
    "ReplyContent",
    "ReplyRule",
    "RuleSet",
    "SensitiveGroup",
    "Severity",
    "TextReplyContent",
    "TimeRange",
    "Word",
    "compile_rules",
    "normalize",
    "normalize_word",
]
