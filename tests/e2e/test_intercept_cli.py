"""Issue 19: ``run_bot.py rules sync-intercept [--dry-run]`` as an operator runs it: a real
subprocess against the WeCom emulator served on a local port. The emulator checks WeCom's
limits and records every call, so its history proves what a run wrote (and that a dry run and
a run in step wrote nothing), and that a rule made by hand is never touched."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.app import CORP_ID, free_port, write_config
from tests.support.paths import REPO
from wecom_sdk.client import WeComClient
from wecom_sdk.testing.fake_api import FakeWeCom

SECRET = "intercept-secret"
READS = {
    "gettoken",
    "externalcontact/get_intercept_rule_list",
    "externalcontact/get_intercept_rule",
}


@pytest.fixture
async def fake_api() -> AsyncIterator[tuple[FakeWeCom, str]]:
    fake = FakeWeCom(corp_id=CORP_ID, secret=SECRET)
    runner = web.AppRunner(fake.app, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield fake, f"http://127.0.0.1:{port}/cgi-bin/"
    await runner.cleanup()


def config(tmp_path: Path, api_base: str, words: list[str], extra: str = "") -> Path:
    lines = ", ".join(f'"{w}"' for w in words)
    (tmp_path / "staff.toml").write_text(
        f'[[group]]\nname = "员工违规"\nseverity = "high"\naudience = "staff"\nwords = [{lines}]\n'
        '[[group]]\nname = "客户维权"\nseverity = "high"\naudience = "customer"\n'
        'words = ["维权", "投诉"]\n',
        encoding="utf-8",
    )
    return write_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        secret=SECRET,
        api_base=api_base,
        extra=f'[rules]\npaths = ["staff.toml"]\n{extra}',
    )


async def sync(path: Path, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "run_bot.py"),
        "rules",
        "sync-intercept",
        "--config",
        str(path),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def hand_made_rule(fake: FakeWeCom, api_base: str) -> str:
    async with WeComClient(CORP_ID, SECRET, api_base=api_base) as client:
        return await client.externalcontact.add_intercept_rule(
            "客服禁语", ["加微信"], intercept_type=2, userids=["lisi"]
        )


async def test_dry_run_then_sync_then_nothing_left_to_do(
    tmp_path: Path, fake_api: tuple[FakeWeCom, str]
) -> None:
    fake, api_base = fake_api
    hand_id = await hand_made_rule(fake, api_base)
    hand = dict(fake.state.intercept_rules[hand_id])
    path = config(tmp_path, api_base, ["红包", "小费", "私下转账"])
    seen = len(fake.history)

    code, out, err = await sync(path, "--dry-run")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "+ create sentinel-1: 3 words +红包 +小费 +私下转账",
        "dry run: nothing changed",
    ]
    assert writes_since(fake, seen) == []
    assert list(fake.state.intercept_rules) == [hand_id]

    code, out, _ = await sync(path)
    assert code == 0 and out.splitlines() == ["+ create sentinel-1: 3 words +红包 +小费 +私下转账"]
    (created,) = [r for i, r in fake.state.intercept_rules.items() if i != hand_id]
    assert created["word_list"] == ["红包", "小费", "私下转账"]
    assert created["intercept_type"] == 1
    assert created["applicable_range"] == {"user_list": [], "department_list": [1]}

    seen = len(fake.history)
    code, out, _ = await sync(path)
    assert code == 0 and out.splitlines() == ["no changes"]
    assert writes_since(fake, seen) == []
    assert fake.state.intercept_rules[hand_id] == hand  # never touched


def writes_since(fake: FakeWeCom, seen: int) -> list[str]:
    return [c.path for c in fake.history[seen:] if c.path not in READS]


async def test_many_words_are_chunked_and_a_change_touches_one_rule(
    tmp_path: Path, fake_api: tuple[FakeWeCom, str]
) -> None:
    fake, api_base = fake_api
    many = [f"禁词{i:03d}" for i in range(650)]
    code, out, _ = await sync(config(tmp_path, api_base, many))
    assert code == 0
    rules = sorted(fake.state.intercept_rules.values(), key=lambda r: r["rule_name"])
    assert [(r["rule_name"], len(r["word_list"])) for r in rules] == [
        ("sentinel-1", 300),
        ("sentinel-2", 300),
        ("sentinel-3", 50),
    ]
    seen = len(fake.history)
    changed = [w for w in many if w != "禁词010"] + ["新词"]
    code, out, _ = await sync(config(tmp_path, api_base, changed, "intercept_block = false\n"))
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0]
        == f"~ update sentinel-1 ({rules[0]['rule_id']}): +新词 -禁词010; intercept_type 1 -> 2"
    )
    assert len(lines) == 3  # the other two rules change type only
    assert writes_since(fake, seen) == ["externalcontact/update_intercept_rule"] * 3


async def test_over_wecom_limit_fails_and_writes_nothing(
    tmp_path: Path, fake_api: tuple[FakeWeCom, str]
) -> None:
    fake, api_base = fake_api
    async with WeComClient(CORP_ID, SECRET, api_base=api_base) as client:
        for n in range(99):
            await client.externalcontact.add_intercept_rule(
                f"手工{n}", ["词"], intercept_type=1, departments=[1]
            )
    seen = len(fake.history)
    code, out, err = await sync(config(tmp_path, api_base, [f"禁词{i:03d}" for i in range(301)]))
    assert code == 1 and out == ""
    assert "WeCom allows 100 rules in all" in err
    assert writes_since(fake, seen) == []
