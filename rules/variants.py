"""The spellings a rule word is matched in besides itself: pinyin, homophones, initials, numerals.

Each generator takes the word's normalised text and returns :class:`Spelling` values; the matcher
adds them to its automata (rules/matcher.py) and ``rules explain`` prints them. All are pure
functions of the word and of data shipped with the package (``rules/data/homophones.tsv``,
pypinyin's dictionary, jieba-rs's dictionary).

- **pinyin** (default on): the full pinyin (``weiquan``) and, for words of up to
  ``MAX_MIXED_PINYIN`` characters, every hanzi/pinyin mix (``wei权``, ``维quan``). A syllable
  containing ü is also spelled with ``u`` (``lushi`` and ``lvshi``).
- **homophone** (default on): the word with ONE character replaced by another common character
  read the same (tones ignored: 薇/微, 鸿/红, 头/投) or nearly so (zh/z, ch/c, sh/s; -n/-ng), as
  listed in ``homophones.tsv`` (common characters only: the first frequency guard). A spelling
  that is a frequent word of jieba's dictionary (威信 for 微信) or part of a longer one (货地
  inside 发货地) is ordinary text and dropped (``ordinary``): the second guard; the third is at
  match time (a replaced character inside a longer word of the message vetoes the hit).
- **initials** (opt-in): the first letters of the syllables (``wq`` for 维权), matched only as a
  standalone Latin token (rules/hit_filters.py ``initials_ok``).
- **numerals**: a word made of digits also matches Chinese numerals (一二三一五, 幺二三幺五,
  壹贰叁...); those are folded to digits in a view of the text only such words are matched on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from rules.shipped_data import read_table

__all__ = [
    "MAX_MIXED_PINYIN",
    "NUMERALS",
    "Spelling",
    "homophone_spellings",
    "initials_spelling",
    "is_han_word",
    "numeral_prefixes",
    "ordinary",
    "pinyin_spellings",
    "syllables_of",
]

#: Mixed hanzi/pinyin spellings are 2**n - 1 per word; beyond this length only the full pinyin.
MAX_MIXED_PINYIN = 4

#: Chinese numerals folded to digits for words made of digits (幺 is how 1 is read out in phone
#: numbers); traditional forms (貳, 陸...) arrive here already simplified. 两 (2) is left out:
#: 一两天 would send every message about "a day or two" down the slow path for 12xxx words.
NUMERALS = str.maketrans(
    {
        **dict.fromkeys("〇零", "0"),
        **dict.fromkeys("一壹幺", "1"),
        **dict.fromkeys("二贰", "2"),
        **dict.fromkeys("三叁", "3"),
        **dict.fromkeys("四肆", "4"),
        **dict.fromkeys("五伍", "5"),
        **dict.fromkeys("六陆", "6"),
        **dict.fromkeys("七柒", "7"),
        **dict.fromkeys("八捌", "8"),
        **dict.fromkeys("九玖", "9"),
    }
)
_DIGIT_FORMS: dict[str, str] = {}
for _ch, _digit in NUMERALS.items():
    _DIGIT_FORMS[str(_digit)] = _DIGIT_FORMS.get(str(_digit), str(_digit)) + chr(_ch)

# Near syllables: initials people mix up, and -n/-ng finals.
_NEAR_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"))
_NEAR_FINALS = (("ang", "an"), ("eng", "en"), ("ing", "in"))
#: Characters taken from each near syllable (its most frequent ones).
NEAR_PER_SYLLABLE = 3


@dataclass(frozen=True, slots=True)
class Spelling:
    """One way of writing a word, in normalised form.

    ``breaks``: offsets inside ``text`` where whitespace may stand (between pinyin units).
    ``replaced``: the offset of the replaced character of a homophone spelling, else -1.
    """

    text: str
    via: str
    breaks: tuple[int, ...] = ()
    replaced: int = -1


def is_han_word(word: str) -> bool:
    """Whether ``word`` is two or more CJK unified ideographs (the words these spellings apply to)."""
    return len(word) >= 2 and all("\u4e00" <= c <= "\u9fff" for c in word)


def syllables_of(word: str) -> list[str]:
    """Toneless pinyin of each character of ``word`` in context (ü as ``v``); [] if any is not."""
    from pypinyin import lazy_pinyin  # noqa: PLC0415 - pypinyin loads its dictionaries on import

    syllables = lazy_pinyin(word)
    if len(syllables) != len(word) or not all(s.isascii() and s.isalpha() for s in syllables):
        return []
    return syllables


def pinyin_spellings(word: str) -> list[Spelling]:
    """Full and mixed pinyin spellings of a Chinese word (none for other words)."""
    if not is_han_word(word):
        return []
    syllables = syllables_of(word)
    if not syllables:
        return []
    options = [sorted({s, s.replace("v", "u")}) for s in syllables]
    n = len(word)
    masks = range(1, 2**n) if n <= MAX_MIXED_PINYIN else [2**n - 1]
    out: dict[str, Spelling] = {}
    for mask in masks:
        units: list[list[str]] = [[]]
        for i in range(n):
            choices = options[i] if mask >> i & 1 else [word[i]]
            units = [[*u, c] for u in units for c in choices]
        for parts in units:
            text, breaks, pos = "", [], 0
            for k, part in enumerate(parts):
                if k:
                    breaks.append(pos)
                text += part
                pos += len(part)
            out.setdefault(text, Spelling(text, "pinyin", tuple(breaks)))
    return list(out.values())


def initials_spelling(word: str) -> Spelling | None:
    """``wq`` for 维权: the first letter of each syllable (None for non-Chinese words)."""
    if not is_han_word(word):
        return None
    syllables = syllables_of(word)
    if not syllables:
        return None
    return Spelling("".join(s[0] for s in syllables), "initials")


@cache
def _homophone_table() -> dict[str, str]:
    """``{syllable: common characters read so, most frequent first}`` from homophones.tsv."""
    text = read_table("rules", "data/homophones.tsv")
    table: dict[str, str] = {}
    for line in text.splitlines():
        syllable, chars = line.split("\t")
        table[syllable] = chars
    return table


def _near(syllable: str) -> list[str]:
    out = []
    for a, b in _NEAR_INITIALS:
        if syllable.startswith(a):
            out.append(b + syllable[len(a) :])
        elif syllable.startswith(b) and not syllable.startswith(a):
            out.append(a + syllable[len(b) :])
    for a, b in _NEAR_FINALS:
        if syllable.endswith(a):
            out.append(syllable[: -len(a)] + b)
        elif syllable.endswith(b):
            out.append(syllable[: -len(b)] + a)
    return out


def _sound_alikes(ch: str, syllable: str) -> list[str]:
    table = _homophone_table()
    same = [c for c in table.get(syllable, "") if c != ch]
    near = [c for s in _near(syllable) for c in table.get(s, "")[:NEAR_PER_SYLLABLE] if c != ch]
    return list(dict.fromkeys(same + near))


#: A spelling that is a dictionary word at least this frequent is an ordinary word (威信 521,
#: 片子 186); rarer ones are mostly misspellings people use as evasions too (暴光 10, 转帐 3).
ORDINARY_FREQUENCY = 50


@cache
def _dictionary() -> str:
    """jieba's dictionary (the one jieba-rs segments with): ``word frequency tag`` lines."""
    return read_table("jieba", "dict.txt")


