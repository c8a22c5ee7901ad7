"""Pure false-positive filters applied to candidate hits in normalised text.

Each takes normalised coordinates (``a``, ``b`` = the hit's slice of ``Normalized.text``):

- ``crosses_token``: the hit cuts across a jieba token (小费 in 减小/费用, 消协 in 取消/协议). A
  token that *contains* the whole hit (垃圾 in 垃圾桶) does not cut across it; allow-lists handle
  that case, so a real risk word inside a longer token (投诉 in 投诉电话) still counts.
- ``ascii_edges_ok``: an ASCII word never matches inside a longer ASCII word or number (vx in
  VXLAN, 12315 in 123156). A removed separator between the hit and its neighbour is a boundary.
- ``occurrences`` / ``inside_any``: allow-list phrases suppress only the hits inside them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from functools import cache
from typing import Any

from rules.normalize import Normalized

__all__ = [
    "CLAUSE_BREAKS",
    "ascii_edges_ok",
    "clause_bounds",
    "clause_span",
    "crosses_token",
    "inside_any",
    "occurrences",
    "pinyin_edges_ok",
    "span_bounds",
    "token_bounds",
]


@cache
def _segmenter() -> Any:
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
    tokens = _segmenter().tokenize(text[lo:hi], "default", False)
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


def _alnum_kind(ch: str) -> str:
    if ch.isascii() and ch.isalpha():
        return "alpha"
    if ch.isascii() and ch.isdigit():
        return "digit"
    return ""


def ascii_edges_ok(norm: Normalized, a: int, b: int) -> bool:
    """False when an ASCII edge of the hit continues an ASCII word or number (vx in vxlan).

    A letter next to a letter, or a digit next to a digit, continues the word; ``vx123`` and
    ``a12315`` are fine. Characters removed between the two (``vx lan``) make a boundary.
    """
    text = norm.text
    left = _alnum_kind(text[a])
    if left and a > 0 and norm.ends[a - 1] == norm.starts[a] and _alnum_kind(text[a - 1]) == left:
        return False
    right = _alnum_kind(text[b - 1])
    return not (
        right
        and b < len(text)
        and norm.ends[b - 1] == norm.starts[b]
        and _alnum_kind(text[b]) == right
    )


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


@cache
def _syllables() -> frozenset[str]:
    """Every toneless pinyin syllable pypinyin knows (``kuang``, ``suan``...)."""
    from pypinyin.pinyin_dict import pinyin_dict  # noqa: PLC0415 - only pinyin rules need it

    from rules.normalize import normalize_word  # noqa: PLC0415 - strips the tone marks

    return frozenset(normalize_word(p) for v in pinyin_dict.values() for p in v.split(","))


def _letters(norm: Normalized, lo: int, hi: int) -> str:
    """``text[lo:hi]`` if it is adjacent ASCII letters in the original, else ""."""
    if lo < 0 or hi > len(norm.text):
        return ""
    chunk = norm.text[lo:hi]
    adjacent = all(norm.ends[i] == norm.starts[i + 1] for i in range(lo, hi - 1))
    return chunk if chunk.isascii() and chunk.isalpha() and adjacent else ""


def pinyin_edges_ok(norm: Normalized, a: int, b: int, first: str, last: str) -> bool:
    """False when a pinyin hit cuts a syllable: ``tuikuan`` in ``tuikuang``, ``tousu`` in
    ``tousuan``. ``first``/``last`` are the hit's edge syllables ("" for a hanzi edge)."""
    syllables = _syllables()
    for k in (1, 2):
        if last and b < len(norm.text) and norm.ends[b - 1] == norm.starts[b]:
            tail = _letters(norm, b, b + k)
            if tail and last + tail in syllables:
                return False
        if first and a > 0 and norm.ends[a - 1] == norm.starts[a]:
            head = _letters(norm, a - k, a)
            if head and head + first in syllables:
                return False
    return True
