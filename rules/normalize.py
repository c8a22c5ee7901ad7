"""Pure text normalisation with an offset map back to the original.

Per character: NFKC (full-width letters and digits, circled digits, compatibility ideographs),
case folding, accents stripped from Latin letters (``wéiquán`` -> ``weiquan``), traditional ->
simplified (OpenCC ``t2s``, character by character so one input character never merges with its
neighbours), then removal of characters people put between the letters of a word to break it:
spaces, punctuation, symbols (emoji included), control and format characters (zero-width space,
joiners, BOM), combining marks and variation selectors. Finally a run of the same non-ASCII
character collapses to one (``维维维权`` -> ``维权``); the run length is kept in ``runs`` so a
rule word that itself repeats a character (``谢谢``) still needs the repeat. ASCII is never
collapsed: ``110`` and ``book`` stay as they are.

The per-character mapping is one table built on first use (``char_table``) and shared by
``normalize``, ``normalize_word`` and the matcher's fast path.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

__all__ = [
    "COMMON_SEPARATORS",
    "Normalized",
    "char_table",
    "normalize",
    "normalize_word",
]

#: Separators frequent in ordinary chat. The matcher's fast path spells these out in its
#: patterns; any other removable character sends a message down the exact path.
COMMON_SEPARATORS = " ，,。.！!？?、~～…：:；;"

# Categories removed: separators (Z), punctuation (P), symbols (S: emoji, math, currency,
# modifiers), controls and format characters (Cc, Cf: ZWSP, ZWJ, BOM, bidi marks), marks (M:
# combining accents, variation selectors, the keycap). Unassigned (Cn) and private-use (Co)
# characters are kept as they are: nothing says they are filler, and keeping them keeps the
# table finite.
_REMOVED_MAJOR = frozenset("ZPSM")
_REMOVED_MINOR = frozenset(("Cc", "Cf"))
# Code points enumerated into the table; everything beyond (planes 4-13 are unassigned, 15-16
# are private use) maps to itself.
_RANGES = ((0, 0x40000), (0xE0000, 0xE1000))


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalised text and, per normalised character, the original span that produced it.

    ``text[a:b]`` corresponds to ``original[starts[a]:ends[b - 1]]``. ``runs[i]`` is how many
    original characters collapsed into ``text[i]`` (1 unless a repeat was collapsed).
    """

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    runs: tuple[int, ...] = ()

    def span(self, a: int, b: int) -> tuple[int, int]:
        """Original ``(start, end)`` of the normalised slice ``text[a:b]`` (``a < b``)."""
        return self.starts[a], self.ends[b - 1]


def _removed(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat[0] in _REMOVED_MAJOR or cat in _REMOVED_MINOR


def _fold(ch: str) -> str:
    """NFKC + case fold + Latin accent stripping + removal, for one code point (no t2s)."""
    out = []
    for c in unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold()):
        decomposed = unicodedata.normalize("NFD", c)
        if len(decomposed) > 1 and decomposed[0].isascii():
            # é -> e, ǘ -> u: pinyin typed with tone marks meets the plain form.
            c = decomposed[0]  # noqa: PLW2901
        if not _removed(c):
            out.append(c)
    return "".join(out)


@cache
def char_table() -> dict[str, str]:
    """``{char: replacement}`` for every character that normalisation changes ("" = removed).

    Built once (about a second) and never mutated afterwards; absent characters map to
    themselves.
    """
    import opencc  # noqa: PLC0415 - heavy import, needed only while the table is built

    folded: dict[str, str] = {}
    for lo, hi in _RANGES:
        for cp in range(lo, hi):
            ch = chr(cp)
            if unicodedata.category(ch) in ("Cn", "Co", "Cs"):
                continue
            out = _fold(ch)
            if out != ch:
                folded[ch] = out
    # t2s one character per line: OpenCC converts phrases, and a line break keeps each
    # character on its own, so the mapping is a per-character function.
    han = sorted(
        {c for cp in range(0x2E80, 0x40000) if (c := chr(cp)).isidentifier() and not c.isascii()}
        | {c for out in folded.values() for c in out if ord(c) >= 0x2E80}
    )
    converted = opencc.OpenCC("t2s").convert("\n".join(han)).split("\n")
    t2s = {a: b for a, b in zip(han, converted, strict=True) if a != b and len(b) == 1}
    table: dict[str, str] = {}
    for lo, hi in _RANGES:
        for cp in range(lo, hi):
            ch = chr(cp)
            out = "".join(t2s.get(c, c) for c in folded.get(ch, ch))
            if out != ch:
                table[ch] = out
    return table


