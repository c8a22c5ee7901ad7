"""WeComClient against FakeWeCom: request bodies, errcode mapping, retries, token refresh."""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

import wecom_sdk.client
from wecom_sdk.client import Caller, KfApi, MemoryTokenCache, RetryPolicy, RobotApi, WeComClient
from wecom_sdk.errors import (
    ApiError,
    CredentialError,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    TokenInvalid,
    TransportError,
)
from wecom_sdk.testing.fake_api import FakeWeCom

CARD = {
    "card_type": "button_interaction",
    "main_title": {"title": "风险会话"},
    "task_id": "alert-1",
    "button_list": [{"text": "已处理", "style": 1, "key": "ack:1"}],
}


class Env:
    def __init__(self, fake: FakeWeCom, server: TestServer) -> None:
        self.fake, self.server, self.delays = fake, server, []  # type: ignore[var-annotated]

    def client(self, secret: str | None = None, **kw: Any) -> WeComClient:
        async def sleep(s: float) -> None:
            self.delays.append(s)

        kw.setdefault("sleep", sleep)
        kw.setdefault("rand", lambda: 1.0)
        return WeComClient(
            self.fake.corp_id,
            secret or self.fake.secret,
            api_base=str(self.server.make_url("/cgi-bin/")),
            agent_id=1000002,
            **kw,
        )


@pytest.fixture
async def env(aiohttp_server: Any) -> Env:
    fake = FakeWeCom()
    return Env(fake, await aiohttp_server(fake.app))


async def test_send_text_body_matches_protocol(env: Env) -> None:
    async with env.client() as client:
        result = await client.message.send_text(
            ["u1", "u2"], "hello", enable_duplicate_check=True, duplicate_check_interval=600
        )
    assert result.msgid.startswith("msg-")
    assert env.fake.calls[0].body == {
        "touser": "u1|u2",
        "msgtype": "text",
        "agentid": 1000002,
        "text": {"content": "hello"},
        "safe": 0,
        "enable_duplicate_check": 1,
        "duplicate_check_interval": 600,
    }


async def test_template_card_and_update(env: Env) -> None:
    async with env.client() as client:
        result = await client.message.send_template_card("mgr1", CARD)
        assert result.response_code and result.response_code.startswith("rc-")
        await client.message.update_template_card(
            ["mgr1"], result.response_code, replace_name="已由张三处理"
        )
        md = await client.message.send_markdown("mgr1", "**x**")
    sent, update = env.fake.calls[0].body, env.fake.calls[1].body
    assert sent["template_card"] == CARD and sent["enable_duplicate_check"] == 1
    assert update == {
        "userids": ["mgr1"],
        "agentid": 1000002,
        "response_code": result.response_code,
        "button": {"replace_name": "已由张三处理"},
    }
    assert md.msgid


async def test_duplicate_check_delivers_once(env: Env) -> None:
    async with env.client() as client:
        first = await client.message.send_template_card("mgr1", CARD)
        again = await client.message.send_template_card("mgr1", CARD)
        await client.message.send_text("mgr1", "same")
        await client.message.send_text("mgr1", "same")
    assert first.msgid and again.msgid
    assert len(env.fake.calls_to("message/send")) == 3  # one card, two texts (no dup check)


async def test_retry_on_busy_then_success_delivered_once(env: Env) -> None:
    env.fake.fail_next("message/send", -1, times=2)
    async with env.client() as client:
        await client.message.send_text("u1", "x")
    assert len(env.fake.calls) == 1
    assert env.delays == [0.5, 1.0]


async def test_busy_exhausts_bounded_attempts(env: Env) -> None:
    env.fake.fail_next("message/send", 45033, times=5)
    async with env.client() as client:
        with pytest.raises(RateLimited) as info:
            await client.message.send_text("u1", "x")
    assert info.value.errcode == 45033 and info.value.path == "/cgi-bin/message/send"
    assert len(env.delays) == 2 and env.fake.calls == []


