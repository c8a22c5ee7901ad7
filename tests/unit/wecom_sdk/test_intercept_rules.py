"""``client.externalcontact`` against the emulator's chat interception rules (doc 95130): the
calls WeCom takes, the limits it refuses (40058 here), the list read over GET, and every call
in the history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from wecom_sdk.client import WeComClient
from wecom_sdk.client.externalcontact import ExternalContactApi
from wecom_sdk.errors import ApiError
from wecom_sdk.testing.fake_api import FakeWeCom

CORP_ID = "wwcorp"


@pytest.fixture
async def wecom(aiohttp_server: Any) -> AsyncIterator[tuple[FakeWeCom, ExternalContactApi]]:
    fake = FakeWeCom(corp_id=CORP_ID)
    server: TestServer = await aiohttp_server(fake.app)
    async with WeComClient(
        CORP_ID, str(fake.secret), api_base=str(server.make_url("/cgi-bin/"))
    ) as client:
        yield fake, client.externalcontact


async def add(api: ExternalContactApi, name: str, words: list[str], **kw: Any) -> str:
    kw.setdefault("departments", [1])
    return await api.add_intercept_rule(name, words, intercept_type=kw.pop("kind", 1), **kw)


async def test_add_list_get_update_delete(wecom: tuple[FakeWeCom, ExternalContactApi]) -> None:
    fake, api = wecom
    rule_id = await add(api, "sentinel-1", ["红包", "小费"], semantics=[3])
    (listed,) = await api.get_intercept_rule_list()
    assert (listed["rule_id"], listed["rule_name"]) == (rule_id, "sentinel-1")
    await api.update_intercept_rule(
        rule_id,
        word_list=["红包", "回扣"],
        intercept_type=2,
        semantics=[],
        add_range=(["zhangsan"], []),
        remove_range=([], [1]),
    )
    rule = await api.get_intercept_rule(rule_id)
    assert rule["word_list"] == ["红包", "回扣"]
    assert rule["intercept_type"] == 2
    assert rule["extra_rule"] == {"semantics_list": []}
    assert rule["applicable_range"] == {"user_list": ["zhangsan"], "department_list": []}
    await api.del_intercept_rule(rule_id)
    assert await api.get_intercept_rule_list() == []
    paths = [c.path.removeprefix("externalcontact/") for c in fake.calls]
    assert paths == [
        "add_intercept_rule",
        "get_intercept_rule_list",
        "update_intercept_rule",
        "get_intercept_rule",
        "del_intercept_rule",
        "get_intercept_rule_list",
    ]


@pytest.mark.parametrize(
    ("name", "words", "extra", "why"),
    [
        ("sentinel-1", [f"w{i}" for i in range(301)], {}, "1..300 words"),
        ("sentinel-1", [], {}, "1..300 words"),
        ("sentinel-1", ["长" * 33], {}, "1..32 characters"),
        ("x" * 21, ["红包"], {}, "rule_name"),
        ("sentinel-1", ["红包"], {"departments": []}, "both empty"),
        ("sentinel-1", ["红包"], {"kind": 3}, "intercept_type"),
        ("sentinel-1", ["红包"], {"semantics": [4]}, "semantics_list"),
        ("sentinel-1", ["红包"], {"userids": [f"u{i}" for i in range(1001)]}, "at most 1000"),
    ],
)
async def test_wecom_limits_are_refused(
    wecom: tuple[FakeWeCom, ExternalContactApi],
    name: str,
    words: list[str],
    extra: dict[str, Any],
    why: str,
) -> None:
    fake, api = wecom
    with pytest.raises(ApiError) as refused:
        await add(api, name, words, **extra)
    assert refused.value.errcode == 40058
    assert why in fake.history[-1].answer["errmsg"]
    assert fake.state.intercept_rules == {}


async def test_at_most_100_rules_and_unique_names(
    wecom: tuple[FakeWeCom, ExternalContactApi],
) -> None:
    fake, api = wecom
    for n in range(100):
        await add(api, f"r{n}", ["红包"])
    with pytest.raises(ApiError, match="at most 100 rules"):
        await add(api, "r100", ["红包"])
    await api.del_intercept_rule(next(iter(fake.state.intercept_rules)))
    with pytest.raises(ApiError, match="already used"):
        await add(api, "r1", ["红包"])
    await add(api, "r100", ["红包"])


async def test_an_update_may_not_empty_the_range_nor_name_an_unknown_rule(
    wecom: tuple[FakeWeCom, ExternalContactApi],
) -> None:
    fake, api = wecom
    rule_id = await add(api, "sentinel-1", ["红包"])
    with pytest.raises(ApiError, match="both empty"):
        await api.update_intercept_rule(rule_id, remove_range=([], [1]))
    assert fake.state.intercept_rules[rule_id]["applicable_range"]["department_list"] == [1]
    with pytest.raises(ApiError, match="invalid rule_id"):
        await api.del_intercept_rule("nope")


async def test_the_list_is_a_get(wecom: tuple[FakeWeCom, ExternalContactApi]) -> None:
    fake, _api = wecom
    reply = await fake.handle(
        "POST", "externalcontact/get_intercept_rule_list", {"access_token": "x"}, "{}"
    )
    assert reply.status == 405
