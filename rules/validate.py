"""Validation of parsed rule files (the format is described in :mod:`rules.loader`).

Pure: takes the dict tomllib produced plus the file's text (only to find line numbers, since tomllib
keeps no positions) and collects :class:`~rules.errors.Problem`\\ s instead of stopping at the first.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any, Literal, cast

from rules.errors import Problem
from rules.models import (
    Audience,
    Boundary,
    ReplyRule,
    SensitiveGroup,
    Severity,
    TimeRange,
    Word,
)
from rules.normalize import normalize
from rules.reply_content import key_hint, parse_reply

__all__ = ["Locator", "Validator"]

# A table header alone on its line ("[[group]]", "[ reply ]", with an optional comment); the
# character class keeps array elements such as ["a", "b"] on their own line from matching.
_HEADER = re.compile(r'^\s*(\[\[?)\s*([A-Za-z0-9_.\-" ]+?)\s*\]\]?\s*(?:#.*)?$')
_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")

_GROUP_KEYS = ("name", "severity", "audience", "words", "recipients", "allow", "must_not")
_REPLY_KEYS = (
    "name",
    "keywords",
    "match",
    "priority",
    "reply",
    "cooldown_s",
    "active_hours",
    "handoff",
    "must_not",
)
_WORD_KEYS = ("word", "boundary", "pinyin", "homophones", "initials")
#: Word switches and their defaults (rules/models.py ``Word``).
_WORD_FLAGS = {"pinyin": True, "homophones": True, "initials": False}
_MATCHES = ("exact", "contains", "all")
_UNMATCHABLE = "{!r} 只有空格、标点或表情符号，匹配时这些都会被忽略，所以它什么也匹配不到"


def _choices(values: Any) -> str:
    return " | ".join(str(v) for v in values)


def _fold(text: str) -> tuple[str, tuple[int, ...]]:
    """What makes two words "the same word": equal after the matcher's normalisation."""
    norm = normalize(text)
    return norm.text, norm.runs


def _matchable(text: str) -> bool:
    """False for a word made only of what normalisation removes (spaces, punctuation, emoji)."""
    return bool(normalize(text).text)