async def test_45009_backs_off_longer(env: Env) -> None:
    env.fake.fail_next("message/send", 45009)
    async with env.client() as client:
        await client.message.send_text("u1", "x")
    env.fake.fail_next("message/send", -1)
    async with env.client() as client:
        await client.message.send_text("u1", "y")
    assert env.delays[0] > env.delays[1] * 5


async def test_http_500_and_network_errors_retried(env: Env) -> None:
    env.fake.http_500("message/send")
    async with env.client() as client:
        await client.message.send_text("u1", "x")
    assert len(env.fake.calls) == 1 and len(env.delays) == 1
    dead = WeComClient(
        "c",
        "secret-xyz",
        api_base="http://127.0.0.1:9/cgi-bin/",
        agent_id=1,
        sleep=env.client().__dict__["_sleep"],
        rand=lambda: 0.0,
    )
    async with dead:
        with pytest.raises(ServiceUnavailable) as info:
            await dead.robot.send_text("robot-key-secret", "x")
    assert "robot-key-secret" not in str(info.value) and info.value.__cause__ is None


@pytest.mark.parametrize(
    ("errcode", "exc"),
    [(48002, PermissionDenied), (60020, PermissionDenied), (81013, ApiError), (40058, ApiError)],
)
async def test_errcodes_raise_typed_at_once(env: Env, errcode: int, exc: type[ApiError]) -> None:
    env.fake.fail_next("kf/send_msg", errcode, times=3)
    async with env.client() as client:
        with pytest.raises(exc) as info:
            await client.kf.send_msg("wm1", "wk1", "text", {"content": "x"})
    assert info.value.errcode == errcode and info.value.path == "/cgi-bin/kf/send_msg"
    assert env.delays == []


@pytest.mark.parametrize("bad", ["corp", "secret"])
async def test_config_errors_not_retried(env: Env, bad: str) -> None:
    corp = "wrongcorp" if bad == "corp" else env.fake.corp_id
    client = WeComClient(
        corp,
        "wrong-secret-value" if bad == "secret" else env.fake.secret,
        api_base=str(env.server.make_url("/cgi-bin/")),
        agent_id=1,
    )
    async with client:
        with pytest.raises(CredentialError) as info:
            await client.message.send_text("u1", "x")
    assert info.value.errcode == (40013 if bad == "corp" else 40001)
    assert "not retried" in str(info.value) and "wrong-secret-value" not in str(info.value)
    assert env.fake.token_fetches == 0 and env.fake.calls == []


async def test_token_revoked_mid_run_refreshed_once(env: Env) -> None:
    async with env.client() as client:
        await client.message.send_text("u1", "a")
        old = env.fake.revoke_token()
        await client.message.send_text("u1", "b")
    assert env.fake.token_fetches == 2
    assert [c.token for c in env.fake.calls] == [old, env.fake.current_token]
    assert env.delays == []


async def test_expired_token_42001_refreshed(env: Env) -> None:
    async with env.client() as client:
        await client.kf.sync_msg("wk1")
        env.fake.expire_tokens()
        await client.kf.sync_msg("wk1")
    assert env.fake.token_fetches == 2


async def test_token_invalid_twice_raises(env: Env) -> None:
    env.fake.fail_next("message/send", 40014, times=2)
    async with env.client() as client:
        with pytest.raises(TokenInvalid):
            await client.message.send_text("u1", "x")
    assert env.fake.token_fetches == 2


async def test_only_failing_token_dropped(env: Env) -> None:
    cache = MemoryTokenCache()
    async with env.client(token_cache=cache) as client:
        await client.message.send_text("u1", "a")
        stale = env.fake.revoke_token()
        # Another task already refreshed: the cache holds a newer token than the failed one.
        key = client.tokens._key
        newer = "tok-newer"
        env.fake._tokens[newer] = env.fake.clock() + 7200
        await cache.set(key, newer, 100)
        assert stale is not None
        assert not await client.tokens.invalidate(stale)
        assert await cache.get(key) == newer
        await client.message.send_text("u1", "b")
    assert env.fake.calls[-1].token == newer and env.fake.token_fetches == 1


