"""rules.engine: atomic hot reload, watch(), reply active hours, no per-customer state; the shipped
samples. Reply cooldowns are the bot's: tests/unit/bot/test_cooldowns.py."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from rules.engine import RuleEngine
from rules.errors import RuleFileError
from rules.loader import load_rules
from rules.models import Audience, Severity, TextReplyContent
from tests.support.paths import DATA, REPO

SAMPLES = REPO / "rules" / "samples"
GOOD = DATA / "rules" / "good"

GROUP = """\
[[group]]
name = "风险"
severity = "high"
audience = "customer"
words = ["{word}"]
"""

REPLIES = """\
[[reply]]
name = "白天"
keywords = ["在吗"]
priority = 10
reply = "白天好"
active_hours = ["09:00-18:00"]

[[reply]]
name = "夜里"
keywords = ["在吗"]
priority = 5
reply = "夜里好"
active_hours = ["22:00-06:00"]

[[reply]]
name = "兜底"
keywords = ["在吗"]
reply = "您好"

[[reply]]
name = "发货"
keywords = ["发货"]
reply = "48 小时内发货"
cooldown_s = 60
"""


def at(hour: int, minute: int = 0) -> float:
    """Epoch seconds of a local wall-clock time (the engine reads active hours in local time)."""
    return datetime(2024, 5, 1, hour, minute).timestamp()


def words(engine: RuleEngine, text: str, author: Audience = Audience.CUSTOMER) -> list[str]:
    return [h.word for h in engine.inspect(text, author).hits]


def bump(path: Path, text: str) -> None:
    """Rewrite a file and move its mtime forward, so a change is seen without sleeping."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    later = before + 5_000_000_000
    os.utime(path, ns=(later, later))


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "risk.toml").write_text(GROUP.format(word="维权"), encoding="utf-8")
    (folder / "replies.toml").write_text(REPLIES, encoding="utf-8")
    return folder


# -- loading and reload ------------------------------------------------------------------------


def test_loads_at_construction(rules_dir: Path) -> None:
    engine = RuleEngine([rules_dir])
    assert engine.version == load_rules([rules_dir]).version
    result = engine.inspect("我要维权", Audience.CUSTOMER)
    assert [h.word for h in result.hits] == ["维权"]
    assert result.rules_version == engine.version


def test_broken_initial_rules_raise(rules_dir: Path) -> None:
    (rules_dir / "risk.toml").write_text("[[group]\n", encoding="utf-8")
    with pytest.raises(RuleFileError):
        RuleEngine([rules_dir])


def test_reload_keeps_old_rules_on_broken_file(
    rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = RuleEngine([rules_dir])
    version = engine.version
    bump(rules_dir / "risk.toml", GROUP.format(word="投诉").replace('"high"', '"urgent"'))
    with caplog.at_level(logging.ERROR, logger="sentinel.rules"):
        assert engine.reload() is False
    assert engine.version == version
    assert words(engine, "我要维权，我要投诉") == ["维权"]
    (record,) = [r for r in caplog.records if r.name == "sentinel.rules"]
    assert "risk.toml:3: severity" in record.getMessage() and version in record.getMessage()


def test_reload_swaps_in_good_rules(rules_dir: Path) -> None:
    engine = RuleEngine([rules_dir])
    old = engine.version
    bump(rules_dir / "risk.toml", GROUP.format(word="投诉"))
    assert engine.changed()
    assert engine.reload() is True
    assert engine.version != old and not engine.changed()
    assert words(engine, "我要维权，我要投诉") == ["投诉"]


def test_old_inspection_stays_on_its_version(rules_dir: Path) -> None:
    """An Inspection names the version it used; a reload never rewrites it."""
    engine = RuleEngine([rules_dir])
    before = engine.inspect("我要维权")
    bump(rules_dir / "risk.toml", GROUP.format(word="投诉"))
    engine.reload()
    assert before.rules_version != engine.version
    assert [h.word for h in before.hits] == ["维权"]


async def wait_for(predicate: object, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        assert loop.time() < deadline, "watch() did not pick up the change"
        await asyncio.sleep(0.01)


async def test_watch_picks_up_changes_and_new_files(rules_dir: Path) -> None:
    engine = RuleEngine([rules_dir], poll_interval_s=0.01)
    task = asyncio.create_task(engine.watch())
    try:
        first = engine.version
        bump(rules_dir / "risk.toml", GROUP.format(word="投诉"))
        await wait_for(lambda: engine.version != first)
        assert words(engine, "投诉") == ["投诉"]

        second = engine.version
        bump(rules_dir / "more.toml", GROUP.format(word="曝光").replace("风险", "舆情"))
        await wait_for(lambda: engine.version != second)
        assert words(engine, "投诉然后曝光") == ["投诉", "曝光"]

        # A broken edit is rejected once (not on every poll) and the rules stay.
        third = engine.version
        bump(rules_dir / "more.toml", "[[group]\n")
        await wait_for(lambda: not engine.changed())
        assert engine.version == third
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- reply gates -------------------------------------------------------------------------------


def test_active_hours_fall_through_by_priority(rules_dir: Path) -> None:
    engine = RuleEngine([rules_dir])

    def reply(moment: float) -> str | None:
        rule = engine.inspect("在吗", Audience.CUSTOMER, now=moment).reply
        return rule.name if rule else None

    assert reply(at(9)) == "白天"
    assert reply(at(17, 59)) == "白天"
    assert reply(at(18)) == "兜底"  # end is exclusive
    assert reply(at(22)) == "夜里"
    assert reply(at(23, 30)) == "夜里"  # the window spans midnight
    assert reply(at(5, 59)) == "夜里"
    assert reply(at(6)) == "兜底"


def test_active_hours_use_the_injected_clock(rules_dir: Path) -> None:
    now = [at(10)]
    engine = RuleEngine([rules_dir], clock=lambda: now[0])
    assert engine.inspect("在吗").reply is not None
    assert engine.inspect("在吗").reply.name == "白天"  # type: ignore[union-attr]
    now[0] = at(23)
    assert engine.inspect("在吗").reply.name == "夜里"  # type: ignore[union-attr]


def test_inspect_keeps_no_per_customer_state(rules_dir: Path) -> None:
    """A rule with a cooldown answers every inspection: the bot applies cooldowns, not rules."""
    now = [at(12)]
    engine = RuleEngine([rules_dir], clock=lambda: now[0])
    assert all(engine.inspect("什么时候发货").reply for _ in range(3))
    now[0] += 59
    assert engine.inspect("什么时候发货").reply is not None
    # A rule without cooldown answers every time as well.
    assert all(engine.inspect("在吗").reply for _ in range(3))


# -- the shipped samples satisfy the design contract -------------------------------------------


@pytest.fixture(scope="module")
def samples() -> RuleEngine:
    return RuleEngine([SAMPLES])


def test_config_default_paths_load() -> None:
    from bot.config import RulesConfig

    engine = RuleEngine([REPO / p for p in RulesConfig().paths])
    assert engine.version


@pytest.mark.parametrize("word", ["维权", "投诉", "12315"])
def test_samples_customer_complaints_are_high(samples: RuleEngine, word: str) -> None:
    result = samples.inspect(f"你们再不处理，我就去{word}", Audience.CUSTOMER)
    hits = [h for h in result.hits if h.word == word]
    assert hits and all(h.severity is Severity.HIGH for h in hits)
    group = next(g for g in samples.rules.groups if g.name == hits[0].group)
    assert group.audience is Audience.CUSTOMER
    assert group.recipients == ()  # -> [alerts].managers
    assert result.recipients == ()


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("处理好了的话给我发个红包吧", "红包"),
        ("这单帮您加急，给点小费就行", "小费"),
        ("您直接私下转账给我，比平台便宜", "私下转账"),
    ],
)
def test_samples_staff_asking_for_money(samples: RuleEngine, text: str, word: str) -> None:
    hits = [h for h in samples.inspect(text, Audience.STAFF).hits if h.word == word]
    assert hits and hits[0].severity >= Severity.HIGH
    group = next(g for g in samples.rules.groups if g.name == hits[0].group)
    assert group.audience is Audience.STAFF and group.recipients == ()
    # The same words from a customer are not staff misconduct.
    assert not [h for h in samples.inspect(text, Audience.CUSTOMER).hits if h.word == word]