_FREQUENCY = re.compile(r" (\d+)")


def ordinary(spellings: Iterable[str]) -> set[str]:
    """The ``spellings`` that are ordinary text, not evasions: a frequent dictionary word
    (``ORDINARY_FREQUENCY``: 威信) or part of a longer dictionary word (货地 in 发货地). One
    automaton pass over the dictionary's text for the whole batch, without parsing it."""
    import ahocorasick_rs  # noqa: PLC0415

    patterns = sorted(set(spellings))
    if not patterns:
        return set()
    text = _dictionary()
    found = set()
    finder = ahocorasick_rs.AhoCorasick(patterns)
    for pid, start, end in finder.find_matches_as_indexes(text, overlapping=True):
        whole = (start == 0 or text[start - 1] == "\n") and text.startswith(" ", end)
        frequency = _FREQUENCY.match(text, end) if whole else None
        if frequency is None or int(frequency.group(1)) >= ORDINARY_FREQUENCY:
            found.add(patterns[pid])
    return found


def homophone_spellings(word: str) -> list[Spelling]:
    """The word with one character replaced by a sound-alike (see the module docstring), before
    the dictionary guard (``ordinary``), which the caller applies to all its words at once."""
    if not is_han_word(word):
        return []
    syllables = syllables_of(word)
    if not syllables:
        return []
    out: dict[str, Spelling] = {}
    for i, (ch, syllable) in enumerate(zip(word, syllables, strict=True)):
        for alt in _sound_alikes(ch, syllable):
            text = word[:i] + alt + word[i + 1 :]
            out.setdefault(text, Spelling(text, "homophone", replaced=i))
    return list(out.values())


def numeral_prefixes(word: str) -> list[str]:
    """Every spelling of the first two characters of a digit word in digits and numerals: a
    text holding the word in any mix of the two holds one of these (the fast path's patterns)."""
    if len(word) < 2 or not word.isascii() or not word.isdigit():
        return []
    return [a + b for a in _DIGIT_FORMS.get(word[0], word[0]) for b in _DIGIT_FORMS[word[1]]]
