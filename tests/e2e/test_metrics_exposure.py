"""Who may read ``/metrics`` and ``/sandbox/``: the sandbox only when enabled and from this machine,
``/metrics`` by address allow-list or bearer token; the callback and ``/healthz`` stay public."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.config import MetricsConfig, SandboxConfig
from bot.web.access import metrics_access, sandbox_access
from bot.web.app import create_app
from tests.support.app import AES_KEY, CORP_ID, TOKEN, make_config, sealed_post, text_xml
from wecom_sdk.crypto import MsgCrypto

ClientFactory = Callable[..., Awaitable[TestClient[Any, Any]]]
ServerFactory = Callable[..., Awaitable[TestServer]]

TOKEN_VALUE = "scrape-token-0123456789abcdef"
SANDBOX_ON = "[sandbox]\nenabled = true\n"
PROXIED = {"X-Forwarded-For": "203.0.113.9"}


def outward_address() -> str | None:
    """This host's own non-loopback IPv4 address (the source of its outgoing packets), if any.

    A UDP ``connect`` only picks a route; no packet is sent.
    """
    for target in ("203.0.113.1", "10.255.255.254", "192.0.2.1"):  # documentation/private ranges
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
            except OSError:
                continue
            address: str = probe.getsockname()[0]
        if not address.startswith("127.") and address != "0.0.0.0":
            return address
    return None


# -- the rules themselves ---------------------------------------------------------------------------


def test_metrics_default_admits_this_host_only() -> None:
    rule = metrics_access(MetricsConfig())
    for local in ("127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"):
        assert rule.permits(local, {}), local
    for remote in ("192.0.2.7", "10.1.2.3", "::ffff:192.0.2.7", "fd00::2", None, "", "unix"):
        assert not rule.permits(remote, {}), remote
    assert not rule.permits("127.0.0.1", PROXIED)  # through a proxy: the peer is not the client
    assert not rule.permits("127.0.0.1", {"Forwarded": "for=203.0.113.9"})
    assert not rule.permits("127.0.0.1", {"x-real-ip": "203.0.113.9"})


def test_metrics_allow_list_and_token() -> None:
    rule = metrics_access(MetricsConfig(allow=("10.0.0.0/8", "192.0.2.7")))
    assert rule.permits("10.200.0.1", {}) and rule.permits("192.0.2.7", {})
    assert not rule.permits("192.0.2.8", {}) and not rule.permits("127.0.0.1", {})
    token_only = metrics_access(MetricsConfig(allow=(), bearer_token=TOKEN_VALUE))
    bearer = {"Authorization": f"Bearer {TOKEN_VALUE}"}
    assert token_only.permits("198.51.100.1", bearer)
    assert token_only.permits("127.0.0.1", {"Authorization": f"bearer {TOKEN_VALUE}"})
    assert token_only.permits("127.0.0.1", {**PROXIED, **bearer})  # the token admits a proxied one
    assert not token_only.permits("127.0.0.1", {})
    for wrong in (f"Bearer {TOKEN_VALUE}x", f"Basic {TOKEN_VALUE}", TOKEN_VALUE, "Bearer "):
        assert not token_only.permits("127.0.0.1", {"Authorization": wrong}), wrong
    anyone = metrics_access(MetricsConfig(allow=("0.0.0.0/0", "::/0")))
    assert anyone.permits("198.51.100.1", PROXIED) and anyone.permits("2001:db8::1", {})


def test_sandbox_rule_is_loopback_unless_remote_allowed() -> None:
    local = sandbox_access(SandboxConfig(enabled=True))
    assert local.permits("127.0.0.1", {}) and local.permits("::1", {})
    assert not local.permits("192.0.2.7", {}) and not local.permits("127.0.0.1", PROXIED)
    remote = sandbox_access(SandboxConfig(enabled=True, allow_remote=True))
    assert remote.permits("192.0.2.7", {}) and remote.permits("127.0.0.1", PROXIED)


# -- through the app --------------------------------------------------------------------------------


async def test_sandbox_is_not_served_unless_enabled(
    tmp_path: Path, sqlite_url: str, aiohttp_client: ClientFactory
) -> None:
    client = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url)))
    for path in ("/sandbox/", "/sandbox/calls.json", "/sandbox"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 404, path
    assert (await client.get("/healthz")).status == 200
    enabled = await aiohttp_client(create_app(make_config(tmp_path, sqlite_url, extra=SANDBOX_ON)))
    assert (await enabled.get("/sandbox/")).status == 200
    assert (await enabled.get("/sandbox/calls.json")).status == 200


@dataclass
class Served:
    """The app listening on every interface, reached as this host or from it."""

    port: int
    session: aiohttp.ClientSession

    async def status(
        self, host: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        async with self.session.get(
            f"http://{host}:{self.port}{path}", headers=headers, allow_redirects=False
        ) as resp:
            return resp.status, await resp.text()

    async def callback(self, host: str, msg_id: int) -> int:
        body, query = sealed_post(MsgCrypto(TOKEN, AES_KEY, CORP_ID), text_xml("你好", msg_id))
        url = f"http://{host}:{self.port}/wecom/callback"
        async with self.session.post(url, params=query, data=body) as resp:
            return resp.status


@pytest.fixture
def serve_everywhere(
    tmp_path: Path, sqlite_url: str, aiohttp_server: ServerFactory
) -> Callable[[str], contextlib.AbstractAsyncContextManager[Served]]:
    @contextlib.asynccontextmanager
    async def serve(extra: str) -> AsyncIterator[Served]:
        app = create_app(make_config(tmp_path, sqlite_url, extra=extra))
        server = await aiohttp_server(app, host="0.0.0.0")
        async with aiohttp.ClientSession() as session:
            yield Served(server.port, session)

    return serve


async def test_loopback_reads_sandbox_and_metrics_a_proxied_request_does_not(
    serve_everywhere: Callable[[str], contextlib.AbstractAsyncContextManager[Served]],
) -> None:
    async with serve_everywhere(SANDBOX_ON) as served:
        for path in ("/sandbox/", "/sandbox/calls.json", "/metrics"):
            assert (await served.status("127.0.0.1", path))[0] == 200, path
            status, text = await served.status("127.0.0.1", path, PROXIED)
            assert status == 403, path
            assert "[sandbox].allow_remote" in text or "[metrics].allow" in text
        assert (await served.status("127.0.0.1", "/healthz", PROXIED))[0] == 200


async def test_remote_clients_get_neither_sandbox_nor_metrics(
    serve_everywhere: Callable[[str], contextlib.AbstractAsyncContextManager[Served]],
) -> None:
    remote = outward_address()
    if remote is None:
        pytest.skip("this host has no non-loopback address to play a remote client from")
    async with serve_everywhere(SANDBOX_ON) as served:
        for path in ("/sandbox/", "/sandbox/calls.json", "/sandbox", "/metrics"):
            status, text = await served.status(remote, path)
            assert status == 403, path
            assert "只对" in text
        # The callback and /healthz stay public.
        assert (await served.status(remote, "/healthz"))[0] == 200
        assert await served.callback(remote, 4242) == 200
    opened = (
        SANDBOX_ON
        + "allow_remote = true\n"
        + f'[metrics]\nallow = ["{remote}"]\nbearer_token = "{TOKEN_VALUE}"\n'
    )
    async with serve_everywhere(opened) as served:
        assert (await served.status(remote, "/sandbox/"))[0] == 200
        assert (await served.status(remote, "/metrics"))[0] == 200
        # 127.0.0.1 is no longer listed: only the token admits it.
        assert (await served.status("127.0.0.1", "/metrics"))[0] == 403
        bearer = {"Authorization": f"Bearer {TOKEN_VALUE}"}
        status, text = await served.status("127.0.0.1", "/metrics", bearer)
        assert status == 200 and "sentinel_callbacks_total" in text