@pytest.mark.parametrize("hour", [3, 12, 23])
def test_samples_human_handoff_at_any_hour(hour: int) -> None:
    engine = RuleEngine([SAMPLES], clock=lambda: at(hour))
    for _ in range(2):  # and every time, not only once
        reply = engine.inspect("人工", Audience.CUSTOMER).reply
        assert reply is not None and reply.handoff
        assert isinstance(reply.reply, TextReplyContent) and "人工客服" in reply.reply.text


def test_samples_copy_loads_the_same(tmp_path: Path) -> None:
    copy = tmp_path / "samples"
    shutil.copytree(SAMPLES, copy)
    assert RuleEngine([copy]).version == load_rules([SAMPLES]).version


@pytest.mark.parametrize(
    ("text", "author"),
    [
        ("退款已到账，谢谢", Audience.CUSTOMER),  # allow-list
        ("您有病历的话也可以上传", Audience.STAFF),  # boundary = "word"
        ("麻烦把垃圾袋放门口", Audience.STAFF),
        ("请问什么时候发货？", Audience.CUSTOMER),
        ("好的，这边已经为您登记了", Audience.STAFF),
    ],
)
def test_samples_stay_quiet_on_ordinary_messages(
    samples: RuleEngine, text: str, author: Audience
) -> None:
    assert samples.inspect(text, author).hits == ()


def test_samples_faq_replies(samples: RuleEngine) -> None:
    def reply(text: str) -> str | None:
        rule = samples.inspect(text, Audience.CUSTOMER, now=at(12)).reply
        return rule.name if rule else None

    assert reply("请问什么时候发货？") == "发货物流"
    assert reply("我想退货") == "退换货"
    assert reply("这个多少钱") == "价格优惠"
    assert reply("退货太麻烦了，转人工") == "转人工"  # the higher priority wins
    # must_not: asking about 人工智能 is not asking for a human; the next rule may still answer
    assert reply("你们的人工智能客服怎么用") is None
    assert reply("人工 智 能") is None  # normalised like the keywords (spaces dropped)
    # Documented trade-off: the phrase vetoes the whole rule.
    assert reply("不要人工智能，我要人工") is None
    assert reply("人工智能退货怎么办") == "退换货"
    # 夜间留言 only at night; in the day a bare greeting gets the greeting
    assert reply("在吗") == "问候"
    assert samples.inspect("在吗", now=at(23)).reply.name == "夜间留言"  # type: ignore[union-attr]
    assert reply("你好") == "问候"
    assert reply("你好，我的发票开好了吗") is None  # not a bare greeting
