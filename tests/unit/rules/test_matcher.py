"""Matcher: spans, filters, audience, replies, inspect, and the fast path against the exact one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import (
    Audience,
    Boundary,
    Matcher,
    ReplyRule,
    RuleSet,
    SensitiveGroup,
    Severity,
    TextReplyContent,
    Word,
    compile_rules,
    normalize,
)
from rules.hit_filters import CLAUSE_BREAKS, clause_span, crosses_token
from rules.normalize import Normalized


def _reply(name: str, match: str, *keywords: str, priority: int = 0) -> ReplyRule:
    return ReplyRule(name, keywords, match, TextReplyContent(name), priority)  # type: ignore[arg-type]


RULES = RuleSet(
    groups=(
        SensitiveGroup(
            "complaint",
            Severity.HIGH,
            Audience.CUSTOMER,
            (Word("维权", pinyin=True), Word("投诉电话"), Word("12315")),
            recipients=("boss",),
        ),
        SensitiveGroup(
            "abuse", Severity.MEDIUM, Audience.ANY, (Word("垃圾"), Word("谢谢")), allow=("垃圾桶",)
        ),
        SensitiveGroup(
            "fraud",
            Severity.CRITICAL,
            Audience.STAFF,
            (Word("刷单"), Word("小费", boundary=Boundary.SUBSTRING), Word("vx")),
            must_not=("反诈",),
            recipients=("risk", "boss"),
        ),
    ),
    replies=(
        _reply("hello", "exact", "你好", "在吗"),
        _reply("ship", "contains", "发货"),
        _reply("invoice", "all", "发票", "专票", priority=5),
        _reply("refund", "contains", "退款", priority=5),
    ),
    version="v1",
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return compile_rules(RULES)


def _hits(m: Matcher, text: str, author: Audience = Audience.ANY) -> list[tuple[str, str]]:
    return [(h.word, text[h.start : h.end]) for h in m.scan(text, author)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我要维 权", [("维权", "维 权")]),
        ("維權", [("维权", "維權")]),
        ("wei权", [("维权", "wei权")]),
        ("维维维权", [("维权", "维维维权")]),
        ("打①②③①⑤", [("12315", "①②③①⑤")]),
        ("VXLAN", []),
        ("加VX", [("vx", "VX")]),
        ("123156", []),
        ("垃圾桶", []),
        ("垃圾桶边上的人是垃圾", [("垃圾", "垃圾")]),
        ("刷单，反诈中心提醒", []),
        ("减小费用", [("小费", "小费")]),  # boundary=substring set explicitly
        ("谢", []),
        ("谢谢谢", [("谢谢", "谢谢谢")]),
        ("tuikuang", []),
    ],
)
def test_scan_table(matcher: Matcher, text: str, expected: list[tuple[str, str]]) -> None:
    assert _hits(matcher, text) == expected


def test_hits_sorted_and_carry_group_data(matcher: Matcher) -> None:
    hits = matcher.scan("垃圾！我要维权，刷单")
    assert [h.start for h in hits] == sorted(h.start for h in hits)
    assert [(h.group, h.severity) for h in hits] == [
        ("abuse", Severity.MEDIUM),
        ("complaint", Severity.HIGH),
        ("fraud", Severity.CRITICAL),
    ]


def test_audience(matcher: Matcher) -> None:
    assert _hits(matcher, "维权", Audience.STAFF) == []
    assert _hits(matcher, "维权", Audience.CUSTOMER) == [("维权", "维权")]
    assert _hits(matcher, "刷单", Audience.CUSTOMER) == []


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("你好", "hello"),
        ("你 好！", "hello"),
        ("你好，发货了吗", "ship"),
        ("发货和退款", "refund"),  # priority 5 beats file order
        ("开发票，要专票", "invoice"),
        ("开发票", None),
        ("天气不错", None),
    ],
)
def test_match_reply(matcher: Matcher, text: str, name: str | None) -> None:
    rule = matcher.match_reply(text)
    assert (rule.name if rule else None) == name


def test_inspect(matcher: Matcher) -> None:
    got = matcher.inspect("维权！退款", Audience.CUSTOMER)
    assert [h.word for h in got.hits] == ["维权"]
    assert got.reply is not None and got.reply.name == "refund"
    assert got.rules_version == "v1"
    assert got.recipients == ("boss",)
    staff = matcher.inspect("刷单 退款", Audience.STAFF)
    assert staff.reply is None and staff.recipients == ("risk", "boss")
    assert matcher.inspect("天气不错", Audience.ANY).hits == ()


@pytest.mark.parametrize(
    ("bounds", "a", "b", "crosses"),
    [
        ({0, 2, 4}, 1, 3, True),  # 减小|费用, hit 小费
        ({0, 2, 4}, 0, 2, False),
        ({0, 3}, 0, 2, False),  # 垃圾桶 contains 垃圾
        ({0, 1, 2, 3}, 1, 3, False),
    ],
)
def test_crosses_token(bounds: set[int], a: int, b: int, crosses: bool) -> None:
    assert crosses_token(frozenset(bounds), a, b) is crosses


def test_word_that_normalises_to_nothing_is_rejected() -> None:
    group = SensitiveGroup("x", Severity.LOW, Audience.ANY, (Word("!!!"),), source="a.toml:3")
    with pytest.raises(ValueError, match=r"a\.toml:3"):
        compile_rules(RuleSet((group,)))


_ALPHABET = st.sampled_from(
    [
        *list("维權权维刷单垃圾桶谢费小减用vxVX12315１①ｗeiquanWEI"),
        " ",
        "，",
        ".",
        "  ",
        "\u200b",
        "😡",
        "️",
        "反诈",
        "a",
        "你好",
        "发货",
    ]
)


_WORDS = ("维权", "投诉电话", "12315", "垃圾", "谢谢", "刷单", "小费", "vx", "你好", "发货", "发票")
_FILLERS = (" ", "，", "。", "  ", "，，", "\u200b", "😡", "️", "~", "\U000e0020", "\U000f0000")
_VARIANTS = {"维": "維", "权": "權", "单": "單", "费": "費", "发": "發", "货": "貨", "谢": "謝"}


@st.composite
def _evaded(draw: st.DrawFn) -> str:
    """Chat around rule words broken the ways people break them: fillers, repeats (also after
    a filler), traditional and full-width forms, case, pinyin."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        word = draw(st.sampled_from([*_WORDS, "weiquan", "wei权", "VX", "１２３１５", "看看"]))
        out = []
        for ch in word:
            if draw(st.booleans()):
                ch = _VARIANTS.get(ch, ch.upper())  # noqa: PLW2901
            out.append(ch * draw(st.sampled_from([1, 1, 2, 3])))
            if draw(st.integers(0, 3)) == 0:
                out.append(draw(st.sampled_from(_FILLERS)))
                if draw(st.booleans()):
                    out.append(ch)
        parts.append(draw(st.sampled_from(["", "我要", "看看", "减", "桶", "a", "反诈"])))
        parts.append("".join(out))
    return "".join(parts)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.lists(_ALPHABET, max_size=14).map("".join), _evaded()))
