"""The allow-list backtest over the archive, on SQLite and PostgreSQL, against the matcher itself.

Hits are seeded as the live pipeline would store them (the real matcher under the group's older
rules, without any allow-list); the expected figures come from scanning every seeded message
again with the current group and with the phrase added: a hit the second scan lacks is dropped.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count

from sqlalchemy import Engine

from monitor.archive import Archive, ArchivedHit, GroupCommitWriter, HitPart, InboundRecord
from monitor.review.allow_backtest import BacktestLimits, run_backtest
from rules.matcher import Matcher, compile_rules
from rules.models import Audience, RuleSet, SensitiveGroup, Severity, Word

GROUP = "垃圾话"
PHRASE = "垃圾分类"
CURRENT_ALLOW = ("垃圾桶",)
OLD = SensitiveGroup(GROUP, Severity.LOW, Audience.ANY, (Word("垃圾"), Word("废物")))
OTHER = SensitiveGroup("别的组", Severity.LOW, Audience.ANY, (Word("垃圾"),))

TEXTS = [
    "我家附近有垃圾分类站",  # inside the phrase
    "垃 圾 分 类做得好",  # inside it once normalised (separators removed)
    "你这个垃圾",  # kept
    "垃圾垃圾分类",  # one kept, one inside
    "扔进垃圾桶，垃圾分类",  # one in the current allow-list, one inside the phrase
    "<b>垃圾分类</b> & 废物",  # inside (escaped on the page), and another word kept
    "垃圾，分类",  # clause punctuation: the phrase does not occur
    "垃圾桶旁边",  # already allowed today
    "分类垃圾",  # kept
    "lajifenlei",  # pinyin of the word inside Latin text: no hit at all
]


@cache
def matcher(group: SensitiveGroup) -> Matcher:
    return compile_rules(RuleSet(groups=(group,)))


def scan(group: SensitiveGroup, text: str) -> set[tuple[int, int, str]]:
    return {(h.start, h.end, h.word) for h in matcher(group).scan(text)}


async def seed(writer: GroupCommitWriter, texts: list[str]) -> list[tuple[str, set]]:
    """Store ``texts`` with their hits under the old rules; (text, its hits of GROUP) each."""
    archive = Archive(writer)
    out = []
    ids = count(1)
    base = datetime(2025, 3, 1, tzinfo=UTC)
    for i, text in enumerate(texts):
        spans = sorted(scan(OLD, text))
        hits = [ArchivedHit(w, GROUP, 1, s, e) for s, e, w in spans]
        hits += [ArchivedHit(w, OTHER.name, 1, s, e) for s, e, w in sorted(scan(OTHER, text))]
        n = next(ids)
        record = InboundRecord(
            dedupe_key=f"m{n}",
            channel="app",
            msg_type="text",
            from_user="u",
            to_user="corp",
            create_time=int((base + timedelta(minutes=i)).timestamp()),
            raw="{}",
            content=text,
            rules_version="old",
            conversation_id=f"app:u{i % 3}",
            direction="customer",
            hits=tuple(hits),
        )
        await archive.store_inbound(record)
        out.append((text, set(spans)))
    # A word split over two messages: stored, never judged.
    split = ArchivedHit("垃圾", GROUP, 1, 0, 1, via="split", parts=(HitPart("m1", 9, 10),))
    await archive.store_inbound(
        InboundRecord(
            dedupe_key="split",
            channel="app",
            msg_type="text",
            from_user="u",
            to_user="corp",
            create_time=int(base.timestamp()),
            raw="{}",
            content="圾分类",
            rules_version="old",
            conversation_id="app:u0",
            direction="customer",
            hits=(split,),
        )
    )
    return out


def expected(seeded: list[tuple[str, set]]) -> dict[str, int]:
    current = replace(OLD, allow=CURRENT_ALLOW)
    proposed = replace(OLD, allow=(*CURRENT_ALLOW, PHRASE))
    dropped = already = total = 0
    for text, old_hits in seeded:
        now, then = scan(current, text), scan(proposed, text)
        total += len(old_hits)
        already += len(old_hits - now)
        dropped += len(now - then)
    return {"total": total, "dropped": dropped, "already": already}


async def test_counts_match_the_matcher_on_both_databases(
    writer: GroupCommitWriter, engine: Engine
) -> None:
    seeded = await seed(writer, TEXTS)
    want = expected(seeded)
    assert want["dropped"] >= 5 and want["already"] >= 2  # the seed exercises both
    with engine.connect() as conn:
        result = run_backtest(
            conn,
            GROUP,
            PHRASE,
            current_allow=CURRENT_ALLOW,
            limits=BacktestLimits(page_size=3),  # several pages
        )
    assert result.total == want["total"] + 1  # + the split hit
    assert result.checked == result.total and result.complete
    assert result.dropped == want["dropped"]
    assert result.already_allowed == want["already"]
    assert result.split == 1
    assert result.remaining == result.checked - want["dropped"] - want["already"]
    assert len(result.examples) == want["dropped"]
    # Newest first, escaped, the hit marked, linking to its conversation.
    assert [e.hit_id for e in result.examples] == sorted(
        (e.hit_id for e in result.examples), reverse=True
    )
    snippets = [str(e.snippet) for e in result.examples]
    assert "&lt;b&gt;<mark>垃圾</mark>分类&lt;/b&gt; &amp; 废物" in snippets
    assert "我家附近有<mark>垃圾</mark>分类站" in snippets
    assert "<mark>垃 圾</mark> 分 类做得好" in snippets
    assert all(e.conversation_id.startswith("app:u") for e in result.examples)
    counts = result.counts()
    assert counts["dropped"] == want["dropped"] and counts["complete"] is True


async def test_limits_are_kept_and_said(writer: GroupCommitWriter, engine: Engine) -> None:
    seeded = await seed(writer, TEXTS)
    with engine.connect() as conn:
        capped = run_backtest(
            conn,
            GROUP,
            PHRASE,
            current_allow=CURRENT_ALLOW,
            limits=BacktestLimits(max_checked=4, page_size=3, max_examples=1),
        )
        rest = run_backtest(
            conn, GROUP, PHRASE, current_allow=CURRENT_ALLOW, limits=BacktestLimits(page_size=500)
        )
    assert capped.checked == 4 and not capped.complete
    assert capped.total == rest.total > 4
    assert len(capped.examples) <= 1
    # The four checked are the newest: the split hit (stored last), then the last texts' hits.
    newest = [hits for _, hits in seeded if hits][::-1]
    flat = [h for hits in newest for h in sorted(hits, reverse=True)][:3]
    assert capped.split == 1
    assert capped.checked - capped.split == len(flat)
    # A zero time budget checks nothing and says so.
    with engine.connect() as conn:
        none = run_backtest(conn, GROUP, PHRASE, limits=BacktestLimits(time_budget_s=0.0))
    assert none.checked == 0 and not none.complete and none.total == rest.total


async def test_other_groups_and_an_empty_archive(writer: GroupCommitWriter, engine: Engine) -> None:
    with engine.connect() as conn:
        empty = run_backtest(conn, GROUP, PHRASE)
    assert (empty.total, empty.checked, empty.dropped, empty.complete) == (0, 0, 0, True)
    await seed(writer, TEXTS)
    with engine.connect() as conn:
        other = run_backtest(conn, "没有这组", PHRASE)
    assert other.total == 0 and other.examples == ()
