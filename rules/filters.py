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

import logging
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
def _jieba() -> Any:
    """jieba's default tokenizer with its dictionary loaded (once, on first use)."""
    import jieba  # noqa: PLC0415 - importing and loading jieba takes ~1 s; only the slow path needs it

    # jieba logs "Building prefix dict..." on init; the library's own setter keeps it quiet.
    jieba.setLogLevel(logging.WARNING)
    jieba.dt.initialize()
    return jieba.dt


def token_bounds(text: str) -> frozenset[int]:
    """Offsets in ``text`` where a jieba token starts or ends (0 and ``len(text)`` included).

    HMM is off: its guesses glue unknown characters into tokens that would cut real hits, and
    the corpus measurement (docs/benchmarks.md) is better without it. Only messages that reach the
    exact path (a few percent) are segmented.
    """
    bounds = {0}
    pos = 0
    for token in _jieba().cut(text, HMM=False):
        pos += len(token)
        bounds.add(pos)
    return frozenset(bounds)


#: Sentence punctuation: a clause boundary, so segmentation need not look past it. Spaces and the
#: like are not in it: they are what evasions put inside words.
CLAUSE_BREAKS = frozenset("，。！？；：、,.!?;:\n\r")


def clause_span(norm: Normalized, source: str, a: int, b: int) -> tuple[int, int]:
    """The clause of ``norm.text`` holding the hit ``[a, b)``, whose original is ``source``.

    A chat message is many short clauses; jieba's cost grows with the text it is given, so only the
    hit's clause is segmented. Clause edges are positions of ``norm.text`` where the original had
    sentence punctuation between two kept characters; edges inside the hit are ignored (the
    punctuation may itself be the evasion, 维，权).
    """
    starts, ends = norm.starts, norm.ends

    def is_break(i: int) -> bool:
        return any(c in CLAUSE_BREAKS for c in source[ends[i - 1] : starts[i]])

    lo = a
    while lo > 0 and not is_break(lo):
        lo -= 1
    hi = b
    n = len(norm.text)
    while hi < n and not is_break(hi):
        hi += 1
    return lo, hi


def clause_bounds(norm: Normalized, source: str, a: int, b: int) -> frozenset[int]:
    """Token boundaries of the clause holding the hit ``[a, b)``, in ``norm`` coordinates."""
    lo, hi = clause_span(norm, source, a, b)
    return span_bounds(norm.text, lo, hi)


def span_bounds(text: str, lo: int, hi: int) -> frozenset[int]:
    """Token boundaries of ``text[lo:hi]`` segmented alone, in ``text`` coordinates."""
    return frozenset(lo + x for x in token_bounds(text[lo:hi]))


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
