"""Labelled corpus (tests/corpus/*.tsv): recall and precision per kind, spans exact.

Line format: ``kind<TAB>words<TAB>text``. ``words`` lists the canonical words expected, in order,
separated by ``|`` (``-`` for none); each expected hit is marked in ``text`` with «», which are
removed before scanning and give the exact span the hit must have in the original text.
"""

from __future__ import annotations

import pytest

from rules import (
    Audience,
    Boundary,
    Matcher,
    RuleSet,
    SensitiveGroup,
    Severity,
    Word,
    compile_rules,
    quality,
)
from rules.quality import Case, parse_case
from tests.support.paths import DATA

CORPUS = DATA / "corpus"
# Targets from the issue: plain 100 %, evasions >= 97 %, no false positive on hard negatives.
MIN_RECALL = {"plain": 1.0}
EVASION_RECALL = 0.97


def _w(*texts: str, pinyin: bool = False) -> tuple[Word, ...]:
    return tuple(Word(t, pinyin=pinyin) for t in texts)


RULES = RuleSet(
    groups=(
        SensitiveGroup(
            "complaint",
            Severity.HIGH,
            Audience.CUSTOMER,
            _w("维权", "投诉", "退款", "起诉", pinyin=True)
            + _w("12315", "消协", "曝光", "差评", "律师函", "工商局"),
        ),
        SensitiveGroup(
            "abuse",
            Severity.MEDIUM,
            Audience.ANY,
            (Word("垃圾"), Word("骗子", pinyin=True)),
            allow=("垃圾桶", "垃圾袋", "垃圾分类"),
        ),
        SensitiveGroup(
            "fraud",
            Severity.CRITICAL,
            Audience.ANY,
            _w("刷单", "套现", "代开发票", "私下交易"),
            must_not=("反诈", "防骗"),
        ),
        SensitiveGroup("private", Severity.MEDIUM, Audience.ANY, _w("小费", "回扣", "vx")),
    ),
    version="corpus",
)


def load_corpus() -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.tsv")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip() and not line.startswith("#"):
                cases.append(parse_case(line, f"{path.name}:{n}"))
    return cases


def measure(matcher: Matcher, cases: list[Case]) -> dict[str, tuple[int, int, int, int]]:
    """Per kind: (expected, found-and-exact, reported, reported-and-expected)."""
    return quality.measure(matcher, cases).per_kind


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_corpus()


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return compile_rules(RULES)


def test_corpus_is_large_and_covers_every_kind(cases: list[Case]) -> None:
    kinds = {c.kind for c in cases}
    assert len(cases) >= 300
    assert {"plain", "separator", "invisible", "emoji", "traditional", "width", "repeat"} <= kinds
    assert {"case", "pinyin", "mixed_pinyin", "hard_negative", "mixed"} <= kinds


def test_recall_and_precision_per_kind(matcher: Matcher, cases: list[Case]) -> None:
    stats = measure(matcher, cases)
    misses = [
        (c.where, c.text, c.expected, matcher.scan(c.text))
        for c in cases
        if set(c.expected) != {(h.word, h.start, h.end) for h in matcher.scan(c.text)}
    ]
    for kind, (expected, found, reported, correct) in stats.items():
        if kind == "hard_negative":
            assert reported == 0, misses
            continue
        recall = found / expected
        precision = correct / reported if reported else 1.0
        assert recall >= MIN_RECALL.get(kind, EVASION_RECALL), (kind, recall, misses)
        assert precision == 1.0, (kind, precision, misses)


def test_substring_default_lets_hard_negatives_through(cases: list[Case]) -> None:
    """The measurement behind DEFAULT_BOUNDARY: substring fires on hard negatives, word does not."""
    loose = measure(compile_rules(RULES, default_boundary=Boundary.SUBSTRING), cases)
    assert loose["hard_negative"][2] > 0
