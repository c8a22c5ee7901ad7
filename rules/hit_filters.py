"""Pure false-positive filters applied to candidate hits in normalised text.

Each takes normalised coordinates (``a``, ``b`` = the hit's slice of ``Normalized.text``):

- ``crosses_token``: the hit cuts across a jieba token (小费 in 减小/费用, 消协 in 取消/协议). A
  token that *contains* the whole hit (垃圾 in 垃圾桶) does not cut across it; allow-lists handle
  that case, so a real risk word inside a longer token (投诉 in 投诉电话) still counts.
- ``crosses_clause``: clause punctuation (，。！？；：…, and ``.`` before a space) between two
  characters of the hit: the end of one clause and the start of the next never make a word
  (放假，货 is no 假货). Other punctuation (、 - . * ~) stays a separator evasions insert.
- ``ascii_edges_ok``: an ASCII word never matches inside a longer ASCII word or number (vx in
  VXLAN, 12315 in 123156), nor glued to a number (a letter next to a digit is a model number:
  XB250, QV8, SB-300). A removed separator between the hit and its neighbour is a boundary.
- ``tight_ok``: generated spellings (pinyin, homophones, initials) are written as one run: no
  removed character inside, no collapsed repeat, only whitespace between pinyin units.
- ``initials_ok``: an initials hit is a standalone Latin token, not a file type or URL part.
- ``replaced_in_word``: a homophone's replaced character belongs to a longer dictionary word
  (威信很高, 红宝石): an ordinary word, not an evasion.
- ``occurrences`` / ``inside_any``: allow-list phrases suppress only the hits inside them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from functools import cache
from typing import Any

from rules.normalize import CLAUSE_SEPARATORS, Normalized

__all__ = [
    "CLAUSE_BREAKS",
    "ascii_edges_ok",
    "clause_bounds",
    "clause_span",
    "crosses_clause",
    "crosses_token",
    "initials_ok",
    "inside_any",
    "occurrences",
    "replaced_in_word",
    "segmenter",
    "span_bounds",
    "tight_ok",
    "token_bounds",
]


@cache
def segmenter() -> Any:
    """The jieba-rs tokenizer (``rjieba``) with jieba's default dictionary, loaded once.

    jieba-rs is jieba's algorithm and dictionary compiled: without HMM it cuts exactly as
    ``jieba.cut(..., HMM=False)`` does (``tests/test_segment.py`` holds it to that) at a tenth
    of the cost, which matters because segmentation is most of the cost of a real hit.
    """
    import rjieba  # noqa: PLC0415 - loading the dictionary takes a moment; only hits need it

    return rjieba.Jieba()


def token_bounds(text: str) -> frozenset[int]:
    """Offsets in ``text`` where a jieba token starts or ends (0 and ``len(text)`` included).

    HMM is off: its guesses glue unknown characters into tokens that would cut real hits, and
    the corpus measurement (docs/benchmarks.md) is better without it. Only messages that reach the
    exact path (a few percent) are segmented.
    """
    return span_bounds(text, 0, len(text))


#: Sentence punctuation: a clause boundary, so segmentation need not look past it. Spaces and the
#: like are not in it: they are what evasions put inside words.
CLAUSE_BREAKS = frozenset("，。！？；：、,.!?;:\n\r")
_BREAK_CLASS = "[" + re.escape("".join(sorted(CLAUSE_BREAKS))) + "]"
# Greedy: a match of the text before a position ends just after its last break.
_LAST_BREAK = re.compile(".*" + _BREAK_CLASS, re.DOTALL)
_NEXT_BREAK = re.compile(_BREAK_CLASS)


def clause_span(norm: Normalized, source: str, a: int, b: int) -> tuple[int, int]:
    """The clause of ``norm.text`` holding the hit ``[a, b)``, whose original is ``source``.

    A chat message is many short clauses; jieba's cost grows with the text it is given, so only the
    hit's clause is segmented. Clause edges are positions of ``norm.text`` where the original had
    sentence punctuation between two kept characters; edges inside the hit are ignored (the
    punctuation may itself be the evasion, 维，权). The punctuation is found by regex in the
    original and mapped back by bisection: no Python step per character.
    """
    starts, ends = norm.starts, norm.ends
    lo, end = 0, starts[a]
    while (m := _LAST_BREAK.match(source, 0, end)) is not None:
        p = m.end() - 1
        j = bisect_right(starts, p)
        if j == 0 or ends[j - 1] <= p:  # between two kept characters, not inside a collapsed run
            lo = j
            break
        end = p
    hi, pos = len(norm.text), ends[b - 1]
    while (m := _NEXT_BREAK.search(source, pos)) is not None:
        q = m.start()
        j = bisect_right(starts, q)
        if ends[j - 1] <= q:
            hi = j
            break
        pos = q + 1
    return lo, hi


def clause_bounds(norm: Normalized, source: str, a: int, b: int) -> frozenset[int]:
    """Token boundaries of the clause holding the hit ``[a, b)``, in ``norm`` coordinates."""
    lo, hi = clause_span(norm, source, a, b)
    return span_bounds(norm.text, lo, hi)


def span_bounds(text: str, lo: int, hi: int) -> frozenset[int]:
    """Token boundaries of ``text[lo:hi]`` segmented alone, in ``text`` coordinates."""
    tokens = segmenter().tokenize(text[lo:hi], "default", False)
    return frozenset([lo, *(lo + end for _, _, end in tokens)])


def crosses_token(bounds: frozenset[int], a: int, b: int) -> bool:
    """Whether a token boundary is missing at an edge of ``[a, b)`` while one lies inside it.

    An edge that is not a token boundary means a token straddles it; that token cuts across the
    hit only if it also ends (or starts) strictly inside the hit, i.e. the hit is not wholly
    contained in one token.
    """
    if a in bounds and b in bounds:
        return False
    # No boundary inside: one token covers the whole hit (垃圾 in 垃圾桶), containment.
    return any(a < x < b for x in bounds)


#: Clause punctuation: between two characters of a hit it ends one clause and starts the next.
CLAUSE_ENDS = CLAUSE_SEPARATORS + "\n\r"
# ``.`` ends a clause before whitespace or at the end; inside 套.现 or a.b it is a separator.
_CLAUSE_END = re.compile("[" + re.escape(CLAUSE_ENDS) + "]|\\.(?=\\s|$)")


def crosses_clause(norm: Normalized, source: str, a: int, b: int) -> bool:
    """Whether clause punctuation lies between two kept characters of the hit ``[a, b)``."""
    lo, hi = norm.starts[a], norm.ends[b - 1]
    if _CLAUSE_END.search(source, lo, hi) is None:  # the common case: one regex call
        return False
    ends, starts = norm.ends, norm.starts
    return any(
        _CLAUSE_END.search(source, ends[i - 1], starts[i]) is not None
        for i in range(a + 1, b)
        if ends[i - 1] < starts[i]
    )


def _ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


# A letter and a digit joined by one of these are one model number (SB-300, v2_1).
_JOINERS = "-_/."


def ascii_edges_ok(norm: Normalized, a: int, b: int, source: str | None = None) -> bool:
    """False when an ASCII edge of the hit continues an ASCII word or number.

    Any ASCII letter or digit right next to the edge continues it (vxlan, 123156, XB250, QV8);
    a removed character between them is a boundary (``vx lan``), except a joiner (- _ / .)
    between a letter and a digit, in ``source`` (the original text): ``SB-300`` is a model.
    """
    text = norm.text
    if _ascii_alnum(text[a]) and a > 0:
        if norm.ends[a - 1] == norm.starts[a] and _ascii_alnum(text[a - 1]):
            return False
        if source is not None and _glued(source, norm.starts[a], -1):
            return False
    if _ascii_alnum(text[b - 1]) and b < len(text):
        if norm.ends[b - 1] == norm.starts[b] and _ascii_alnum(text[b]):
            return False
        if source is not None and _glued(source, norm.ends[b - 1] - 1, 1):
            return False
    return True


def _glued(source: str, edge: int, step: int) -> bool:
    """Whether ``source[edge]`` (an ASCII alnum) is joined to a number or a letter of another
    kind by one joiner: ``SB-300`` (the letter B, then -, then 3)."""
    j, k = edge + step, edge + 2 * step
    if not (0 <= j < len(source) and 0 <= k < len(source)) or source[j] not in _JOINERS:
        return False
    here, there = source[edge], source[k]
    return _ascii_alnum(there) and (here.isdigit() != there.isdigit() or there.isdigit())


def tight_ok(norm: Normalized, source: str | None, a: int, b: int, breaks: tuple[int, ...]) -> bool:
    """Whether the hit is written as one run: every character of ``norm.text[a:b]`` uncollapsed,
    and nothing removed between two of them except whitespace at ``breaks`` (offsets from ``a``).
    """
    runs, starts, ends = norm.runs, norm.starts, norm.ends
    if any(runs[i] != 1 for i in range(a, b)):
        return False
    for i in range(a + 1, b):
        if ends[i - 1] < starts[i]:
            if i - a not in breaks or source is None:
                return False
            if not source[ends[i - 1] : starts[i]].isspace():
                return False
    return True


# An initials token followed by one of these names a file type or a format (ts文件, mp4格式).
_FORMAT_NOUNS = (
    "文件",
    "格式",
    "后缀",
    "扩展名",
    "类型",
    "代码",
    "脚本",
    "视频",
    "编码",
    "版本",
    "接口",
)


def initials_ok(norm: Normalized, source: str | None, a: int, b: int) -> bool:
    """Whether an initials hit (``wq``) is a standalone Latin token in Chinese text: no ASCII
    letter, digit or URL/file character (. / : @ _ - #) next to it, and not a file type (ts文件)."""
    if source is None:
        return False
    lo, hi = norm.starts[a], norm.ends[b - 1]
    before = source[lo - 1] if lo else " "
    after = source[hi] if hi < len(source) else " "
    for c in (before, after):
        if _ascii_alnum(c) or c in "./:@_-#\\=&?%":
            return False
    rest = source[hi:].lstrip()
    return not rest.startswith(_FORMAT_NOUNS)


def replaced_in_word(bounds: frozenset[int], a: int, b: int, replaced: int) -> bool:
    """Whether the replaced character at ``a + replaced`` lies in a token of two or more
    characters other than the hit itself (``bounds``: token boundaries around the hit). The
    hit as one token is a rare dictionary word (暴光): frequent ones never become spellings."""
    pos = a + replaced
    if pos in bounds and pos + 1 in bounds:
        return False
    return not (a in bounds and b in bounds and not any(a < x < b for x in bounds))


def occurrences(text: str, phrase: str) -> list[tuple[int, int]]:
    """Every (possibly overlapping) ``[start, end)`` of ``phrase`` in ``text``."""
    found = []
    i = text.find(phrase)
    while i >= 0 and phrase:
        found.append((i, i + len(phrase)))
        i = text.find(phrase, i + 1)
    return found


def inside_any(a: int, b: int, spans: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[a, b)`` lies within one of ``spans``."""
    return any(s <= a and b <= e for s, e in spans)
