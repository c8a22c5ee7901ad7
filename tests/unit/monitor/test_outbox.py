"""The outbox worker on a simulated clock against the fake WeCom API: per-recipient rate limit and
digests, escalation, leases after a crash, failure classification, the team-room robot."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import Connection, Engine, select

from bot.config import AlertsConfig
from monitor.alerts.cards import AlertWording
from monitor.alerts.intake import AlertIntake, CardStyle
from monitor.alerts.models import OutboxKind, OutboxRecord, RecipientSendRecord
from monitor.alerts.outbox import OutboxSettings, OutboxWorker
from monitor.alerts.outbox_txn import ROBOT_RECIPIENT, claim_due
from monitor.alerts.policy import AlertPolicy, AlertSubject, RateLimit
from monitor.alerts.store import enqueue
from monitor.archive import Archive, GroupCommitWriter, InboundRecord, create_schema, make_engine
from monitor.archive.models import ArchivedHit
from rules.models import Audience, Hit, SensitiveGroup, Severity, Word
from wecom_sdk.client import RetryPolicy, WeComClient
from wecom_sdk.testing.fake_api import FakeWeCom

ServerFactory = Callable[..., Awaitable[TestServer]]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
GROUP = SensitiveGroup(
    name="客户维权风险",
    severity=Severity.HIGH,
    audience=Audience.CUSTOMER,
    words=(Word("维权"),),
)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Env:
    archive: Archive
    writer: GroupCommitWriter
    fake: FakeWeCom
    client: WeComClient
    clock: Clock
    policy: AlertPolicy
    style: CardStyle

    def worker(self, **settings: Any) -> OutboxWorker:
        rate = settings.pop("rate", RateLimit())
        return OutboxWorker(
            self.writer,
            self.client,
            lambda: self.policy,
            self.style,
            settings=OutboxSettings(**settings),
            rate=rate,
            clock=self.clock,
            rand=lambda: 1.0,
        )

    async def message(self, n: int, conversation: str, text: str = "我要维权") -> None:
        start = text.index("维权") if "维权" in text else 0
        hit = Hit("维权", start, start + 2, GROUP.name, Severity.HIGH)
        subject = AlertSubject(
            conversation_id=conversation,
            customer_id=conversation.rpartition(":")[2],
            customer_name="",
            staff_userid="",
            author=Audience.CUSTOMER,
            text=text,
            hits=(hit,),
            at=self.clock(),
        )
        await self.archive.store_inbound(
            InboundRecord(
                dedupe_key=f"msg:{n}",
                channel="kf",
                msg_type="text",
                from_user=subject.customer_id,
                to_user="wk",
                create_time=0,
                raw="{}",
                content=text,
                conversation_id=conversation,
                direction="customer",
                rules_version="v1",
                hits=(ArchivedHit("维权", GROUP.name, 3, hit.start, hit.end),),
                effects=(AlertIntake(self.policy, subject, self.style),),
            )
        )

    def rows(self) -> list[Any]:
        with self.writer.engine.connect() as conn:
            return list(conn.execute(select(OutboxRecord).order_by(OutboxRecord.id)))  # type: ignore[arg-type]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
async def env(
    engine: Engine, writer: GroupCommitWriter, aiohttp_server: ServerFactory
) -> AsyncIterator[Env]:
    clock = Clock()
    fake = FakeWeCom(corp_id="wwcorp")
    server = await aiohttp_server(fake.app)
    client = WeComClient(
        "wwcorp",
        fake.secret,
        api_base=str(server.make_url("/cgi-bin/")),
        agent_id=1000002,
        retry=RetryPolicy(attempts=1),
    )
    config = AlertsConfig(managers=("mgr1",), escalate_after_s=600, escalate_to=("boss",))
    policy = AlertPolicy(config, {GROUP.name: GROUP})
    yield Env(Archive(writer, clock=clock), writer, fake, client, clock, policy, CardStyle())
    await client.close()


async def test_rate_limited_recipient_gets_a_digest_once_there_is_room(env: Env) -> None:
    for n in range(25):  # 25 conversations in one minute: 25 new alerts for mgr1
        await env.message(n, f"kf:wk:c{n}")
    worker = env.worker(rate=RateLimit(per_minute=20, per_hour=600))
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 20
    skipped = [r for r in env.rows() if r.kind == "card" and r.status == "skipped"]
    assert len(skipped) == 5
    digest = next(r for r in env.rows() if r.kind == "digest")
    assert digest.status == "pending" and digest.next_at == T0 + timedelta(minutes=1)

    env.clock.advance(59)
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 20  # still no room
    env.clock.advance(1)
    await worker.drain()
    sends = env.fake.calls_to("message/send")
    assert len(sends) == 21
    text = sends[-1].body["text"]["content"]
    assert sends[-1].body["msgtype"] == "text" and sends[-1].body["touser"] == "mgr1"
    assert "以下 5 条已合并" in text
    assert all(f"c{n}" in text for n in range(20, 25))


async def test_digest_skipped_when_nothing_is_held_and_history_bounds_sends(env: Env) -> None:
    worker = env.worker(rate=RateLimit(per_minute=2, per_hour=3), escalation_every_s=1e9)
    for n in range(4):
        await env.message(n, f"kf:wk:c{n}")
        await worker.drain()
        env.clock.advance(61)
    # Hourly budget 3: the 4th alert waits in a digest until the first send is an hour old.
    assert len(env.fake.calls_to("message/send")) == 3
    env.clock.now = T0 + timedelta(hours=1)
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 4
    assert "c3" in env.fake.calls_to("message/send")[-1].body["text"]["content"]


async def test_unclaimed_alert_is_escalated_once(env: Env) -> None:
    worker = env.worker(escalation_every_s=0)
    await env.message(1, "kf:wk:c1")
    await worker.drain()
    env.clock.advance(599)
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 1
    env.clock.advance(1)
    await worker.drain()
    sends = env.fake.calls_to("message/send")
    assert len(sends) == 2
    card = sends[1].body["template_card"]
    assert sends[1].body["touser"] == "boss"
    assert card["main_title"]["title"].startswith("【升级】")
    assert "10 分钟无人认领" in card["main_title"]["desc"]
    assert "【维权】" in card["sub_title_text"]
    assert card["task_id"] != sends[0].body["template_card"]["task_id"]
    env.clock.advance(3600)
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 2


async def test_a_crashed_workers_lease_expires_and_the_row_is_sent_once(env: Env) -> None:
    await env.message(1, "kf:wk:c1")
    # A worker claims the row and dies before sending (kill -9): the lease keeps others off...
    claimed, _ = await env.writer.run(
        lambda conn: claim_due(conn, env.clock(), "dead-worker", 10, 30.0)
    )
    assert len(claimed) == 1
    worker = env.worker(lease_s=30.0)
    await worker.drain()
    assert env.fake.calls_to("message/send") == []
    # ...until it runs out.
    env.clock.advance(31)
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 1
    (row,) = env.rows()
    assert row.status == "sent" and row.lease_until is None and row.attempts == 1


async def test_retry_after_system_busy_and_give_up_on_invalid_recipients(env: Env) -> None:
    worker = env.worker(retry_base_s=2.0)
    env.fake.fail_next("message/send", -1)
    await env.message(1, "kf:wk:c1")
    await worker.drain()
    (row,) = env.rows()
    assert row.status == "pending" and row.attempts == 1 and "-1" in (row.last_error or "")
    assert row.next_at == T0 + timedelta(seconds=2)  # first retry: the 2 s base (jitter at 1.0)
    env.clock.advance(2)
    await worker.drain()
    assert env.rows()[0].status == "sent"

    env.fake.fail_next("message/send", 81013)  # every recipient invalid: retrying cannot help
    await env.message(2, "kf:wk:c2")
    await worker.drain()
    failed = env.rows()[1]
    assert failed.status == "failed" and "81013" in (failed.last_error or "")


async def test_bad_secret_keeps_alerts_pending_for_the_operator(env: Env) -> None:
    env.fake.secret = "rotated"  # our secret is now wrong: gettoken answers 40001
    worker = env.worker(config_retry_s=300.0)
    await env.message(1, "kf:wk:c1")
    await worker.drain()
    (row,) = env.rows()
    assert row.status == "pending" and row.next_at == T0 + timedelta(seconds=300)
    env.fake.secret = env.client._secret  # fixed
    env.clock.advance(300)
    await worker.drain()
    assert env.rows()[0].status == "sent"


async def test_robot_posts_new_alerts_to_the_team_room(env: Env) -> None:
    env.style = CardStyle(robot=True)
    url = str(env.client.url("webhook/send").with_query(key="robot-key-1"))
    worker = env.worker(robot_webhook=url)
    await env.message(1, "kf:wk:c1", "<font>我要维权</font>[点我](http://x)")
    await env.message(2, "kf:wk:c1", "还是要维权")  # joins the alert: no second robot post
    await worker.drain()
    (post,) = env.fake.calls_to("webhook/send")
    content = post.body["markdown"]["content"]
    assert "客户维权风险" in content
    assert "[点我](http" not in content and "<font>我要" not in content  # customer text defused
    payloads = [json.loads(r.payload) for r in env.rows() if r.kind == "robot"]
    assert len(payloads) == 1


# Survivors of mutation testing (mutmut on outbox.py / outbox_txn.py), each pinned by a test.


async def test_send_history_keeps_the_rate_limit_across_passes(env: Env) -> None:
    worker = env.worker(rate=RateLimit(per_minute=20, per_hour=600), escalation_every_s=1e9)
    for n in range(20):
        await env.message(n, f"kf:wk:c{n}")
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 20
    env.clock.advance(10)  # a later pass, still inside the minute: mgr1's budget is spent
    await env.message(20, "kf:wk:c20")
    await worker.drain()
    assert len(env.fake.calls_to("message/send")) == 20
    assert env.rows()[-2].status == "skipped"  # the card; its digest waits (the last row)
    assert env.rows()[-1].kind == "digest" and env.rows()[-1].status == "pending"


async def test_waiting_robot_posts_and_digests_spend_no_attempt(env: Env) -> None:
    titles = {s: f"客户级别{int(s)}" for s in Severity}
    env.style = CardStyle(robot=True, wording=AlertWording(customer=titles))
    url = str(env.client.url("webhook/send").with_query(key="robot-key-1"))
    worker = env.worker(
        robot_webhook=url, rate=RateLimit(per_minute=2, per_hour=600), escalation_every_s=1e9
    )
    for n in range(3):  # three new alerts: three cards and three robot posts, two of each fit
        await env.message(n, f"kf:wk:c{n}")
    await worker.drain()
    assert len(env.fake.calls_to("webhook/send")) == 2
    assert len(env.fake.calls_to("message/send")) == 2
    waiting = [r for r in env.rows() if r.status == "pending"]
    assert sorted(r.kind for r in waiting) == ["digest", "robot"]
    for row in waiting:  # waiting for a slot is not a failed attempt
        assert row.next_at == T0 + timedelta(minutes=1) and row.attempts == 0, row.kind

    env.clock.advance(60)
    await worker.drain()
    assert len(env.fake.calls_to("webhook/send")) == 3
    digest = env.fake.calls_to("message/send")[-1]
    content = digest.body["text"]["content"]
    assert "客户级别3" in content and "客户维权风险" not in content  # the configured wording
    assert CardStyle().review_base in content  # the link to the review web
    assert digest.body["enable_duplicate_check"] == 1
    with env.writer.engine.connect() as conn:
        sends = Counter(r.recipient for r in conn.execute(select(RecipientSendRecord)))  # type: ignore[arg-type]
    assert sends == {"mgr1": 3, ROBOT_RECIPIENT: 3}  # two cards and the digest; three posts


async def test_a_card_update_ahead_in_the_batch_does_not_stop_the_cards_behind_it(
    env: Env,
) -> None:
    worker = env.worker(escalation_every_s=1e9)
    await env.message(1, "kf:wk:c1")
    await worker.drain()
    (card,) = env.rows()
    assert card.response_code == env.fake.calls_to("message/send")[0].answer["response_code"]

    def queue_update(conn: Connection) -> int:
        payload = {"userids": ["mgr1"], "response_code": card.response_code, "replace_name": "x"}
        return enqueue(
            conn,
            kind=OutboxKind.CARD_UPDATE,
            alert_id=card.alert_id,
            recipients=("mgr1",),
            payload=payload,
            now=env.clock(),
        )

    await env.writer.run(queue_update)
    await env.message(2, "kf:wk:c2")
    assert await worker.step() == 2  # one batch: the update, then the card
    assert len(env.fake.calls_to("message/update_template_card")) == 1
    assert len(env.fake.calls_to("message/send")) == 2
    assert {r.status for r in env.rows()} == {"sent"}


async def test_claims_take_the_oldest_rows_up_to_the_batch_under_a_named_lease(env: Env) -> None:
    for n in range(5):
        await env.message(n, f"kf:wk:c{n}")
    claimed, _ = await env.writer.run(lambda conn: claim_due(conn, env.clock(), "w1", 3, 30.0))
    assert [r.id for r in claimed] == [1, 2, 3]
    assert [r.lease_owner for r in env.rows()] == ["w1", "w1", "w1", None, None]
    # The lease holds until it has run out, not at its last instant.
    env.clock.advance(30)
    again, _ = await env.writer.run(lambda conn: claim_due(conn, env.clock(), "w2", 10, 30.0))
    assert [r.id for r in again] == [4, 5]


async def test_robot_rows_without_a_webhook_are_skipped_and_say_why(env: Env) -> None:
    env.style = CardStyle(robot=True)
    worker = env.worker(robot_webhook="")
    await env.message(1, "kf:wk:c1")
    await worker.drain()
    robot = next(r for r in env.rows() if r.kind == "robot")
    assert robot.status == "skipped" and "robot_webhook" in (robot.last_error or "")
    assert env.fake.calls_to("webhook/send") == []