def test_fast_path_never_drops_a_hit(matcher: Matcher, text: str) -> None:
    norm = normalize(text)
    exact = matcher.scan_normalized(norm, source=text)
    exact_reply = matcher.reply_normalized(norm)
    if not matcher.may_hit(text):
        assert exact == () and exact_reply is None
    assert matcher.scan(text) == exact
    assert matcher.match_reply(text) == exact_reply


CLAUSE_RULES = RuleSet(
    groups=(
        SensitiveGroup(
            "tips", Severity.HIGH, Audience.ANY, (Word("小费"), Word("消协")), source="t:1"
        ),
    ),
    version="c1",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("减小费用", []),  # 减小/费用: the hit cuts across both words
        ("为了减小费用，我们先这样", []),
        ("取消协议吧，好的", []),
        ("给点小费吧，谢谢", [("小费", "小费")]),
        ("好的，给点小费吧", [("小费", "小费")]),
        ("我去找消协。你们等着", [("消协", "消协")]),
        # Issue 19: clause punctuation is a boundary, never a separator (放假，货 is no 假货) ...
        ("消，协", []),
        ("消、协", [("消协", "消、协")]),  # ... while 、 and the like stay separators
        ("减 小费用", []),  # a space is no clause break: it is what evasions insert
    ],
)
def test_word_boundary_on_the_hit_clause(text: str, expected: list[tuple[str, str]]) -> None:
    assert _hits(compile_rules(CLAUSE_RULES), text) == expected


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["减小费用", "取消协议", "给点小费", "找消协", " ", "好的", "吧", "消", "协"]
        ),
        max_size=8,
    ).map("".join)
)
def test_one_clause_segments_like_the_whole_text(text: str) -> None:
    # With no sentence punctuation the hit's clause is the whole message: the windowed check must
    # then give exactly the hits of segmenting the whole normalised text.
    from rules.normalize import normalize

    m = compile_rules(CLAUSE_RULES)
    assert m.scan(text) == m.scan_normalized(normalize(text))


def _clause_span_by_steps(norm: Normalized, source: str, a: int, b: int) -> tuple[int, int]:
    # The definition: walk out from the hit until a gap between kept characters holds a break.
    def is_break(i: int) -> bool:
        return any(c in CLAUSE_BREAKS for c in source[norm.ends[i - 1] : norm.starts[i]])

    lo, hi, n = a, b, len(norm.text)
    while lo > 0 and not is_break(lo):
        lo -= 1
    while hi < n and not is_break(hi):
        hi += 1
    return lo, hi


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.sampled_from([*"好的维权，。!\n 看a1", "，，", "好，好", "维，维"]), max_size=16
    ).map("".join),
    st.data(),
)
def test_clause_span_matches_its_definition(source: str, data: st.DataObject) -> None:
    norm = normalize(source)
    if not norm.text:
        return
    a = data.draw(st.integers(0, len(norm.text) - 1))
    b = data.draw(st.integers(a + 1, len(norm.text)))
    assert clause_span(norm, source, a, b) == _clause_span_by_steps(norm, source, a, b)


V2_RULES = RuleSet(
    groups=(
        SensitiveGroup(
            "v2",
            Severity.HIGH,
            Audience.ANY,
            (Word("维权", initials=True), Word("微信"), Word("12315"), Word("sb"), Word("转账")),
        ),
    ),
    version="v2",
)
_V2_ALPHABET = st.sampled_from(
    [
        *"维权薇信微威围一二三五幺壹1235sbѕЅВwqWQ轉帳账 ，.、",
        "wei",
        "quan",
        "Wei",
        " quan",
        "\u200b",
        "好的",
        "信号",
        "-300",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_V2_ALPHABET, max_size=12).map("".join))
def test_fast_path_never_drops_a_generated_spelling(text: str) -> None:
    # Issue 19: pinyin (with spaces), homophones, initials, numerals, lookalikes and phrases
    # reach the exact path whenever they hit.
    m = _v2_matcher()
    exact = m.scan_normalized(normalize(text), source=text)
    if not m.may_hit(text):
        assert exact == ()
    assert m.scan(text) == exact


_V2: list[Matcher] = []


def _v2_matcher() -> Matcher:
    if not _V2:
        _V2.append(compile_rules(V2_RULES))
    return _V2[0]
