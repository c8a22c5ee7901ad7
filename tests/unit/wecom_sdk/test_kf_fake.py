"""The fake WeCom's 微信客服 rules (``kf_strict``), through the real client: the kf tests'
"never attempted" and "not delivered twice" claims are only as good as these refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from wecom_sdk.client import RetryPolicy, WeComClient
from wecom_sdk.errors import ApiError
from wecom_sdk.testing.fake_api import KF_OVER_LIMIT, KF_STATE_REFUSES, FakeWeCom, kf_text

ServerFactory = Callable[..., Awaitable[TestServer]]
KF = "wkFAKE"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def env(aiohttp_server: ServerFactory) -> AsyncIterator[tuple[FakeWeCom, WeComClient, Clock]]:
    clock = Clock()
    fake = FakeWeCom(kf_strict=True, wall=clock)
    server = await aiohttp_server(fake.app)
    client = WeComClient(
        fake.corp_id,
        fake.secret,
        api_base=str(server.make_url("/cgi-bin/")),
        retry=RetryPolicy(attempts=1),
    )
    yield fake, client, clock
    await client.close()


async def refused(call: Awaitable[Any]) -> int:
    with pytest.raises(ApiError) as info:
        await call
    return info.value.errcode


async def test_five_messages_per_customer_message_then_95001(
    env: tuple[FakeWeCom, WeComClient, Clock],
) -> None:
    fake, client, clock = env
    send = client.kf.send_msg
    assert await refused(send("wm1", KF, "text", {"content": "hi"})) == KF_OVER_LIMIT  # no window
    fake.add_kf_messages(KF, [kf_text("m1", "wm1", "你好", open_kfid=KF)])
    for n in range(5):
        await send("wm1", KF, "text", {"content": f"r{n}"}, msgid=f"id{n}")
    assert await refused(send("wm1", KF, "text", {"content": "6th"})) == KF_OVER_LIMIT
    fake.add_kf_messages(KF, [kf_text("m2", "wm1", "还有", open_kfid=KF)])  # a new window
    await send("wm1", KF, "text", {"content": "ok"})
    clock.now += 48 * 3600
    assert await refused(send("wm1", KF, "text", {"content": "late"})) == KF_OVER_LIMIT
    assert len(fake.kf_refused) == 3 and len(fake.kf_delivered_to("wm1")) == 6


async def test_msgid_is_delivered_once_and_states_2_to_4_refuse(
    env: tuple[FakeWeCom, WeComClient, Clock],
) -> None:
    fake, client, _ = env
    fake.add_kf_messages(KF, [kf_text("m1", "wm1", "你好", open_kfid=KF)])
    assert fake.kf_state(KF, "wm1") == 0
    for _ in range(3):
        assert await client.kf.send_msg("wm1", KF, "text", {"content": "x"}, msgid="same") == "same"
    assert len(fake.kf_deliveries) == 1 and fake.kf_duplicates == 2
    assert fake.kf_state(KF, "wm1") == 1  # an API message puts the customer with the assistant
    for state in (2, 3, 4):
        fake.set_kf_state(KF, "wm1", state)
        send = client.kf.send_msg("wm1", KF, "text", {"content": "y"})
        assert await refused(send) == KF_STATE_REFUSES
    fake.add_kf_messages(KF, [kf_text("m2", "wm1", "在吗", open_kfid=KF)])
    assert fake.kf_state(KF, "wm1") == 0  # an ended session restarts with the next message


async def test_welcome_code_is_single_use_and_lives_20s(
    env: tuple[FakeWeCom, WeComClient, Clock],
) -> None:
    fake, client, clock = env
    code = fake.issue_welcome_code(KF, "wm1")
    await client.kf.send_msg_on_event(code, "text", {"content": "欢迎"})
    assert await refused(client.kf.send_msg_on_event(code, "text", {"content": "again"})) == 40058
    late = fake.issue_welcome_code(KF, "wm2")
    clock.now += 20
    assert await refused(client.kf.send_msg_on_event(late, "text", {"content": "x"})) == 40058
    assert [(d.touser, d.via) for d in fake.kf_deliveries] == [("wm1", "send_msg_on_event")]
    assert await refused(client.kf.send_msg_on_event("made-up", "text", {"content": "x"})) == 40058


async def test_sync_msg_checks_tokens_and_limits_tokenless_pulls(
    env: tuple[FakeWeCom, WeComClient, Clock],
) -> None:
    fake, client, clock = env
    token = fake.issue_kf_token(KF)
    await client.kf.sync_msg(KF, token=token)
    assert await refused(client.kf.sync_msg("wkOTHER", token=token)) == 95007
    assert await refused(client.kf.sync_msg(KF, token="kft-unknown")) == 95007
    clock.now += 600
    assert await refused(client.kf.sync_msg(KF, token=token)) == 95007  # 10 min
    for _ in range(fake.kf_tokenless_per_minute):
        await client.kf.sync_msg(KF)
    assert await refused(client.kf.sync_msg(KF)) == 45009
    clock.now += 60
    await client.kf.sync_msg(KF)
