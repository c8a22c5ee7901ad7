"""Regenerate ``homophones.tsv`` (run by hand; the package only reads the table it writes).

``python tests/data/make_homophones.py > rules/data/homophones.tsv``

Each line is ``syllable<TAB>characters``: a toneless pinyin syllable (ü written ``v``) and the
common characters whose first reading it is, most frequent first. "Common" is the frequency
guard of the homophone normalisation: simplified characters of GB2312, ordered by frequency (the
sum of the jieba dictionary frequencies of the words that contain them); only the ``TOP_CHARS``
most frequent are listed, at most ``PER_SYLLABLE`` per syllable. So a generated spelling uses characters people
actually type, never a rare character that happens to share the sound.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

TOP_CHARS = 4500
PER_SYLLABLE = 32


def _common(ch: str) -> bool:
    """In GB2312 (its 6,763 characters are the ones mainland chat is typed with)."""
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def main() -> int:
    """Print the table on stdout."""
    import jieba
    import opencc
    from pypinyin import Style, pinyin

    t2s = opencc.OpenCC("t2s")

    freq: Counter[str] = Counter()
    dictionary = Path(jieba.__file__).parent / "dict.txt"
    for line in dictionary.read_text(encoding="utf-8").splitlines():
        word, count, *_ = line.split(" ")
        for ch in set(word):
            if "\u4e00" <= ch <= "\u9fff" and _common(ch) and t2s.convert(ch) == ch:
                freq[ch] += int(count)
    by_syllable: dict[str, list[str]] = {}
    for ch, _ in freq.most_common(TOP_CHARS):
        syllable = pinyin(ch, style=Style.NORMAL, heteronym=False)[0][0]
        if syllable.isascii() and syllable.isalpha():
            by_syllable.setdefault(syllable, []).append(ch)
    for syllable in sorted(by_syllable):
        sys.stdout.write(f"{syllable}\t{''.join(by_syllable[syllable][:PER_SYLLABLE])}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
