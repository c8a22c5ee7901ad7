"""``rules explain WORD``: every spelling a word is matched in, by kind, as Chinese text lines."""

from __future__ import annotations

from rules.normalize import normalize
from rules.variants import (
    homophone_spellings,
    initials_spelling,
    numeral_prefixes,
    ordinary,
    pinyin_spellings,
)

__all__ = ["explain"]

_PER_LINE = 12


def _wrapped(items: list[str]) -> list[str]:
    return ["    " + "  ".join(items[i : i + _PER_LINE]) for i in range(0, len(items), _PER_LINE)]


def explain(word: str) -> list[str]:
    """Lines describing what ``word`` matches with the default switches.

    Raises:
        ValueError: the word is empty after normalisation.
    """
    text = normalize(word).text
    if not text:
        raise ValueError(f"{word!r} 归一化后为空")
    lines = [
        f"词语：{word}（归一化后：{text}）",
        "  原词：也匹配中间夹空格、符号、零宽字符、表情，全角、大小写、繁体、重复字、形近字母"
        "（如西里尔字母 ѕ）；逗号、句号等分句标点不算分隔",
    ]
    pinyin = [s.text for s in pinyin_spellings(text)]
    if pinyin:
        lines.append(f"  拼音（pinyin，默认开启，可写 pinyin = false 关闭），共 {len(pinyin)} 种：")
        lines += _wrapped(pinyin)
    homophones = [s.text for s in homophone_spellings(text)]
    if homophones:
        dropped = ordinary(homophones)
        kept = [h for h in homophones if h not in dropped]
        lines.append(
            f"  同音/近音字（homophones，默认开启，可写 homophones = false 关闭；"
            f"只换一个字），共 {len(kept)} 种："
        )
        lines += _wrapped(kept)
        if dropped:
            lines.append(f"  因是常用词而不匹配的同音写法，共 {len(dropped)} 种：")
            lines += _wrapped(sorted(dropped))
        lines.append("  不想匹配某种写法：把它写进该组的 allow 白名单")
    initials = initials_spelling(text)
    if initials is not None:
        lines.append(
            f"  拼音首字母（initials，默认关闭，可写 initials = true 开启）：{initials.text}"
            "（只在中文里单独出现时算）"
        )
    if numeral_prefixes(text):
        lines.append("  数字：也匹配中文数字写法（一二三、壹贰叁、幺 = 1），如 " + _numerals(text))
    return lines


def _numerals(digits: str) -> str:
    simple = dict(zip("0123456789", "〇一二三四五六七八九", strict=True))
    capital = dict(zip("0123456789", "零壹贰叁肆伍陆柒捌玖", strict=True))
    return "、".join("".join(table[d] for d in digits) for table in (simple, capital))