async def test_kf_sync_pages_through_1500(env: Env) -> None:
    env.fake.add_kf_messages(
        "wk1",
        [{"msgid": f"m{i}", "msgtype": "text", "text": {"content": str(i)}} for i in range(1500)],
    )
    seen: list[dict[str, Any]] = []
    cursor, pages = None, 0
    async with env.client() as client:
        while True:
            page = await client.kf.sync_msg("wk1", cursor=cursor, token="cb-token")
            seen += page.msg_list
            pages, cursor = pages + 1, page.next_cursor
            if not page.has_more:
                break
    assert pages == 2 and [m["msgid"] for m in seen] == [f"m{i}" for i in range(1500)]
    assert env.fake.calls[0].body == {
        "open_kfid": "wk1",
        "limit": 1000,
        "voice_format": 0,
        "token": "cb-token",
    }


async def test_kf_send_state_and_event(env: Env) -> None:
    async with env.client() as client:
        assert (
            await client.kf.send_msg("wm1", "wk1", "text", {"content": "hi"}, msgid="idem_1")
            == "idem_1"
        )
        assert (await client.kf.send_msg_on_event("welcome", "text", {"content": "hi"})).startswith(
            "kf-"
        )
        code = await client.kf.service_state_trans("wk1", "wm1", 3, "servicer1")
        state, servicer = await client.kf.service_state_get("wk1", "wm1")
    assert code.startswith("mc-") and (state, servicer) == (3, "servicer1")
    assert env.fake.calls[0].body == {
        "touser": "wm1",
        "open_kfid": "wk1",
        "msgtype": "text",
        "text": {"content": "hi"},
        "msgid": "idem_1",
    }


async def test_appchat_send_text_body_matches_protocol(env: Env) -> None:
    env.fake.app_chats = {"anchorchat1"}
    async with env.client() as client:
        answer = await client.appchat.send_text("anchorchat1", "archive 12 3f2a\naudit 4 9bc1")
        with pytest.raises(ApiError) as info:
            await client.appchat.send_text("otherchat", "x")
    assert answer == {"errcode": 0, "errmsg": "ok"}
    assert env.fake.calls_to("appchat/send")[0].body == {
        "chatid": "anchorchat1",
        "msgtype": "text",
        "text": {"content": "archive 12 3f2a\naudit 4 9bc1"},
        "safe": 0,
    }
    assert info.value.errcode == 86001
    assert [c.errcode for c in env.fake.history if c.path == "appchat/send"] == [0, 86001]


async def test_robot_uses_key_not_token(env: Env) -> None:
    async with env.client() as client:
        await client.robot.send_text("robot-key-1", "告警", mentioned_list=["@all"])
        await client.robot.send_markdown(
            str(env.server.make_url("/cgi-bin/webhook/send?key=robot-key-1")), "**x**"
        )
        with pytest.raises(ApiError) as info:
            await client.robot.send_text("wrong-key", "x")
    assert env.fake.token_fetches == 0 and len(env.fake.calls) == 2
    assert env.fake.calls[0].body == {
        "msgtype": "text",
        "text": {"content": "告警", "mentioned_list": ["@all"]},
    }
    assert info.value.errcode == 93000 and "wrong-key" not in str(info.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.message.send_text("u1", "字" * 683),
        lambda c: c.message.send_text([], "x"),
        lambda c: c.message.send_template_card("u1", {"card_type": "button_interaction"}),
        lambda c: c.message.update_template_card(["u"], "rc"),
        lambda c: c.kf.sync_msg("wk1", limit=1001),
        lambda c: c.kf.send_msg("wm1", "wk1", "text", {"content": "x"}, msgid="bad id!"),
        lambda c: c.kf.send_msg("wm1", "wk1", "msgmenu", {"list": [{}] * 11}),
        lambda c: c.kf.service_state_trans("wk1", "wm1", 3),
        lambda c: c.robot.send_markdown("robot-key-1", "x" * 4097),
        lambda c: c.appchat.send_text("", "x"),
        lambda c: c.appchat.send_text("chat1", ""),
        lambda c: c.appchat.send_text("chat1", "字" * 683),
    ],
)
async def test_client_side_validation(env: Env, call: Any) -> None:
    async with env.client() as client:
        with pytest.raises(ValueError):
            await call(client)
    assert env.fake.token_fetches == 0


