"""normalize: each evasion kind, offsets back to the original, words and texts meeting."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.normalize import (
    FOLD_LIMIT,
    fold_chars,
    normalize,
    normalize_per_char,
    normalize_word,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("维 权", "维权"),
        ("維權", "维权"),
        ("Wei权", "wei权"),
        ("维\u200b权", "维权"),
        ("维\ufeff权", "维权"),
        ("１２３１５", "12315"),
        ("①②③①⑤", "12315"),
        ("维😡权", "维权"),
        ("维❤️权", "维权"),
        ("维维维权", "维权"),
        ("退退退款", "退款"),
        ("WÉI QUÁN", "weiquan"),
        ("ＶＸ", "vx"),
        ("110", "110"),  # ASCII never collapses
        ("", ""),
    ],
)
def test_normalize_table(text: str, expected: str) -> None:
    assert normalize(text).text == expected


@pytest.mark.parametrize(
    ("text", "a", "b", "span"),
    [
        ("我要维 权了", 2, 4, "维 权"),
        ("維權", 0, 2, "維權"),
        ("打wei权", 1, 5, "wei权"),
        ("维维维权", 0, 2, "维维维权"),
        ("①②③①⑤", 0, 5, "①②③①⑤"),
    ],
)
def test_spans_map_back_to_the_original(text: str, a: int, b: int, span: str) -> None:
    norm = normalize(text)
    start, end = norm.span(a, b)
    assert text[start:end] == span


def test_runs_record_collapsed_repeats() -> None:
    assert normalize("谢谢谢").runs == (3,)
    assert normalize_word("谢谢") == "谢"


@given(st.text(max_size=40))
def test_offsets_are_monotonic_and_in_range(text: str) -> None:
    norm = normalize(text)
    assert len(norm.text) == len(norm.starts) == len(norm.ends) == len(norm.runs)
    for i in range(len(norm.text)):
        assert 0 <= norm.starts[i] < norm.ends[i] <= len(text)
        if i:
            assert norm.starts[i - 1] <= norm.starts[i]


@given(st.text(max_size=30))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text).text
    assert normalize(once).text == once


@given(st.text(max_size=40))
def test_fold_chars_is_normalize_without_collapsing(text: str) -> None:
    text = "".join(c for c in text if ord(c) < FOLD_LIMIT)
    collapsed = re.sub(r"([^\x00-\x7f])\1+", r"\1", fold_chars(text))
    assert collapsed == normalize(text).text


_TRICKY = st.sampled_from(
    list("维權权 ，。\u200b😡️①⑩ＡaＢ～…\u3000\U000e0020\U000f0000谢謝ǘé\u0301")
)


@settings(max_examples=500)
@given(st.one_of(st.text(max_size=40), st.lists(_TRICKY, max_size=20).map("".join)))
def test_normalize_agrees_with_the_per_char_reference(text: str) -> None:
    # normalize() works in C-speed passes; normalize_per_char() is the plain definition.
    assert normalize(text) == normalize_per_char(text)
