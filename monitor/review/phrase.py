"""The allow-list phrase offered for a false positive: the words around a hit, and the check of
what a reviewer typed instead. Pure (jieba's dictionary is the only thing read).

A hit that a reviewer called 误报 usually sits inside an ordinary longer word: 垃圾 in 垃圾分类,
投诉 in 投诉建议箱. The group's allow-list (``rules.models.SensitiveGroup.allow``) drops a hit
that lies inside one of its phrases, so the offer is the smallest natural phrase around the hit:
the jieba tokens that cover it, and when they are the hit itself, one neighbouring token too
(the right one first: 垃圾 -> 垃圾分类; at a clause end the left one: 要投诉). It never crosses
clause punctuation or whitespace, is never shorter than the hit, and is at most
:data:`SUGGEST_MAX` characters unless the covering tokens alone are longer.
"""

from __future__ import annotations

import unicodedata

from rules.hit_filters import CLAUSE_BREAKS, segmenter
from rules.normalize import normalize

__all__ = ["PHRASE_MAX", "SUGGEST_MAX", "PhraseError", "check_phrase", "suggest_phrase"]

SUGGEST_MAX = 12
"""Longest phrase suggested by extending the hit with a neighbouring token."""
PHRASE_MAX = 40
"""Longest phrase accepted (characters): an allow-list phrase is a few words, not a message."""


class PhraseError(ValueError):
    """A phrase that cannot go into an allow-list; the message is shown to the reviewer."""


def _stops(ch: str) -> bool:
    """Where a phrase ends: clause punctuation and whitespace."""
    return ch in CLAUSE_BREAKS or ch.isspace()


def _wordy(token: str) -> bool:
    return any(ch.isalnum() for ch in token) and not any(_stops(ch) for ch in token)


def suggest_phrase(text: str, start: int, end: int) -> str:
    """The phrase around the hit ``text[start:end]`` to offer for the allow-list (see the module
    docstring); the hit itself when nothing around it makes a phrase."""
    if not 0 <= start < end <= len(text):
        raise ValueError(f"span {start}:{end} outside a text of {len(text)} characters")
    lo = start
    while lo > 0 and not _stops(text[lo - 1]):
        lo -= 1
    hi = end
    while hi < len(text) and not _stops(text[hi]):
        hi += 1
    tokens = [(s + lo, e + lo) for _, s, e in segmenter().tokenize(text[lo:hi], "default", False)]
    cover = [i for i, (s, e) in enumerate(tokens) if s < end and e > start]
    if not cover:
        return text[start:end]
    first, last = cover[0], cover[-1]
    s0, e0 = min(tokens[first][0], start), max(tokens[last][1], end)
    if (s0, e0) == (start, end):
        right = tokens[last + 1] if last + 1 < len(tokens) else None
        left = tokens[first - 1] if first > 0 else None
        if right is not None and _wordy(text[right[0] : right[1]]) and right[1] - s0 <= SUGGEST_MAX:
            e0 = right[1]
        elif left is not None and _wordy(text[left[0] : left[1]]) and e0 - left[0] <= SUGGEST_MAX:
            s0 = left[0]
    phrase = text[s0:e0]
    return phrase if len(phrase) <= PHRASE_MAX else text[start:end]


def check_phrase(phrase: str, *, hit_text: str = "", existing: tuple[str, ...] = ()) -> str:
    """``phrase`` stripped, if it may go into an allow-list; else :class:`PhraseError`.

    Args:
        phrase: what the reviewer typed.
        hit_text: the matched text of the hit it is for; the phrase must contain it.
        existing: the group's allow-list as it is (a phrase already in it is refused).
    """
    phrase = phrase.strip()
    if not phrase:
        raise PhraseError("请填写要加入白名单的短语")
    if len(phrase) > PHRASE_MAX:
        raise PhraseError(f"短语最多 {PHRASE_MAX} 个字")
    if any(unicodedata.category(ch)[0] == "C" for ch in phrase):
        raise PhraseError("短语不能包含换行、制表符或其他控制字符")
    if not normalize(phrase).text:
        raise PhraseError("短语只有空格、标点或表情符号，匹配时会被忽略")
    if hit_text and hit_text not in phrase:
        raise PhraseError(f"短语必须包含命中的文字「{hit_text}」")
    if hit_text and normalize(phrase).text == normalize(hit_text).text:
        raise PhraseError("短语不能只是命中词本身：那样会让这个词在任何地方都不再报警")
    if phrase in existing:
        raise PhraseError("这个短语已经在白名单里了")
    return phrase
