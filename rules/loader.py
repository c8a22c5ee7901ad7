"""Read rule files (TOML) and plain word lists into a validated :class:`~rules.models.RuleSet`.

The only I/O here is reading the files named. Every problem found is collected and raised together as
:class:`~rules.errors.RuleFileError`, each one ``file:line: message`` (tomllib gives no positions for
values, so a semantic problem points at the line of its key, else of its ``[[group]]``/``[[reply]]``).

Rule file format (a ``rules/samples/*.toml`` file starts with the same description, in Chinese)::

    [[group]]                      # a sensitive-word group: hits -> archive + alert
    name = "客户维权风险"           # required, unique across all files
    severity = "high"              # required: low | medium | high | critical
    audience = "customer"          # customer | staff | any (default any): whose messages it checks
    words = [                      # required, non-empty; a word at most once per group
        "维权",
        { word = "消协", boundary = "word" },   # substring | word (default: the matcher's);
                                                # word: a hit may not split a segmented word
        { word = "曝光", pinyin = true },        # also match pinyin: "baoguang", "bao光"
    ]
    recipients = ["zhangsan"]      # optional WeCom userids; empty = [alerts].managers
    allow = ["投诉建议箱"]          # optional: a hit inside one of these phrases does not count
    must_not = ["测试"]             # optional: any of these in the message silences the group

    [[reply]]                      # an automatic answer to a customer
    name = "转人工"                 # required, unique across all files
    keywords = ["人工", "转人工"]    # required, non-empty
    match = "contains"             # exact | contains | all (default contains)
    priority = 100                 # higher wins; ties keep file order (default 0)
    reply = { text = "..." }       # or "..." for short, or one of:
    # reply = { menu = { head = "...", options = [{ id = "1", text = "..." }], tail = "..." } }
    # reply = { link = { title = "...", url = "https://...", description = "...", pic_url = "..." } }
    cooldown_s = 0                 # seconds before the same customer gets it again (default 0)
    active_hours = ["09:00-18:00"] # optional local-time windows; "22:00-06:00" spans midnight
    handoff = true                 # optional: hand the customer over to a human servicer
    must_not = ["人工智能"]          # optional: any of these in the message and the rule stays silent

A path given to :func:`load_rules` may be a file or a folder (every ``*.toml`` inside, sorted by name).
``RuleSet.version`` is the first 12 hex digits of a sha256 over each file's name and bytes in load
order, so the same content gives the same version on every worker, whatever the folder's location.

Word lists (``rules scan --words/--allow``) are plain UTF-8 files, one entry per line; blank lines and
lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path

from rules.errors import Problem, RuleFileError
from rules.models import Audience, RuleSet, SensitiveGroup, Severity, Word
from rules.validate import Locator, Validator

__all__ = [
    "WORD_LIST_GROUP",
    "WORD_LIST_SEVERITY",
    "load_rules",
    "load_word_list",
    "rule_files",
    "word_list_rules",
]

#: Group name of the single group built from a plain word list (``rules scan --words``).
WORD_LIST_GROUP = "words"
#: A plain list carries no severity; HIGH, since a list handed to ``scan`` is words one cares about.
WORD_LIST_SEVERITY = Severity.HIGH

_TOML_POS = re.compile(r"\(at line (\d+), column \d+\)$")


def rule_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Expand ``paths`` to the rule files to load, in load order, plus problems with the paths.

    A folder contributes its ``*.toml`` files sorted by name (not recursive); a missing path or a
    folder without rule files is a problem.
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.toml") if p.is_file())
            if not found:
                problems.append(Problem(str(path), 1, "文件夹里没有 .toml 规则文件"))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem(str(path), 1, "找不到这个文件或文件夹"))
    return files, problems


def load_rules(paths: Sequence[str | Path]) -> RuleSet:
    """Load and validate rule files and folders into one :class:`RuleSet`.

    Raises:
        RuleFileError: with every problem found in every file (nothing is returned half-loaded).
    """
    files, problems = rule_files(paths)
    if not files and not problems:
        problems.append(Problem("(rules)", 1, "没有指定任何规则文件"))
    validator = Validator()
    digest = hashlib.sha256()
    for path in files:
        name = str(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            problems.append(Problem(name, 1, f"无法读取：{exc.strerror or exc}"))
            continue
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            problems.append(Problem(name, line, "不是 UTF-8 编码的文本，请另存为 UTF-8"))
            continue
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(_syntax_problem(name, text, exc))
            continue
        validator.check_file(name, doc, Locator(text))
        problems.extend(validator.problems)  # keep the report in file order
        validator.problems.clear()
    if problems:
        raise RuleFileError(problems)
    return RuleSet(
        groups=tuple(validator.groups),
        replies=tuple(validator.replies),
        version=digest.hexdigest()[:12],
    )


def _syntax_problem(name: str, text: str, exc: tomllib.TOMLDecodeError) -> Problem:
    message = str(exc)
    match = _TOML_POS.search(message)
    if match:
        line = int(match.group(1))
        message = message[: match.start()].rstrip()
    else:  # "(at end of document)": point at the last line
        line = max(1, len(text.splitlines()))
        message = message.replace("(at end of document)", "").rstrip() + "（到文件末尾仍未结束）"
    return Problem(name, line, f"TOML 语法错误：{message}")


def load_word_list(path: str | Path) -> tuple[str, ...]:
    """Read a plain word list: one entry per line, blank and ``#`` lines skipped, repeats dropped.

    Raises:
        RuleFileError: the file is missing, unreadable or not UTF-8.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise RuleFileError([Problem(name, 1, f"无法读取：{exc.strerror or exc}")]) from None
    try:
        text = data.decode("utf-8-sig")  # tolerate the BOM Windows editors like to add
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RuleFileError([Problem(name, line, "不是 UTF-8 编码的文本")]) from None
    words: dict[str, None] = {}
    for raw in text.splitlines():
        entry = raw.strip()
        if entry and not entry.startswith("#"):
            words.setdefault(entry, None)
    return tuple(words)


def word_list_rules(words_path: str | Path, allow_path: str | Path | None = None) -> RuleSet:
    """One group (:data:`WORD_LIST_GROUP`, :data:`WORD_LIST_SEVERITY`, audience any) from word lists.

    Every word uses the engine's default options; ``allow_path`` gives the group's allow-list.
    """
    words = load_word_list(words_path)
    if not words:
        raise RuleFileError([Problem(str(words_path), 1, "词表是空的")])
    allow = load_word_list(allow_path) if allow_path is not None else ()
    digest = hashlib.sha256()
    for item in (words, allow):
        digest.update("\n".join(item).encode() + b"\0")
    group = SensitiveGroup(
        name=WORD_LIST_GROUP,
        severity=WORD_LIST_SEVERITY,
        audience=Audience.ANY,
        words=tuple(Word(w) for w in words),
        allow=allow,
        source=f"{words_path}:1",
    )
    return RuleSet(groups=(group,), version=digest.hexdigest()[:12])
