"""Issue 19: the plan of ``rules sync-intercept`` (pure): which WeCom interception rules to add,
change and delete so the managed ones hold exactly the staff words, within WeCom's limits."""

from __future__ import annotations

import pytest

from rules.intercept import (
    MAX_RULES,
    MAX_WORDS_PER_RULE,
    Create,
    InterceptLimitError,
    InterceptRange,
    InterceptRule,
    InterceptTarget,
    is_managed,
    plan,
    staff_words,
)
from rules.models import Audience, RuleSet, SensitiveGroup, Severity, Word

TARGET = InterceptTarget()  # block, no semantics, the whole company


def rule(n: int, words: str, *, kind: int = 1, rng: InterceptRange | None = None) -> InterceptRule:
    return InterceptRule(
        f"id{n}", f"sentinel-{n}", tuple(words.split()), kind, (), rng or TARGET.range
    )


def words(count: int, stem: str = "词") -> list[str]:
    return [f"{stem}{i:04d}" for i in range(count)]


def test_the_default_range_is_the_whole_company() -> None:
    assert TARGET.range == InterceptRange((), (1,))
    assert InterceptRange.of(["b", "a", "a"], []) == InterceptRange(("a", "b"), ())


@pytest.mark.parametrize(
    ("name", "managed"),
    [
        ("sentinel-1", True),
        ("sentinel-12", True),
        ("sentinel-", False),
        ("sentinel-x", False),
        ("客服禁语", False),
        ("my-sentinel-1", False),
    ],
)
def test_managed_rules_are_named_sentinel_n(name: str, managed: bool) -> None:
    assert is_managed(name) is managed


def test_staff_words_come_from_staff_and_any_groups_once_in_file_order() -> None:
    def group(name: str, audience: Audience, *texts: str) -> SensitiveGroup:
        return SensitiveGroup(name, Severity.HIGH, audience, tuple(Word(t) for t in texts))

    ruleset = RuleSet(
        groups=(
            group("c", Audience.CUSTOMER, "维权", "投诉"),
            group("s", Audience.STAFF, "红包", "小费"),
            group("a", Audience.ANY, "小费", "加我微信"),
        )
    )
    assert staff_words(ruleset) == ["红包", "小费", "加我微信"]


def test_nothing_held_makes_one_rule_per_300_words() -> None:
    result = plan(words(650), [], others=0, target=TARGET)
    assert [(c.name, len(c.words)) for c in result.creates] == [
        ("sentinel-1", 300),
        ("sentinel-2", 300),
        ("sentinel-3", 50),
    ]
    assert not result.updates and not result.deletes
    assert result.creates[0].words[0] == "词0000" and result.creates[2].words[-1] == "词0649"


@pytest.mark.parametrize(
    ("held", "wanted", "expected"),
    [
        # in step: nothing to do
        ([rule(1, "红包 小费")], "红包 小费", ["no changes"]),
        # order inside a rule does not matter
        ([rule(1, "小费 红包")], "红包 小费", ["no changes"]),
        # a new word joins the rule with room; a dropped word leaves it
        ([rule(1, "红包 小费")], "红包 回扣", ["~ update sentinel-1 (id1): +回扣 -小费"]),
        # every word gone: the rule is deleted
        ([rule(1, "红包"), rule(2, "小费")], "红包", ["- delete sentinel-2 (id2): 1 words"]),
        # the type and the range follow the target
        (
            [rule(1, "红包", kind=2, rng=InterceptRange(("zhangsan",), ()))],
            "红包",
            [
                "~ update sentinel-1 (id1): intercept_type 2 -> 1; +department 1; -user zhangsan",
            ],
        ),
        # a word held twice stays in the first rule only
        (
            [rule(1, "红包 小费"), rule(2, "小费 回扣")],
            "红包 小费 回扣",
            ["~ update sentinel-2 (id2): -小费"],
        ),
    ],
)
def test_changes(held: list[InterceptRule], wanted: str, expected: list[str]) -> None:
    assert plan(wanted.split(), held, others=3, target=TARGET).lines() == expected


def test_new_words_fill_free_room_before_a_new_rule_and_reuse_a_free_number() -> None:
    full = rule(1, " ".join(words(MAX_WORDS_PER_RULE)))
    almost = rule(3, " ".join(words(MAX_WORDS_PER_RULE - 1, "旧")))
    wanted = [*full.words, *almost.words, "新一", "新二"]
    result = plan(wanted, [full, almost], others=0, target=TARGET)
    (update,) = result.updates
    assert update.rule is almost and update.added == ("新一",)
    assert result.creates == (Create("sentinel-2", ("新二",)),)


def test_adding_one_word_touches_one_rule_only() -> None:
    held = [rule(1, " ".join(words(300))), rule(2, " ".join(words(100, "乙")))]
    result = plan(["甲", *held[0].words, *held[1].words], held, others=0, target=TARGET)
    assert [(u.rule.name, u.added, u.removed) for u in result.updates] == [
        ("sentinel-2", ("甲",), ())
    ]
    assert not result.creates


def test_words_too_long_for_wecom_are_skipped_and_reported() -> None:
    long_word = "长" * 33
    result = plan(["红包", long_word, "长" * 32], [], others=0, target=TARGET)
    assert result.creates == (Create("sentinel-1", ("红包", "长" * 32)),)
    assert result.lines()[0] == f"skip {long_word}: longer than 32 characters"


def test_more_rules_than_wecom_allows_is_refused_before_anything_is_written() -> None:
    # hand-made rules count towards the company's 100
    with pytest.raises(InterceptLimitError, match="100 rules in all"):
        plan(words(301), [], others=MAX_RULES - 1, target=TARGET)
    assert len(plan(words(300), [], others=MAX_RULES - 1, target=TARGET).creates) == 1


def test_semantics_follow_the_target() -> None:
    target = InterceptTarget(intercept_type=1, semantics=(1, 3))
    (update,) = plan(["红包"], [rule(1, "红包")], others=0, target=target).updates
    assert update.semantics_changed and not update.words_changed
