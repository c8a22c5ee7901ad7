"""Pure text normalisation with an offset map back to the original.

Per character: NFKC (full-width letters and digits, circled digits, compatibility ideographs),
case folding, accents stripped from Latin letters (``wéiquán`` -> ``weiquan``), lookalike letters
folded to the Latin letter they imitate (Unicode's confusables data through
``confusable_homoglyphs``: Cyrillic ``ѕ``, Greek ``ο``, Cherokee, small capitals...; see
``lookalike_table``), traditional -> simplified (OpenCC ``t2s``, character by character so one
input character never merges with its neighbours), then removal of characters people put between the letters of a word to break it:
spaces, punctuation, symbols (emoji included), control and format characters (zero-width space,
joiners, BOM), combining marks and variation selectors. Finally a run of the same non-ASCII
character collapses to one (``维维维权`` -> ``维权``); the run length is kept in ``runs`` so a
rule word that itself repeats a character (``谢谢``) still needs the repeat. ASCII is never
collapsed: ``110`` and ``book`` stay as they are.

A text holding a traditional character is then converted once more, as phrases
(``convert_phrases``): OpenCC's phrase tables and a few account phrases OpenCC leaves alone
(``轉帳`` -> ``转账``, not ``转帐``), in place, so the offset map is unchanged.

The per-character mapping is one table built on first use (``char_table``) and shared by
``normalize``, ``normalize_word`` and the matcher's fast path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = [
    "CLAUSE_SEPARATORS",
    "COMMON_SEPARATORS",
    "Normalized",
    "RawPatterns",
    "changing_chars",
    "char_table",
    "collapse_runs",
    "convert_phrases",
    "has_traditional",
    "has_wide",
    "lookalike_chars",
    "lookalike_table",
    "normalize",
    "normalize_folded",
    "normalize_per_char",
    "normalize_word",
    "strip_separators",
]

#: Separators frequent in ordinary chat. The matcher's fast path spells these out in its
#: patterns; any other removable character sends a message down the exact path.
COMMON_SEPARATORS = " ，,。.！!？?、~～…：:；;"
#: The common separators that end a clause: between two characters of a word they are a
#: boundary, never a separator (rules/hit_filters.py ``crosses_clause``), so the fast path
#: needs no pattern of a word broken by one.
CLAUSE_SEPARATORS = "，,。！!？?…：:；;"
_BREAKING = "".join(c for c in COMMON_SEPARATORS if c not in CLAUSE_SEPARATORS)

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


# Scripts whose letters may stand in for Latin ones; never Han (丨 is no "l", 〇 no "o").
_LOOKALIKE_SCRIPTS = ("CYRILLIC", "GREEK", "LATIN", "CHEROKEE", "ARMENIAN", "COPTIC")


@cache
def lookalike_table() -> dict[str, str]:
    """``{char: ascii}``: letters of other scripts that Unicode's confusables data (through
    ``confusable_homoglyphs``) lists as a lookalike of one ASCII letter or digit.

    Only letters of the scripts in ``_LOOKALIKE_SCRIPTS`` qualify, and only when NFKC does not
    already fold them (full-width, mathematical and circled letters are NFKC's job).
    """
    import json  # noqa: PLC0415 - the table is built once, with the fold table

    from rules.shipped_data import read_table  # noqa: PLC0415

    data = json.loads(read_table("confusable_homoglyphs", "confusables.json"))
    table: dict[str, str] = {}
    for ch, entries in data.items():
        if len(ch) != 1 or ch.isascii() or not ch.isalpha():
            continue
        if not unicodedata.name(ch, "").startswith(_LOOKALIKE_SCRIPTS):
            continue
        if unicodedata.normalize("NFKC", ch).isascii():
            continue
        latin = {e["c"].casefold() for e in entries if len(e["c"]) == 1 and e["c"].isascii()}
        latin = {c for c in latin if c.isalnum()}
        if len(latin) == 1:
            table[ch] = latin.pop()
    return table


def _fold(ch: str, lookalikes: dict[str, str]) -> str:
    """NFKC + case fold + Latin accent stripping + lookalikes + removal, for one code point
    (no t2s)."""
    out = []
    ch = lookalikes.get(ch, ch)  # before case folding too: Cyrillic В is B, its в is no b
    for c in unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", ch).casefold()):
        decomposed = unicodedata.normalize("NFD", c)
        if len(decomposed) > 1 and decomposed[0].isascii():
            # é -> e, ǘ -> u: pinyin typed with tone marks meets the plain form.
            c = decomposed[0]  # noqa: PLW2901
        c = lookalikes.get(c, c)  # noqa: PLW2901 - Cyrillic ѕ -> s
        if not _removed(c):
            out.append(c)
    return "".join(out)


@cache
def char_table() -> dict[str, str]:
    """``{char: replacement}`` for every character that normalisation changes ("" = removed).

    Built once (about a second) and never mutated afterwards; absent characters map to
    themselves.
    """
    return _tables()[0]


@cache
def _tables() -> tuple[dict[str, str], frozenset[str]]:
    """``char_table()`` and the characters t2s converts (traditional forms)."""
    import opencc  # noqa: PLC0415 - heavy import, needed only while the table is built

    lookalikes = lookalike_table()
    folded: dict[str, str] = {}
    for lo, hi in _RANGES:
        for cp in range(lo, hi):
            ch = chr(cp)
            if unicodedata.category(ch) in ("Cn", "Co", "Cs"):
                continue
            out = _fold(ch, lookalikes)
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
    traditional = frozenset(
        ch for ch, out in table.items() if any(c in t2s for c in folded.get(ch, ch))
    )
    return table, traditional


@cache
def _traditional() -> re.Pattern[str]:
    """Characters whose fold goes through t2s: a text holding one gets ``convert_phrases``."""
    return re.compile(_char_class(sorted(ord(c) for c in _tables()[1])))


def has_traditional(text: str) -> bool:
    """Whether ``text`` holds a character t2s converts (then ``normalize`` converts phrases)."""
    return _traditional().search(text) is not None


@cache
def _lookalike_regex() -> re.Pattern[str]:
    return re.compile(_char_class(sorted(ord(c) for c in lookalike_table())))


def lookalike_chars(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` holds a lookalike letter (a hit's ``via = "lookalike"``)."""
    return _lookalike_regex().search(text, start, end) is not None


@cache
def _opencc() -> Any:
    import opencc  # noqa: PLC0415

    return opencc.OpenCC("t2s")


# 帳 is the traditional form of both 帐 (tent) and 账 (account); OpenCC's phrase tables give 帐
# in 轉帳/帳戶 too, which mainland text spells 账. These account phrases get 账.
_ACCOUNT = re.compile(
    "帐(?=[户号单目本款务期面])|(?<=[转记结算查对欠报到入出赊还付收催烂假做销挂])帐"
)


def convert_phrases(text: str, norm: Normalized) -> Normalized:
    """``norm`` (the per-character normalisation of ``text``) with its traditional characters
    converted as phrases; unchanged when ``text`` holds none.

    The characters t2s changed are put back in their traditional form and the normalised text is
    converted by OpenCC (phrase tables: 乾淨 -> 干净 but 乾隆 stays), then account phrases take
    账. A conversion that would change the length is not used: one normalised character keeps
    one original span.
    """
    if not norm.text or _traditional().search(text) is None:
        return norm
    table = char_table()
    traditional = _tables()[1]
    chars = list(norm.text)
    for i, c in enumerate(chars):
        orig = text[norm.starts[i]]
        if orig in traditional and table[orig] == c:
            chars[i] = orig
    converted = _ACCOUNT.sub("账", _opencc().convert("".join(chars)))
    if len(converted) != len(norm.text) or converted == norm.text:
        return norm
    return Normalized(converted, norm.starts, norm.ends, norm.runs)


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


#: ``has_wide(text)`` is true when ``text`` holds a character ``fold_chars`` does not map.
has_wide = re.compile(f"[{chr(FOLD_LIMIT)}-\U0010ffff]").search
_SEPARATOR = re.compile("[" + re.escape(COMMON_SEPARATORS) + "]")


def strip_separators(text: str) -> tuple[str, list[int]]:
    """``(fold_chars(text), positions of the removed characters)`` for a text in which the
    only characters normalisation changes are common separators (see ``RawPatterns``)."""
    return _SEPARATOR.sub("", text), [m.start() for m in _SEPARATOR.finditer(text)]


# A run of one non-ASCII character, which normalisation collapses (ASCII runs stay).
_COLLAPSE = re.compile(r"([^\x00-\x7f])\1+")
_DOUBLED = re.compile(r"(.)\1", re.DOTALL)


def _char_class(code_points: list[int]) -> str:
    """A regex character class of ``code_points`` (sorted), as ranges."""
    ranges: list[list[int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges) + "]"


@cache
def _odd_chars() -> re.Pattern[str]:
    """Characters below ``FOLD_LIMIT`` whose replacement is not exactly one character.

    Python's regex engine tests a class of BMP characters with one table lookup but walks a
    class with astral ranges range by range, so the astral part sits behind a cheap range test.
    """
    odd = sorted(ord(c) for c, rep in char_table().items() if len(rep) != 1 and ord(c) < FOLD_LIMIT)
    bmp = [cp for cp in odd if cp < 0x10000]
    astral = [cp for cp in odd if cp >= 0x10000]
    pattern = _char_class(bmp)
    if astral:
        pattern += f"|[\\U00010000-\\U{FOLD_LIMIT - 1:08x}](?<={_char_class(astral)})"
    return re.compile(pattern)


def normalize(text: str) -> Normalized:
    """Normalise ``text`` (see the module docstring), keeping the offset map.

    Texts with a character from ``FOLD_LIMIT`` up take ``normalize_per_char``; the rest
    ``normalize_folded``, which computes the same thing mostly in C.
    """
    if has_wide(text):
        return normalize_per_char(text)
    return convert_phrases(text, normalize_folded(text, fold_chars(text)))


def _has_runs(folded: str) -> bool:
    # Any doubled character is a search three times cheaper than the backreference with a class.
    return _DOUBLED.search(folded) is not None and _COLLAPSE.search(folded) is not None


def collapse_runs(folded: str) -> str:
    """``folded`` with each run of one non-ASCII character collapsed to one copy."""
    return _COLLAPSE.sub(r"\1", folded) if _has_runs(folded) else folded


def normalize_folded(
    text: str, folded: str, collapsed: str | None = None, odd: list[int] | None = None
) -> Normalized:
    """``normalize(text)`` given ``folded = fold_chars(text)`` (``text`` without wide characters)
    and, when known, ``collapsed = collapse_runs(folded)`` and ``odd``, the positions of the
    characters whose replacement is not exactly one character.

    The offset map starts as the identity and is edited only where a character's replacement
    is not exactly one character (a regex finds those, mostly separators), then where a run
    collapses; both are a handful per message, so this costs a few list operations, not a
    Python step per character. ``normalize_per_char`` is the definition the tests hold it to.
    """
    n = len(text)
    starts = list(range(n))
    ends = list(range(1, n + 1))
    if odd is None:
        odd = [m.start() for m in _odd_chars().finditer(text)]
    if odd:
        table = char_table()
        for i in reversed(odd):  # from the right, so index i is still character i
            width = len(table[text[i]])  # 0 (removed) or an expansion such as ⑩ -> 10
            if width:
                starts[i : i + 1] = [i] * width
                ends[i : i + 1] = [i + 1] * width
            else:
                del starts[i], ends[i]
    if collapsed is folded or (collapsed is None and not _has_runs(folded)):
        return Normalized(folded, tuple(starts), tuple(ends), (1,) * len(folded))
    # A run of one non-ASCII character becomes its first copy, spanning every copy.
    runs = [1] * len(folded)
    for m in reversed(list(_COLLAPSE.finditer(folded))):
        a, b = m.span()
        del starts[a + 1 : b]
        ends[a:b] = [ends[b - 1]]
        runs[a:b] = [b - a]
    if collapsed is None:
        collapsed = _COLLAPSE.sub(r"\1", folded)
    return Normalized(collapsed, tuple(starts), tuple(ends), tuple(runs))


def normalize_per_char(text: str) -> Normalized:
    """``normalize`` one character at a time, in Python: any text, including characters from
    ``FOLD_LIMIT`` up, at several times the cost."""
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
    return convert_phrases(text, Normalized("".join(out), tuple(starts), tuple(ends), tuple(runs)))


def normalize_word(word: str) -> str:
    """The same transform applied to a rule word, so words and texts meet."""
    return normalize(word).text


# Prefilter spellings (the matcher's ``fast`` and ``folded`` automata, see rules/matcher.py):
# which raw or folded strings a text must contain for its normalised form to hold a word.


@cache
def changing_chars() -> tuple[str, ...]:
    """Characters normalisation changes, other than the common separators, sorted."""
    return tuple(sorted(ch for ch in char_table() if ch not in COMMON_SEPARATORS))


@dataclass(frozen=True, slots=True)
class RawPatterns:
    """The fast automaton's patterns; ``patterns[:changing]`` are ``changing_chars()``.

    A match of one of those says the text needs the full per-character fold; without one, the
    only characters normalisation changes in the text are common separators (no pattern can
    hold a changing character, so no other match can hide one).
    """

    patterns: list[str]
    changing: int


def raw_patterns(
    sources: set[str],
    tight: dict[str, tuple[int, ...]] | None = None,
    keywords: set[str] | None = None,
) -> RawPatterns:
    """Rule-dependent raw-text patterns: each word, and its first break (see rules/matcher.py).

    Words (``sources``) are broken by the common separators that do not end a clause;
    reply ``keywords`` (matched without clauses) by any common separator.

    ``tight`` spellings (generated: pinyin, homophones, initials) are matched only as one run,
    with whitespace allowed only at their given offsets (rules/hit_filters ``tight_ok``): their
    patterns are the spelling and its first space at one of those offsets (a second space in a
    row is a pattern of its own; other whitespace is a changing character).

    A broken word ``w`` first deviates from itself after an intact prefix ``w[:k]``: by one
    common separator followed by ``w[k]`` or by a repeat of ``w[k-1]``, or (for non-ASCII
    characters, the only ones collapsed) by a repeat of ``w[k-1]``. A repeat is spelled with the
    character after it (``w[k]``, another copy, or a separator), because a bare doubled
    character is everyday chat (看看, 好好) and would send a sixth of all messages on.
    Two separators in a row are patterns of their own, as is every character normalisation
    changes other than those separators.
    """
    out = {s + t for s in COMMON_SEPARATORS for t in COMMON_SEPARATORS}
    spelled = [(w, _BREAKING) for w in sources]
    spelled += [(w, COMMON_SEPARATORS) for w in keywords or ()]
    for w, breaking in spelled:
        out.add(w)
        for k in range(1, len(w)):
            prefix, last = w[:k], w[k - 1]
            out.update(prefix + sep + w[k] for sep in breaking)
            if not last.isascii():
                # A repeat may run across any separator (维，维权 is 维权): only the run's
                # last copy and the next character must not be split by a clause end.
                repeat = prefix + last
                out.update((repeat + w[k], repeat + last))
                out.update(repeat + sep + w[k] for sep in breaking)
                out.update(repeat + sep + last for sep in COMMON_SEPARATORS)
                out.update(prefix + sep + last for sep in COMMON_SEPARATORS)
    for w, breaks in (tight or {}).items():
        out.add(w)
        out.update(w[:k] + " " + w[k] for k in breaks)
    changing = changing_chars()
    return RawPatterns([*changing, *sorted(out)], len(changing))


def folded_patterns(
    sources: set[str], tight: dict[str, tuple[int, ...]] | None = None
) -> list[str]:
    """Patterns over ``fold_chars`` output (see rules/matcher.py): each spelling and each
    first extra copy of a non-ASCII character, tied to what follows it; ``tight`` spellings
    (never collapsed) as they are."""
    out = set(sources) | set(tight or ())
    for w in sources:
        for k in range(1, len(w)):
            prefix, last = w[:k], w[k - 1]
            if not last.isascii():
                out.update((prefix + last + w[k], prefix + last + last))
    return sorted(out)