class Locator:
    """Maps tables and keys of a TOML file back to (approximate) line numbers."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        #: (1-based line, dotted table name, is an array-of-tables header)
        self.headers: list[tuple[int, str, bool]] = []
        for number, line in enumerate(self.lines, 1):
            match = _HEADER.match(line)
            if match:
                name = re.sub(r'[\s"]', "", match.group(2))
                self.headers.append((number, name, match.group(1) == "[["))

    def table(self, kind: str, index: int) -> tuple[int, int]:
        """Line span ``(header, last)`` of the ``index``-th ``[[kind]]`` (``(1, 1)`` if not found)."""
        own = [i for i, (_, name, _arr) in enumerate(self.headers) if name == kind]
        if index >= len(own):
            return 1, 1
        position = own[index]
        start = self.headers[position][0]
        end = len(self.lines)
        for line, name, _arr in self.headers[position + 1 :]:
            if not name.startswith(kind + "."):  # sub-tables still belong to this entry
                end = line - 1
                break
        return start, end

    def header(self, name: str) -> int:
        """Line of the first header named ``name`` (1 if none)."""
        return next((line for line, n, _ in self.headers if n == name), 1)

    def key(self, span: tuple[int, int], key: str) -> int:
        """Line of ``key = ...`` inside ``span``; the span's first line if not found."""
        pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
        for number in range(span[0], span[1] + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return span[0]

    def value(self, span: tuple[int, int], key: str, value: str, occurrence: int = 1) -> int:
        """Line of the ``occurrence``-th quoted ``value`` from ``key``'s line on; else ``key``'s line."""
        start = self.key(span, key)
        quoted = (f'"{value}"', f"'{value}'")
        seen = 0
        for number in range(start, span[1] + 1):
            line = self.lines[number - 1]
            seen += sum(line.count(q) for q in quoted)
            if seen >= occurrence:
                return number
        return start

    def top_level_end(self) -> int:
        """Last line before the first table header."""
        return self.headers[0][0] - 1 if self.headers else len(self.lines)


class Validator:
    """Checks parsed files one by one; keeps what is valid and every problem found."""

    def __init__(self) -> None:
        self.groups: list[SensitiveGroup] = []
        self.replies: list[ReplyRule] = []
        self.problems: list[Problem] = []
        self._group_names: dict[str, str] = {}
        self._reply_names: dict[str, str] = {}
        # Per-table context, set while one table is being checked.
        self._file = ""
        self._loc = Locator("")
        self._span = (1, 1)

    def _problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self._file, line, message))

    def _at_key(self, key: str, message: str) -> None:
        self._problem(self._loc.key(self._span, key), message)

    def check_file(self, file: str, doc: dict[str, Any], loc: Locator) -> None:
        """Validate one parsed file; valid entries are appended to ``groups``/``replies``."""
        self._file, self._loc = file, loc
        first = len(self.problems)
        for key, value in doc.items():
            if key not in ("group", "reply"):
                line = loc.header(key)
                if line == 1:
                    line = loc.key((1, max(1, loc.top_level_end())), key)
                self._problem(line, f"未知的表或键 {key!r}{key_hint(key, ('group', 'reply'))}")
            elif not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                self._problem(loc.header(key), f"请写成 [[{key}]]（两层方括号，每条一个表）")
            elif key == "group":
                for index, table in enumerate(value):
                    self._span = loc.table("group", index)
                    self._check_group(table)
            else:
                for index, table in enumerate(value):
                    self._span = loc.table("reply", index)
                    self._check_reply(table)
        # Report in file order, the way an editor's problem list reads (sort is stable).
        self.problems[first:] = sorted(self.problems[first:], key=lambda p: p.line)

    # -- shared value checks --------------------------------------------------------------

    def _unknown_keys(self, table: dict[str, Any], known: tuple[str, ...], what: str) -> None:
        for key in table:
            if key not in known:
                self._at_key(key, f"{what}里有未知的键 {key!r}{key_hint(key, known)}")

    def _name(self, table: dict[str, Any], seen: dict[str, str], what: str) -> str | None:
        name = table.get("name")
        if not isinstance(name, str) or not name.strip():
            self._problem(self._span[0], f"{what}缺少 name（非空字符串）")
            return None
        name = name.strip()
        source = f"{self._file}:{self._loc.key(self._span, 'name')}"
        if name in seen:
            self._at_key("name", f"{what}名称 {name!r} 重复，已在 {seen[name]} 定义")
            return None
        seen[name] = source
        return name

    def _strings(self, table: dict[str, Any], key: str, *, required: bool) -> tuple[str, ...]:
        value = table.get(key)
        if value is None:
            if required:
                self._problem(self._span[0], f"缺少 {key}（字符串列表）")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._at_key(key, f'{key} 必须是字符串列表，例如 {key} = ["..."]')
            return ()
        items = tuple(v.strip() for v in value)
        if any(not v for v in items):
            self._at_key(key, f"{key} 里有空字符串")
        for item in items:
            if item and not _matchable(item):
                self._problem(self._loc.value(self._span, key, item), _UNMATCHABLE.format(item))
                return ()
        if required and not items:
            self._at_key(key, f"{key} 不能为空")
        return tuple(v for v in items if v)

    def _enum(
        self, table: dict[str, Any], key: str, allowed: tuple[str, ...], default: str | None
    ) -> str | None:
        value = table.get(key, default)
        if value is None:
            self._problem(self._span[0], f"缺少 {key}（{_choices(allowed)}）")
            return None
        if not isinstance(value, str) or value.lower() not in allowed:
            self._at_key(key, f"{key} 只能是 {_choices(allowed)}，现在是 {value!r}")
            return None
        return value.lower()

    def _int(self, table: dict[str, Any], key: str, *, minimum: int | None = None) -> int:
        value = table.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int):
            self._at_key(key, f"{key} 必须是整数，现在是 {value!r}")
            return 0
        if minimum is not None and value < minimum:
            self._at_key(key, f"{key} 不能小于 {minimum}")
            return 0
        return value

    # -- [[group]] --------------------------------------------------------------------------

    def _check_group(self, table: dict[str, Any]) -> None:
        before = len(self.problems)
        self._unknown_keys(table, _GROUP_KEYS, "[[group]] ")
        name = self._name(table, self._group_names, "敏感词组")
        severity = self._enum(table, "severity", tuple(s.name.lower() for s in Severity), None)
        audience = self._enum(table, "audience", tuple(a.value for a in Audience), "any")
        words = self._words(table)
        recipients = self._strings(table, "recipients", required=False)
        allow = self._strings(table, "allow", required=False)
        must_not = self._strings(table, "must_not", required=False)
        if len(self.problems) > before or name is None or severity is None or audience is None:
            return
        self.groups.append(
            SensitiveGroup(
                name=name,
                severity=Severity[severity.upper()],
                audience=Audience(audience),
                words=words,
                recipients=recipients,
                allow=allow,
                must_not=must_not,
                source=f"{self._file}:{self._span[0]}",
            )
        )

    def _words(self, table: dict[str, Any]) -> tuple[Word, ...]:
        value = table.get("words")
        if value is None:
            self._problem(self._span[0], "缺少 words（敏感词列表）")
            return ()
        if not isinstance(value, list):
            self._at_key("words", 'words 必须是列表，例如 words = ["维权", "投诉"]')
            return ()
        if not value:
            self._at_key("words", "words 不能为空")
            return ()
        words: list[Word] = []
        seen: dict[tuple[str, tuple[int, ...]], str] = {}
        counts: dict[str, int] = {}
        for item in value:
            word = self._word(item)
            if word is None:
                continue
            counts[word.text] = counts.get(word.text, 0) + 1
            folded = _fold(word.text)
            if folded in seen:
                line = self._loc.value(self._span, "words", word.text, counts[word.text])
                same = "" if seen[folded] == word.text else f"（与 {seen[folded]!r} 算同一个词）"
                self._problem(
                    line,
                    f"词语 {word.text!r} 在本组出现了两次{same}；"
                    "要给它加选项，请只保留带选项的那一项",
                )
                continue
            seen[folded] = word.text
            words.append(word)
        return tuple(words)

    def _word_text(self, text: Any, line: int, empty: str) -> str | None:
        """The stripped word, or None after reporting why it cannot be used."""
        if not isinstance(text, str) or not text.strip():
            self._problem(line, empty)
            return None
        if not _matchable(text):
            self._problem(line, _UNMATCHABLE.format(text.strip()))
            return None
        return text.strip()

    def _word(self, item: Any) -> Word | None:
        at = self._loc.key(self._span, "words")
        if isinstance(item, str):
            at = self._loc.value(self._span, "words", item.strip()) if item.strip() else at
            text = self._word_text(item, at, "words 里有空字符串")
            return Word(text) if text else None
        if not isinstance(item, dict):
            self._problem(at, f'words 的每一项必须是字符串或 {{ word = "..." }}，现在是 {item!r}')
            return None
        if isinstance(item.get("word"), str):
            at = self._loc.value(self._span, "words", item["word"])
        problems = len(self.problems)
        for key in item:
            if key not in _WORD_KEYS:
                self._problem(at, f"词语选项里有未知的键 {key!r}{key_hint(key, _WORD_KEYS)}")
        text = self._word_text(item.get("word"), at, "词语选项缺少 word（非空字符串）")
        boundary = item.get("boundary")
        allowed = tuple(b.value for b in Boundary)
        if boundary is not None and boundary not in allowed:
            self._problem(at, f"boundary 只能是 {_choices(allowed)}，现在是 {boundary!r}")
        flags = {key: item.get(key, default) for key, default in _WORD_FLAGS.items()}
        for key, value in flags.items():
            if not isinstance(value, bool):
                self._problem(at, f"{key} 只能是 true 或 false，现在是 {value!r}")
        if text is None or len(self.problems) > problems:
            return None
        return Word(text, Boundary(boundary) if boundary else None, **flags)

    # -- [[reply]] --------------------------------------------------------------------------

    def _check_reply(self, table: dict[str, Any]) -> None:
        before = len(self.problems)
        self._unknown_keys(table, _REPLY_KEYS, "[[reply]] ")
        name = self._name(table, self._reply_names, "自动回复")
        keywords = self._strings(table, "keywords", required=True)
        if len({_fold(k) for k in keywords}) < len(keywords):
            self._at_key("keywords", "keywords 里有重复的关键词")
        match = self._enum(table, "match", _MATCHES, "contains")
        priority = self._int(table, "priority")
        cooldown = self._int(table, "cooldown_s", minimum=0)
        hours = self._hours(table.get("active_hours", []))
        must_not = self._strings(table, "must_not", required=False)
        handoff = table.get("handoff", False)
        if not isinstance(handoff, bool):
            self._at_key("handoff", f"handoff 只能是 true 或 false，现在是 {handoff!r}")
        if "reply" in table:
            content = parse_reply(table["reply"], lambda m: self._at_key("reply", m))
        else:
            content = None
            self._problem(self._span[0], "缺少 reply（回复内容）")
        if len(self.problems) > before or name is None or match is None or content is None:
            return
        self.replies.append(
            ReplyRule(
                name=name,
                keywords=keywords,
                match=cast(Literal["exact", "contains", "all"], match),
                reply=content,
                priority=priority,
                cooldown_s=cooldown,
                active_hours=hours,
                source=f"{self._file}:{self._span[0]}",
                handoff=bool(handoff),
                must_not=must_not,
            )
        )

    def _hours(self, value: Any) -> tuple[TimeRange, ...]:
        if not isinstance(value, list):
            self._at_key("active_hours", 'active_hours 必须是列表，例如 ["09:00-18:00"]')
            return ()
        ranges: list[TimeRange] = []
        for item in value:
            match = _HOURS.match(item) if isinstance(item, str) else None
            numbers = [int(g) for g in match.groups()] if match else []
            if (
                not match
                or numbers[0] > 23
                or numbers[2] > 23
                or numbers[1] > 59
                or numbers[3] > 59
            ):
                line = self._loc.value(self._span, "active_hours", str(item))
                self._problem(line, f'时间段 {item!r} 无效，应写成 "09:00-18:00"（24 小时制）')
                continue
            start, end = time(numbers[0], numbers[1]), time(numbers[2], numbers[3])
            if start == end:
                self._at_key("active_hours", f"时间段 {item!r} 的开始和结束相同")
                continue
            ranges.append(TimeRange(start, end))
        return tuple(ranges)