async def test_secrets_never_in_errors_or_logs(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sentinel.wecom")
    env.fake.fail_next("message/send", -1)
    env.fake.http_500("message/send")
    errors: list[Exception] = []
    async with env.client() as client:
        await client.message.send_text("u1", "a")
        env.fake.revoke_token()
        await client.message.send_text("u1", "b")
        env.fake.fail_next("message/send", 40014, times=2)
        try:
            await client.message.send_text("u1", "c")
        except TokenInvalid as exc:
            errors.append(exc)
    bad = WeComClient(
        env.fake.corp_id,
        "top-secret-value",
        api_base=str(env.server.make_url("/cgi-bin/")),
        agent_id=1,
    )
    async with bad:
        with pytest.raises(CredentialError) as info:
            await bad.message.send_text("u1", "x")
    errors.append(info.value)
    issued = {c.token for c in env.fake.calls} | set(env.fake._tokens)
    text = caplog.text + " ".join(f"{e!s} {e!r} {e.args}" for e in errors)
    assert caplog.records and issued
    for secret in [*issued, env.fake.secret, "top-secret-value"]:
        assert secret not in text


async def test_errors_pickle_with_fields() -> None:
    import pickle

    exc = pickle.loads(
        pickle.dumps(CredentialError(40001, "invalid credential", "/cgi-bin/gettoken"))
    )
    assert (exc.errcode, exc.path) == (40001, "/cgi-bin/gettoken") and "not retried" in str(exc)
    assert issubclass(ServiceUnavailable, TransportError)
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)


def test_only_the_package_init_imports_the_client_module() -> None:
    """The API groups depend on the Caller protocol, so client/ has no import circle."""
    folder = Path(wecom_sdk.client.__file__).parent
    importers = set()
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.level == 1
                and node.module == "wecom_client"
            ):
                importers.add(path.name)
    assert importers == {"__init__.py"}


class RecordingCaller:
    """A Caller that answers every call with ``answer`` and records it."""

    agent_id: int | None = None

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, Mapping[str, Any] | None, bool]] = []

    def url(self, path: str) -> URL:
        return URL("https://wecom.test/cgi-bin/").join(URL(path))

    async def call(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append((path, body, True))
        return self.answer

    async def request(
        self, url: URL, body: Mapping[str, Any] | None, *, auth: bool
    ) -> dict[str, Any]:
        self.calls.append((str(url), body, auth))
        return self.answer


async def test_api_groups_run_over_any_caller() -> None:
    caller = RecordingCaller({"errcode": 0, "msgid": "m1", "msg_code": "c1"})
    group: Caller = caller
    assert await KfApi(group).service_state_trans("kf1", "wm1", 1) == "c1"
    await RobotApi(group).send_text("robot-key", "hi")
    assert caller.calls == [
        (
            "kf/service_state/trans",
            {"open_kfid": "kf1", "external_userid": "wm1", "service_state": 1},
            True,
        ),
        (
            "https://wecom.test/cgi-bin/webhook/send?key=robot-key",
            {"msgtype": "text", "text": {"content": "hi"}},
            False,
        ),
    ]
