"""Adding a phrase to a group's allow-list in the rule file that defines the group.

The edit is textual and minimal: the phrase is appended to the group's ``allow = [...]`` array
(keeping its one-line or one-item-per-line layout), or an ``allow = ["..."]`` line is added after
the group's last key; every other byte of the file stays as it was (comments, other groups,
blank lines). The edit is then checked twice before anything is written: the new text must parse
(``tomllib``) to exactly the old document with the phrase appended to that group's ``allow``, and
the whole rule set, with the new file in place of the old one, must pass the rules loader.

Writing (:func:`write_allow_phrase`) is refused when the file changed since the reviewer's
backtest (its sha256 differs from the one shown there) or cannot be written; it holds an
exclusive ``flock`` on the file while it reads, checks and swaps, and swaps atomically: a temp
file in the same folder (not ``*.toml``, so the rule loader never sees it), ``fsync``, ``rename``
over the old file, ``fsync`` of the folder. Every worker's rule watcher (``[rules]
reload_interval_s``) then sees the new mtime and size and reloads.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import tomllib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rules.errors import RuleFileError
from rules.loader import load_rules, rule_files
from rules.validate import Locator

__all__ = [
    "AllowEdit",
    "RuleEditError",
    "RuleFile",
    "add_allow_phrase",
    "find_group_file",
    "restore_rule_file",
    "sha256_hex",
    "write_allow_phrase",
]


class RuleEditError(Exception):
    """The edit was not made; ``code`` names why, ``message`` says it to the reviewer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RuleFile:
    """A rule file as read now: where it is, its text and the sha256 of its bytes."""

    path: Path
    text: str
    sha256: str
    group_allow: tuple[str, ...]
    """The group's allow-list as the file has it."""


@dataclass(frozen=True, slots=True)
class AllowEdit:
    """A phrase written into a rule file."""

    path: Path
    sha256_before: str
    sha256_after: str
    text_before: str


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _group_index(doc: dict[str, Any], group: str) -> int | None:
    tables = doc.get("group")
    if not isinstance(tables, list):
        return None
    for i, table in enumerate(tables):
        if isinstance(table, dict) and table.get("name") == group:
            return i
    return None


