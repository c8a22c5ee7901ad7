"""The logic behind ``run_bot.py rules scan|check|backtest`` (run_bot.py only parses arguments).

``rules backtest`` runs a draft rule set over the archived messages and prints hit counts per word
with up to three sample messages each, so an operator sees what a new word would flag before it goes
live.

``rules scan`` reads stdin one line at a time and writes exactly one JSON line per input line, flushed
at once, so it can sit in a pipe and output line N always answers input line N:

- a line whose first non-blank character is ``{`` is a JSON object ``{"text": ..., "author": ...}``
  (``author`` optional: ``customer`` | ``staff`` | ``any``, default ``any`` = every group applies);
  if it is not valid JSON or has no string ``text``, the answer is
  ``{"text": <the line>, "hits": [], "error": "..."}`` (the line is not scanned as plain text: spans
  over a broken JSON line would mean nothing);
- any other line (an empty one included) is the message text itself, without its line ending.

The answer is ``{"text": ..., "hits": [{"word", "start", "end", "group", "severity"}]}`` where
``text[start:end]`` is the matched span of the original text (Python str indices), ``word`` the
canonical word of the rule and ``severity`` the lower-case name; a hit that is not the word
itself also says how it matched, ``"via": "pinyin" | "homophone" | "initials" | "lookalike" |
"numerals"``. Chinese stays unescaped (UTF-8).

``rules scan --conversation`` reads one conversation per line, ``{"messages": [{"from":
"customer"|"staff", "text": ...}, ...]}`` in time order, and answers ``{"hits": [{"word", "parts":
[{"message", "start", "end"}], "group", "severity"[, "via"]}]}``: each part indexes
``messages[i]["text"]``; a word split over messages (rules/conversation.py) has several parts and
``"via": "split"``. ``rules explain WORD`` prints the spellings a word is matched in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rules.conversation import ConversationHit, scan_conversation
from rules.errors import RuleFileError, RulesError
from rules.loader import load_rules, word_list_rules
from rules.matcher import Matcher, compile_rules
from rules.models import Audience, Hit, RuleSet, Severity

__all__ = [
    "backtest",
    "backtest_command",
    "check_command",
    "conversation_hit_json",
    "explain_command",
    "hit_json",
    "scan_command",
    "scan_conversation_line",
    "scan_line",
    "scan_stream",
]

EXIT_OK = 0
EXIT_INVALID = 1


def _utf8(stream: TextIO) -> None:
    """JSON lines are UTF-8 whatever the locale says; bad input bytes become U+FFFD, not a crash."""
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(encoding="utf-8", errors="replace")


def _report(exc: RuleFileError, out: TextIO) -> None:
    for problem in exc.problems:
        print(problem, file=out)
    print(f"发现 {len(exc.problems)} 个问题", file=out)


def hit_json(hit: Hit) -> dict[str, Any]:
    """One hit as the scan output object (``via`` only when the hit says how it matched)."""
    out: dict[str, Any] = {
        "word": hit.word,
        "start": hit.start,
        "end": hit.end,
        "group": hit.group,
        "severity": hit.severity.name.lower(),
    }
    if hit.via is not None:
        out["via"] = hit.via
    return out


def conversation_hit_json(hit: ConversationHit) -> dict[str, Any]:
    """One conversation hit as the ``scan --conversation`` output object."""
    out: dict[str, Any] = {
        "word": hit.word,
        "parts": [{"message": p.message, "start": p.start, "end": p.end} for p in hit.parts],
        "group": hit.group,
        "severity": hit.severity.name.lower(),
    }
    if hit.via is not None:
        out["via"] = hit.via
    return out


_AUTHORS = {"customer": Audience.CUSTOMER, "staff": Audience.STAFF}


def scan_conversation_line(matcher: Matcher, line: str) -> dict[str, Any]:
    """The output object for one conversation line (see the module docstring)."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return {"hits": [], "error": f"不是有效的 JSON：{exc.msg}（第 {exc.colno} 列）"}
    messages = obj.get("messages") if isinstance(obj, dict) else None
    if not isinstance(messages, list):
        return {"hits": [], "error": 'JSON 对象里缺少列表字段 "messages"'}
    parsed: list[tuple[Audience, str]] = []
    for i, message in enumerate(messages):
        text = message.get("text") if isinstance(message, dict) else None
        author = _AUTHORS.get(message.get("from", "")) if isinstance(message, dict) else None
        if not isinstance(text, str) or author is None:
            return {
                "hits": [],
                "error": f'messages[{i}] 需要字符串 "text" 和 "from"（customer 或 staff）',
            }
        parsed.append((author, text))
    return {"hits": [conversation_hit_json(h) for h in scan_conversation(matcher, parsed)]}


def scan_line(matcher: Matcher, line: str) -> dict[str, Any]:
    """The output object for one input line (see the module docstring)."""
    text = line.rstrip("\r\n")
    author = Audience.ANY
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            return {
                "text": text,
                "hits": [],
                "error": f"不是有效的 JSON：{exc.msg}（第 {exc.colno} 列）",
            }
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            return {"text": text, "hits": [], "error": 'JSON 对象里缺少字符串字段 "text"'}
        raw_author = obj.get("author", "any")
        try:
            author = Audience(raw_author)
        except ValueError:
            allowed = " | ".join(a.value for a in Audience)
            return {"text": text, "hits": [], "error": f"author 只能是 {allowed}"}
        text = obj["text"]
    hits = matcher.scan(text, author)
    return {"text": text, "hits": [hit_json(h) for h in hits]}