#: ``fold_chars`` maps code points below this through a list (no KeyError per unmapped
#: character, which makes a dict table twice as slow); the rest pass through unchanged.
FOLD_LIMIT = 0x40000


@cache
def _fold_list() -> list[int | str]:
    out: list[int | str] = list(range(FOLD_LIMIT))
    for ch, rep in char_table().items():
        if ord(ch) < FOLD_LIMIT:
            out[ord(ch)] = rep
    return out


def fold_chars(text: str) -> str:
    """The per-character part of ``normalize`` (no run collapsing, no offsets), in C via
    ``str.translate``. Exact only when ``text`` has no character from ``FOLD_LIMIT`` up; the
    matcher sends such texts to ``normalize``."""
    return text.translate(_fold_list())


def normalize(text: str) -> Normalized:
    """Normalise ``text`` (see the module docstring), keeping the offset map."""
    table = char_table()
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    runs: list[int] = []
    for i, ch in enumerate(text):
        mapped = table.get(ch, ch)
        for c in mapped:
            if out and c == out[-1] and not c.isascii():
                ends[-1] = i + 1
                runs[-1] += 1
                continue
            out.append(c)
            starts.append(i)
            ends.append(i + 1)
            runs.append(1)
    return Normalized("".join(out), tuple(starts), tuple(ends), tuple(runs))


def normalize_word(word: str) -> str:
    """The same transform applied to a rule word, so words and texts meet."""
    return normalize(word).text


# Prefilter spellings (the matcher's ``fast`` and ``folded`` automata, see rules/matcher.py):
# which raw or folded strings a text must contain for its normalised form to hold a word.


@cache
def _trigger_patterns() -> tuple[str, ...]:
    """Raw-text patterns that do not depend on the rules (see rules/matcher.py)."""
    table = char_table()
    triggers = [ch for ch in table if ch not in COMMON_SEPARATORS]
    # Two separators in a row: the per-word patterns spell out only one.
    pairs = [s + t for s in COMMON_SEPARATORS for t in COMMON_SEPARATORS]
    return (*triggers, *pairs)


def raw_patterns(sources: set[str]) -> list[str]:
    """Rule-dependent raw-text patterns: each word, and its first break (see rules/matcher.py).

    A broken word ``w`` first deviates from itself after an intact prefix ``w[:k]``: by one
    common separator followed by ``w[k]`` or by a repeat of ``w[k-1]``, or (for non-ASCII
    characters, the only ones collapsed) by a repeat of ``w[k-1]``.
    """
    out = set(_trigger_patterns())
    for w in sources:
        out.add(w)
        for k in range(1, len(w)):
            prefix, last = w[:k], w[k - 1]
            out.update(prefix + sep + w[k] for sep in COMMON_SEPARATORS)
            if not last.isascii():
                out.add(prefix + last)
                out.update(prefix + sep + last for sep in COMMON_SEPARATORS)
    return sorted(out)


def folded_patterns(sources: set[str]) -> list[str]:
    """Patterns over ``fold_chars`` output (see rules/matcher.py): each spelling and each
    first extra copy of a non-ASCII character, tied to what follows it."""
    out = set(sources)
    for w in sources:
        for k in range(1, len(w)):
            prefix, last = w[:k], w[k - 1]
            if not last.isascii():
                out.update((prefix + last + w[k], prefix + last + last))
    return sorted(out)
