"""The allow-list phrase offered for a hit, and the check of the phrase a reviewer typed."""

from __future__ import annotations

import pytest

from monitor.review.phrase import PHRASE_MAX, PhraseError, check_phrase, suggest_phrase


def suggest(text: str, hit: str, nth: int = 0) -> str:
    start = -1
    for _ in range(nth + 1):
        start = text.index(hit, start + 1)
    return suggest_phrase(text, start, start + len(hit))


@pytest.mark.parametrize(
    ("text", "hit", "phrase"),
    [
        # the hit is its own token: one neighbour joins it, the right one first
        ("我家附近有垃圾分类站", "垃圾", "垃圾分类"),
        ("垃圾分类", "垃圾", "垃圾分类"),  # hit at the start of the text
        ("请不要乱扔垃圾", "垃圾", "扔垃圾"),  # at the end: the left neighbour
        ("我要投诉", "投诉", "要投诉"),
        # a token longer than the hit covers it: that token
        ("扔进垃圾桶里", "垃圾", "垃圾桶"),
        ("投诉建议箱在哪", "投诉", "投诉建议"),
        # clause punctuation and spaces bound the phrase
        ("今天放假，货到了", "假", "放假"),
        ("垃圾 分类", "垃圾", "垃圾"),
        # Latin: the word the hit sits in
        ("vxlan 的配置", "vx", "vxlan"),
        ("hello vx", "vx", "vx"),
        ("12315热线", "12315", "12315热线"),
    ],
)
def test_suggestion_is_the_natural_phrase_around_the_hit(text: str, hit: str, phrase: str) -> None:
    got = suggest(text, hit)
    assert got == phrase
    assert hit in got  # never shorter than the hit


def test_suggestion_of_the_second_occurrence_is_around_that_one() -> None:
    assert suggest("投诉建议，我要投诉", "投诉", 1) == "要投诉"


def test_suggestion_stays_bounded() -> None:
    text = "垃圾" + "长" * 100
    assert len(suggest(text, "垃圾")) <= PHRASE_MAX
    assert suggest("垃圾", "垃圾") == "垃圾"


def test_span_outside_the_text_is_an_error() -> None:
    with pytest.raises(ValueError):
        suggest_phrase("垃圾", 1, 5)


def test_check_accepts_a_phrase_holding_the_hit() -> None:
    assert check_phrase("  垃圾分类 ", hit_text="垃圾", existing=("垃圾桶",)) == "垃圾分类"


@pytest.mark.parametrize(
    ("phrase", "message"),
    [
        ("", "请填写"),
        ("   ", "请填写"),
        ("分类站", "必须包含命中的文字「垃圾」"),
        ("垃圾", "不能只是命中词本身"),
        ("垃 圾", "必须包含"),
        ("垃圾桶", "已经在白名单里"),
        ("垃圾\n分类", "控制字符"),
        ("垃圾" + "类" * PHRASE_MAX, f"最多 {PHRASE_MAX} 个字"),
    ],
)
def test_check_refuses_with_a_chinese_reason(phrase: str, message: str) -> None:
    with pytest.raises(PhraseError, match=message):
        check_phrase(phrase, hit_text="垃圾", existing=("垃圾桶",))


def test_check_refuses_only_punctuation() -> None:
    with pytest.raises(PhraseError, match="只有空格、标点"):
        check_phrase("！？", existing=())
