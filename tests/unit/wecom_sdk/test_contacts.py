"""``client.user.get`` and ``client.externalcontact.get`` against the emulator (doc 90196, 92114):
the GET each makes, the typed answer, WeCom's refusals of a missing, malformed or unknown id,
the same errcode over HTTP and in process, and every call in the history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from wecom_sdk.client import ExternalContact, FollowUser, Member, WeComClient
from wecom_sdk.errors import ApiError, PermissionDenied
from wecom_sdk.testing import EmulatorTransport, FakeWeCom, WeComEmulator

CORP_ID = "wwcorp"
CUSTOMER = "wmAAAA1111bbbb2222cccc3333dddd44"
WECOM_CUSTOMER = "woBBBB1111bbbb2222cccc3333dddd55"


def seed(emulator: WeComEmulator) -> None:
    emulator.add_member(
        "zhangsan", "张三", department=[2, 5], position="销售", mobile="13800000000"
    )
    emulator.add_member("lisi", "李四", status=5)
    emulator.add_external_contact(CUSTOMER, "小王", follow_users=["zhangsan"])
    emulator.add_external_contact(
        WECOM_CUSTOMER,
        "赵六",
        type=2,
        corp_name="某公司",
        follow_users=[{"userid": "lisi", "remark": "老客户", "createtime": 1_700_000_000}],
    )
    emulator.add_external_contact("wmNOBODY", "没人加", follow_users=[])


@pytest.fixture
async def wecom(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeCom, TestServer, WeComClient]]:
    fake = FakeWeCom(corp_id=CORP_ID)
    seed(fake)
    server: TestServer = await aiohttp_server(fake.app)
    async with WeComClient(
        CORP_ID, str(fake.secret), api_base=str(server.make_url("/cgi-bin/"))
    ) as client:
        yield fake, server, client


async def test_user_get_answers_the_member(
    wecom: tuple[FakeWeCom, TestServer, WeComClient],
) -> None:
    fake, _, client = wecom
    member = await client.user.get("zhangsan")
    assert member == Member("zhangsan", "张三", (2, 5), "销售", 1)
    assert member.raw["mobile"] == "13800000000" and "mobile" not in repr(member)
    # WeCom compares UserIDs ignoring case and answers the one it stores.
    assert (await client.user.get("LiSi")).userid == "lisi"
    (first, second) = fake.calls_to("user/get")
    # A GET: the query is the recorded body, the access_token apart from it.
    assert first.body == {"userid": "zhangsan"} and second.body == {"userid": "LiSi"}
    assert first.token == fake.current_token


async def test_externalcontact_get_answers_the_customer_and_their_members(
    wecom: tuple[FakeWeCom, TestServer, WeComClient],
) -> None:
    fake, _, client = wecom
    wechat = await client.externalcontact.get(CUSTOMER)
    assert (wechat.name, wechat.type, wechat.corp_name) == ("小王", 1, "")
    assert wechat.display_name == "小王"
    assert [f.userid for f in wechat.follow_users] == ["zhangsan"]
    wecom_user = await client.externalcontact.get(WECOM_CUSTOMER)
    assert wecom_user.display_name == "赵六@某公司" and wecom_user.type == 2
    assert wecom_user.follow_users == (FollowUser("lisi", "老客户", 1_700_000_000),)
    assert [c.body for c in fake.calls_to("externalcontact/get")] == [
        {"external_userid": CUSTOMER},
        {"external_userid": WECOM_CUSTOMER},
    ]


async def test_unknown_ids_and_scripted_refusals_raise_typed_errors(
    wecom: tuple[FakeWeCom, TestServer, WeComClient],
) -> None:
    fake, _, client = wecom
    with pytest.raises(ApiError) as unknown:
        await client.user.get("nobody")
    assert unknown.value.errcode == 60111 and type(unknown.value) is ApiError
    for customer in ("wmUNKNOWN", "wmNOBODY"):  # unknown, or no member has them (any more)
        with pytest.raises(ApiError) as no_relation:
            await client.externalcontact.get(customer)
        assert no_relation.value.errcode == 84061
    fake.fail_next("externalcontact/get", 48002)  # the app may not call 客户联系
    with pytest.raises(PermissionDenied):
        await client.externalcontact.get(CUSTOMER)
    fake.fail_next("user/get", 60011)  # outside the app's visible range
    with pytest.raises(PermissionDenied):
        await client.user.get("zhangsan")
    with pytest.raises(ValueError, match="userid"):
        await client.user.get("")
    with pytest.raises(ValueError, match="external_userid"):
        await client.externalcontact.get("")
    assert fake.calls == []  # nothing was answered ok
    refused = [(c.path, c.errcode) for c in fake.history if c.path != "gettoken"]
    assert refused == [
        ("user/get", 60111),
        ("externalcontact/get", 84061),
        ("externalcontact/get", 84061),
        ("externalcontact/get", 48002),
        ("user/get", 60011),
    ]


# (path, query without the token, expected errcode)
BAD: list[tuple[str, dict[str, str], int]] = [
    ("user/get", {}, 41009),
    ("user/get", {"userid": ""}, 60111),
    ("user/get", {"userid": "nobody"}, 60111),
    ("user/get", {"userid": "bad id"}, 40003),
    ("user/get", {"userid": "_starts_oddly"}, 40003),
    ("user/get", {"userid": "a" * 65}, 40003),
    ("user/get", {"userid": "张三"}, 40003),
    ("externalcontact/get", {}, 40096),
    ("externalcontact/get", {"external_userid": ""}, 40096),
    ("externalcontact/get", {"external_userid": "wm bad"}, 40096),
    ("externalcontact/get", {"external_userid": "w" * 65}, 40096),
    ("externalcontact/get", {"external_userid": "wmUNKNOWN"}, 84061),
    ("externalcontact/get", {"external_userid": "wmNOBODY"}, 84061),
]


async def _token(emulator: WeComEmulator) -> str:
    query = {"corpid": emulator.corp_id, "corpsecret": str(emulator.secret)}
    reply = await emulator.handle("GET", "gettoken", query, None)
    assert reply.json is not None
    return str(reply.json["access_token"])


async def test_refusals_are_the_same_over_http_and_in_process(
    wecom: tuple[FakeWeCom, TestServer, WeComClient],
) -> None:
    fake, server, _ = wecom
    emulator = WeComEmulator(corp_id=CORP_ID)
    seed(emulator)
    transport = EmulatorTransport(emulator)
    fake_token, local_token = await _token(fake), await _token(emulator)
    base = URL("https://qyapi.weixin.qq.com/cgi-bin/")
    async with aiohttp.ClientSession() as http:
        for path, query, errcode in BAD:
            url = server.make_url(f"/cgi-bin/{path}").with_query(access_token=fake_token, **query)
            async with http.get(url) as resp:
                over_http = (await resp.json())["errcode"]
            local = await emulator.handle("GET", path, {"access_token": local_token, **query}, None)
            assert local.json is not None
            in_process = await transport.exchange(
                "GET", base.join(URL(path)).with_query(access_token=local_token, **query), None
            )
            assert isinstance(in_process, dict)
            assert over_http == local.json["errcode"] == in_process["errcode"] == errcode, query
        # Both are GETs: a POST is not routed, as WeCom answers a wrong method.
        async with http.post(server.make_url("/cgi-bin/user/get"), json={}) as resp:
            assert resp.status == 405
    recorded = [(c.path, c.body, c.errcode) for c in fake.history if c.path != "gettoken"]
    assert recorded == [(path, query, errcode) for path, query, errcode in BAD]
    assert all(fake_token not in str(c.body) for c in fake.history)


async def test_the_client_in_process_and_a_token_refresh() -> None:
    emulator = WeComEmulator(corp_id=CORP_ID)
    seed(emulator)
    async with WeComClient(
        CORP_ID, str(emulator.secret), transport=EmulatorTransport(emulator)
    ) as client:
        assert (await client.user.get("zhangsan")).name == "张三"
        emulator.revoke_token()  # 40014: the client refreshes the token and retries once
        assert (await client.externalcontact.get(CUSTOMER)).name == "小王"
    assert emulator.state.token_fetches == 2
    assert [c.path for c in emulator.calls] == ["user/get", "externalcontact/get"]


def test_seeding_refuses_ids_wecom_would_not_issue() -> None:
    with pytest.raises(ValueError, match="UserID"):
        WeComEmulator().add_member("张三", "张三")
    with pytest.raises(ValueError, match="external_userid"):
        WeComEmulator().add_external_contact("wm 1", "小王", follow_users=["zhangsan"])


def test_models_read_what_wecom_may_leave_out() -> None:
    member = Member.from_response({"userid": "u1", "department": [1, "x", True, 3]})
    assert member == Member("u1", "", (1, 3), "", 0)
    assert Member.from_response({"userid": "u1", "name": 7, "department": "1"}).department == ()
    contact = ExternalContact.from_response(
        {"external_contact": {"external_userid": "wm1", "name": "A", "type": 2}, "follow_user": 3}
    )
    assert contact.display_name == "A" and contact.follow_users == ()  # no corp_name to show
    assert ExternalContact.from_response({}) == ExternalContact("", "")
