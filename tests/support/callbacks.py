"""Driving an in-process app like WeCom does: sealed callbacks in, recorded API calls out.

- :func:`post_inner` seals a decrypted callback body (inner XML) as WeCom would and POSTs it.
- :func:`wait_calls` waits until the emulator recorded ``count`` calls to an API path.
- :func:`click_xml` is a manager's press on an alert card button (``template_card_event``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp.test_utils import TestClient

from tests.support.app import AES_KEY, AGENT_ID, CORP_ID, TOKEN, sealed_post
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.fake_api import Call, FakeWeCom
from wecom_sdk.xmlsafe import render_xml

__all__ = ["CALLBACK_PATH", "click_xml", "post_inner", "wait_calls"]

CALLBACK_PATH = "/wecom/callback"


async def post_inner(client: TestClient[Any, Any], inner: bytes) -> int:
    """POST ``inner`` sealed with the sample credentials; the HTTP status."""
    body, query = sealed_post(MsgCrypto(TOKEN, AES_KEY, CORP_ID), inner)
    resp = await client.post(CALLBACK_PATH, params=query, data=body)
    await resp.read()
    return resp.status


async def wait_calls(fake: FakeWeCom, path: str, count: int, timeout_s: float = 5.0) -> list[Call]:
    """The emulator's calls to ``path`` once there are ``count``; AssertionError after the timeout."""
    deadline = time.monotonic() + timeout_s
    while len(fake.calls_to(path)) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: {len(fake.calls_to(path))} calls, wanted {count}")
        await asyncio.sleep(0.02)
    return fake.calls_to(path)


def click_xml(user: str, key: str, task_id: str, code: str) -> bytes:
    """The inner XML of ``user`` pressing the card button ``key`` (WeCom's fresh ``code``)."""
    return render_xml(
        {
            "ToUserName": CORP_ID,
            "FromUserName": user,
            "CreateTime": int(time.time()),
            "MsgType": "event",
            "Event": "template_card_event",
            "EventKey": key,
            "TaskId": task_id,
            "CardType": "button_interaction",
            "ResponseCode": code,
            "AgentID": int(AGENT_ID),
        }
    )