def find_group_file(paths: Sequence[str | Path], group: str) -> RuleFile:
    """The rule file of ``paths`` (files and folders, as ``[rules] paths``) defining ``group``.

    Raises:
        RuleEditError: no file defines it (or none can be read).
    """
    files, _ = rule_files(paths)
    for path in files:
        try:
            data = path.read_bytes()
            doc = tomllib.loads(data.decode("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        index = _group_index(doc, group)
        if index is not None:
            allow = doc["group"][index].get("allow", [])
            return RuleFile(path, data.decode("utf-8"), sha256_hex(data), tuple(map(str, allow)))
    raise RuleEditError("no_group", f"规则文件里找不到敏感词组「{group}」")


def _toml_string(value: str) -> str:
    # JSON's string escapes (\" \\ \n \t \uXXXX ...) are all valid in a TOML basic string.
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _Array:
    open: int
    close: int
    last_value_end: int
    """Offset just after the last element's last character (``open + 1`` when empty)."""
    trailing_comma: bool


def _scan_array(text: str, open_at: int) -> _Array:
    """The array literal starting at ``text[open_at] == "["``: strings, comments and nesting
    are skipped, so a ``]`` inside them does not end it."""
    depth, i, n = 0, open_at, len(text)
    last_value_end, trailing_comma = open_at + 1, False
    while i < n:
        ch = text[i]
        if ch == "#":
            i = text.find("\n", i)
            i = n if i < 0 else i
            continue
        if ch in "\"'":
            i = last_value_end = _string_end(text, i)
            trailing_comma = False
            continue
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return _Array(open_at, i, last_value_end, trailing_comma)
        if not ch.isspace():
            if ch == "," and depth == 1:
                trailing_comma = True
            elif i != open_at:
                last_value_end = i + 1
                trailing_comma = False
        i += 1
    raise RuleEditError("layout", "无法读懂 allow 数组的写法，请手动编辑规则文件")


def _string_end(text: str, i: int) -> int:
    """Offset just after the TOML string starting at ``text[i]`` (a quote)."""
    n = len(text)
    if text.startswith(('"""', "'''"), i):
        quote = text[i : i + 3]
        j = text.find(quote, i + 3)
        while j >= 0 and quote == '"""' and _escaped(text, j):
            j = text.find(quote, j + 1)
        if j < 0:
            raise RuleEditError("layout", "无法读懂 allow 数组的写法，请手动编辑规则文件")
        j += 3
        while j < n and text[j] == quote[0]:  # up to two quotes may end the content
            j += 1
        return j
    ch, j = text[i], i + 1
    while j < n and text[j] != ch and text[j] != "\n":
        j += 2 if ch == '"' and text[j] == "\\" else 1
    return j + 1


def _escaped(text: str, j: int) -> bool:
    backslashes = 0
    while j - 1 - backslashes >= 0 and text[j - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def _line_start(text: str, i: int) -> int:
    return text.rfind("\n", 0, i) + 1


def _append_to_array(text: str, array: _Array, literal: str) -> str:
    inner = text[array.open + 1 : array.close]
    if "\n" not in inner:  # one line: allow = ["a", "b"]
        if not inner.strip():
            return text[: array.open + 1] + literal + text[array.close :]
        end = array.open + 1 + len(inner.rstrip())
        sep = " " if array.trailing_comma else ", "
        return text[:end] + sep + literal + text[end:]
    close_line = _line_start(text, array.close)
    if text[close_line : array.close].strip():  # "   "c"]": the bracket closes the last line
        sep = " " if array.trailing_comma else ", "
        at = array.close if array.trailing_comma else array.last_value_end
        return text[:at] + sep + literal + text[at:]
    if array.last_value_end > array.open + 1:
        last_line = _line_start(text, array.last_value_end - 1)
        indent = re.match(r"[ \t]*", text[last_line:]).group(0)  # type: ignore[union-attr]
    else:
        indent = "    "
    if array.last_value_end > array.open + 1 and not array.trailing_comma:
        at = array.last_value_end
        text = text[:at] + "," + text[at:]
        close_line += 1
    return text[:close_line] + f"{indent}{literal},\n" + text[close_line:]


_ALLOW_KEY = re.compile(r"""^[ \t]*(?:allow|"allow"|'allow')[ \t]*=[ \t]*""", re.MULTILINE)


def add_allow_phrase(text: str, group: str, phrase: str) -> str:
    """``text`` (a rule file) with ``phrase`` appended to ``group``'s allow-list (pure).

    Raises:
        RuleEditError: the group is not in the file, or the edit could not be made safely.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleEditError("invalid", f"规则文件本身有语法错误：{exc}") from None
    index = _group_index(doc, group)
    if index is None:
        raise RuleEditError("no_group", f"这个规则文件里没有敏感词组「{group}」")
    locator = Locator(text)
    first, last = locator.table("group", index)
    lines = text.splitlines(keepends=True)
    span_start = sum(len(line) for line in lines[: first - 1])
    span_end = sum(len(line) for line in lines[:last])
    literal = _toml_string(phrase)
    found = _ALLOW_KEY.search(text, span_start, span_end)
    if found is not None and text.startswith("[", found.end()):
        new = _append_to_array(text, _scan_array(text, found.end()), literal)
    elif found is None:
        body = [
            n
            for n in range(first + 1, last + 1)
            if lines[n - 1].strip() and not lines[n - 1].lstrip().startswith("#")
        ]
        after = body[-1] if body else first
        at = sum(len(line) for line in lines[:after])
        prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
        new = text[:at] + f"{prefix}allow = [{literal}]\n" + text[at:]
    else:
        raise RuleEditError("layout", "allow 不是数组，请手动编辑规则文件")
    expected = copy.deepcopy(doc)
    table = expected["group"][index]
    table["allow"] = [*table.get("allow", []), phrase]
    try:
        check = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        check = None
    if check != expected:
        raise RuleEditError("layout", "无法安全地自动修改这个规则文件，请手动编辑")
    return new


def write_allow_phrase(
    paths: Sequence[str | Path], group: str, phrase: str, expected_sha256: str
) -> AllowEdit:
    """Add ``phrase`` to ``group``'s allow-list in its rule file, atomically (module docstring).

    Raises:
        RuleEditError: ``changed`` (the file's sha256 is not ``expected_sha256``), ``not_writable``,
            ``invalid`` (the rules would not load), ``layout``, ``no_group``.
    """
    target = find_group_file(paths, group).path
    folder = target.parent
    try:
        fd = os.open(target, os.O_RDONLY)
    except OSError as exc:
        raise RuleEditError("not_writable", f"无法打开规则文件 {target}：{exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = target.read_bytes()
        before = sha256_hex(data)
        if before != expected_sha256:
            raise RuleEditError(
                "changed", f"规则文件 {target.name} 在回测之后被修改过，请重新回测后再确认"
            )
        if not (os.access(target, os.W_OK) and os.access(folder, os.W_OK)):
            raise RuleEditError(
                "not_writable", f"服务没有写入 {target} 的权限，请让运维手动加入这个短语"
            )
        text = data.decode("utf-8")
        new = add_allow_phrase(text, group, phrase).encode("utf-8")
        tmp = folder / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
        _write_synced(tmp, new, os.fstat(fd).st_mode & 0o7777)
        try:
            _validate_with(paths, target, tmp)
            if os.stat(target).st_ino != os.fstat(fd).st_ino or target.read_bytes() != data:
                raise RuleEditError("changed", f"规则文件 {target.name} 刚刚被修改过，请重新回测")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        _fsync_dir(folder)
        return AllowEdit(target, before, sha256_hex(new), text)
    finally:
        os.close(fd)  # also releases the lock


def restore_rule_file(edit: AllowEdit) -> bool:
    """Put the file back as it was before ``edit`` if it is still as ``edit`` left it (used when
    the change could not be recorded); False when it changed since and was left alone."""
    path = edit.path
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if sha256_hex(path.read_bytes()) != edit.sha256_after:
            return False
        tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
        _write_synced(tmp, edit.text_before.encode("utf-8"), os.fstat(fd).st_mode & 0o7777)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return True
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes, mode: int) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise RuleEditError(
            "not_writable", f"无法在 {path.parent} 里写入临时文件：{exc.strerror}"
        ) from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _validate_with(paths: Sequence[str | Path], target: Path, replacement: Path) -> None:
    """The rule set of ``paths`` with ``replacement`` read in place of ``target`` must load."""
    files, _ = rule_files(paths)
    swapped = [replacement if f.resolve() == target.resolve() else f for f in files]
    try:
        load_rules(swapped)
    except RuleFileError as exc:
        problems = "；".join(p.message for p in exc.problems[:3])
        raise RuleEditError("invalid", f"修改后的规则无法通过检查：{problems}") from None
