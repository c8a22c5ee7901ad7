"""The ``reply = ...`` value of a ``[[reply]]`` rule: text, menu or link (see :mod:`rules.loader`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from rules.models import LinkReply, MenuOption, MenuReply, ReplyContent, TextReplyContent

__all__ = ["MAX_MENU_OPTIONS", "key_hint", "parse_reply"]

#: WeCom's kf ``msgmenu`` shows at most 10 options.
MAX_MENU_OPTIONS = 10


def key_hint(key: str, known: tuple[str, ...]) -> str:
    """The "did you mean" suffix for an unknown key: the closest known key, else all of them."""
    close = difflib.get_close_matches(key, known, n=1)
    return f"（是不是 {close[0]}？）" if close else f"（可用的键：{', '.join(known)}）"


def parse_reply(value: Any, report: Callable[[str], None]) -> ReplyContent | None:
    """Validate and build a reply content; every problem goes to ``report`` (None is returned)."""
    return _Parser(report).content(value)


class _Parser:
    def __init__(self, report: Callable[[str], None]) -> None:
        self._report = report

    def content(self, value: Any) -> ReplyContent | None:
        """The reply content of ``reply = ...``, or None after reporting what is wrong."""
        if isinstance(value, str):  # reply = "..." is short for reply = { text = "..." }
            value = {"text": value}
        if not isinstance(value, dict) or len(value) != 1:
            self._report("reply 必须是 { text = ... }、{ menu = ... } 或 { link = ... } 之一")
            return None
        ((kind, body),) = value.items()
        if kind == "text":
            if isinstance(body, str) and body.strip():
                return TextReplyContent(body)
            self._report("回复文字不能为空")
        elif kind == "menu":
            return self._menu(body)
        elif kind == "link":
            return self._link(body)
        else:
            self._report(f"未知的回复类型 {kind!r}（可用：text, menu, link）")
        return None

    def _fields(
        self, body: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> dict[str, str] | None:
        if not isinstance(body, dict):
            self._report(f'{what} 必须是表，例如 {{ {required[0]} = "..." }}')
            return None
        ok = True
        for key in body:
            if key not in required + optional and not (what == "menu" and key == "options"):
                self._report(f"{what} 里有未知的键 {key!r}{key_hint(key, required + optional)}")
                ok = False
        for key in required:
            if not isinstance(body.get(key), str) or not body[key].strip():
                self._report(f"{what} 缺少 {key}（非空字符串）")
                ok = False
        for key in optional:
            if key in body and not isinstance(body[key], str):
                self._report(f"{what} 的 {key} 必须是字符串")
                ok = False
        return {k: v for k, v in body.items() if isinstance(v, str)} if ok else None

    def _menu(self, body: Any) -> MenuReply | None:
        fields = self._fields(body, "menu", ("head",), ("tail",))
        options = body.get("options") if isinstance(body, dict) else None
        if not isinstance(options, list) or not options:
            self._report("menu 缺少 options（至少一个选项）")
            return None
        if len(options) > MAX_MENU_OPTIONS:
            self._report(f"menu 最多 {MAX_MENU_OPTIONS} 个选项，现在有 {len(options)} 个")
            return None
        parsed: list[MenuOption] = []
        for option in options:
            if (
                not isinstance(option, dict)
                or set(option) != {"id", "text"}
                or not all(isinstance(v, str) and v.strip() for v in option.values())
            ):
                self._report(f'菜单选项必须写成 {{ id = "1", text = "..." }}，现在是 {option!r}')
                return None
            parsed.append(MenuOption(option["id"], option["text"]))
        if len({o.id for o in parsed}) < len(parsed):
            self._report("菜单选项的 id 有重复")
            return None
        if fields is None:
            return None
        return MenuReply(fields["head"], tuple(parsed), fields.get("tail", ""))

    def _link(self, body: Any) -> LinkReply | None:
        fields = self._fields(body, "link", ("title", "url"), ("description", "pic_url"))
        if fields is None:
            return None
        if not fields["url"].startswith(("https://", "http://")):
            self._report(f"链接地址必须以 https:// 或 http:// 开头，现在是 {fields['url']!r}")
            return None
        return LinkReply(
            fields["title"], fields["url"], fields.get("description", ""), fields.get("pic_url", "")
        )