def scan_stream(
    matcher: Matcher, stdin: TextIO, stdout: TextIO, *, conversation: bool = False
) -> None:
    """Answer every line of ``stdin`` on ``stdout``, one flushed JSON line each (never reads ahead)."""
    answer = scan_conversation_line if conversation else scan_line
    while line := stdin.readline():
        if conversation and not line.strip():
            continue  # a blank line is no conversation
        stdout.write(json.dumps(answer(matcher, line), ensure_ascii=False) + "\n")
        stdout.flush()


def scan_command(
    *,
    rules: Sequence[str] | None,
    words: str | None,
    allow: str | None,
    stdin: TextIO,
    stdout: TextIO,
    stderr: TextIO,
    conversation: bool = False,
) -> int:
    """``rules scan``: load ``rules`` (files/folders) or the ``words``/``allow`` lists, then scan
    messages (or, with ``conversation``, conversations).

    Returns 0 after the whole input was answered, 1 when the rules or lists are invalid.
    """
    for stream in (stdin, stdout, stderr):
        _utf8(stream)
    try:
        if rules:
            ruleset = load_rules(rules)
        elif words is not None:
            ruleset = word_list_rules(words, allow)
        else:  # run_bot's argument parser makes one of them required
            raise ValueError("rules scan needs --rules or --words")
        matcher = compile_rules(ruleset)
    except RuleFileError as exc:
        _report(exc, stderr)
        return EXIT_INVALID
    except ValueError as exc:  # compile_rules: a word empty after normalisation (word lists)
        print(f"规则无法编译：{exc}", file=stderr)
        return EXIT_INVALID
    scan_stream(matcher, stdin, stdout, conversation=conversation)
    return EXIT_OK


def summary(ruleset: RuleSet) -> str:
    """One line: counts of groups, words and replies, and the version."""
    words = sum(len(g.words) for g in ruleset.groups)
    return (
        f"规则有效：{len(ruleset.groups)} 个敏感词组（共 {words} 个词），"
        f"{len(ruleset.replies)} 条自动回复，版本 {ruleset.version}"
    )


def check_command(paths: Sequence[str | Path], *, stdout: TextIO) -> int:
    """``rules check``: print every problem as ``file:line: message`` (exit 1) or a summary (exit 0).

    The rules are also compiled, so a word the matcher cannot use is reported too.
    """
    _utf8(stdout)
    try:
        ruleset = load_rules(paths)
        compile_rules(ruleset)
    except RuleFileError as exc:
        _report(exc, stdout)
        return EXIT_INVALID
    except (RulesError, ValueError) as exc:  # the loader's checks should make this unreachable
        print(f"规则无法编译：{exc}", file=stdout)
        return EXIT_INVALID
    print(summary(ruleset), file=stdout)
    return EXIT_OK


SAMPLES_PER_WORD = 3
SAMPLE_CHARS = 60


@dataclass
class _WordStats:
    group: str
    severity: Severity
    count: int = 0
    samples: list[str] = field(default_factory=list)


def backtest(matcher: Matcher, texts: Iterable[str], stdout: TextIO) -> None:
    """Count hits per (word, group) over ``texts`` and print them, most frequent first."""
    stats: dict[tuple[str, str], _WordStats] = {}
    total = flagged = 0
    for text in texts:
        total += 1
        hits = matcher.scan(text)
        flagged += bool(hits)
        for hit in hits:
            entry = stats.setdefault((hit.word, hit.group), _WordStats(hit.group, hit.severity))
            entry.count += 1
            if len(entry.samples) < SAMPLES_PER_WORD and text not in entry.samples:
                entry.samples.append(text)
    print(f"共扫描 {total} 条消息，其中 {flagged} 条有命中", file=stdout)
    for (word, _), entry in sorted(stats.items(), key=lambda kv: (-kv[1].count, kv[0])):
        label = entry.severity.name.lower()
        print(f"{word}\t{entry.count} 次\t{entry.group}（{label}）", file=stdout)
        for sample in entry.samples:
            short = sample if len(sample) <= SAMPLE_CHARS else sample[:SAMPLE_CHARS] + "…"
            print(f"    {short}", file=stdout)


def backtest_command(
    paths: Sequence[str | Path],
    *,
    texts: Iterable[str],
    stdout: TextIO,
) -> int:
    """``rules backtest``: load draft rules, scan ``texts`` (exit 0), or print problems (exit 1).

    ``texts`` come from the archive (``monitor.archived_texts``): the rules package itself does no
    I/O beyond reading rule files.
    """
    _utf8(stdout)
    try:
        matcher = compile_rules(load_rules(paths))
    except RuleFileError as exc:
        _report(exc, stdout)
        return EXIT_INVALID
    backtest(matcher, texts, stdout)
    return EXIT_OK


def explain_command(word: str, *, stdout: TextIO) -> int:
    """``rules explain WORD``: the spellings the word is matched in, by kind, so an admin sees
    (and can veto, with ``allow`` or the word's switches) what the generated ones would flag."""
    from rules.explain import explain  # noqa: PLC0415 - pypinyin and the dictionary load here

    _utf8(stdout)
    try:
        lines = explain(word)
    except ValueError as exc:
        print(f"无法解释：{exc}", file=stdout)
        return EXIT_INVALID
    for line in lines:
        print(line, file=stdout)
    return EXIT_OK
