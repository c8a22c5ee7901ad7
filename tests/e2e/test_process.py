"""The server as an operator runs it: a subprocess killed with -9, stopped with SIGTERM, run with
several workers; and the CLI's simulate and check commands."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from monitor.archive import make_engine
from tests.support.app import (
    AES_KEY,
    CORP_ID,
    TOKEN,
    ServerProcess,
    free_port,
    post_many,
    sealed_post,
    text_xml,
    write_config,
)
from tests.support.paths import REPO
from wecom_sdk.crypto import MsgCrypto


def archived_keys(database_url: str) -> set[str]:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return {row[0] for row in conn.execute(text("SELECT dedupe_key FROM message"))}
    finally:
        engine.dispose()


async def until_answered(progress: dict[int, int], count: int, timeout: float = 15.0) -> None:
    """Wait until ``count`` callbacks have been answered (so the server is mid-stream)."""
    deadline = time.monotonic() + timeout
    while len(progress) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


@pytest.fixture
def server_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[ServerProcess] = []

    def start(database_url: str, **kwargs: object) -> ServerProcess:
        port = free_port()
        workers = kwargs.pop("workers", None)
        config = write_config(tmp_path, database_url, port=port, **kwargs)  # type: ignore[arg-type]
        server = ServerProcess(config, port, workers=workers)  # type: ignore[arg-type]
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.close()


async def test_kill_9_right_after_2xx_loses_nothing(server_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(database_url)
    loop = asyncio.get_running_loop()
    progress: dict[int, int] = {}
    sending = asyncio.ensure_future(post_many(server.base, 1000, 400, 24, progress))
    # Kill while callbacks are in flight, as soon as a first batch has been acknowledged.
    await until_answered(progress, 20)
    await loop.run_in_executor(None, server.signal, signal.SIGKILL)
    answered = await sending
    ok = {mid for mid, status in answered.items() if status == 200}
    assert ok, f"no callback was acknowledged before the kill:\n{server.output()}"
    stored = archived_keys(database_url)
    lost = {mid for mid in ok if f"msg:{mid}" not in stored}
    assert not lost, f"{len(lost)} acknowledged messages missing after kill -9"


async def test_sigterm_drains_in_flight_and_flushes(server_factory, database_url: str) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(database_url)
    progress: dict[int, int] = {}
    sending = asyncio.ensure_future(post_many(server.base, 5000, 300, 24, progress))
    await until_answered(progress, 20)
    server.signal(signal.SIGTERM)
    answered = await sending
    code = await asyncio.get_running_loop().run_in_executor(None, server.wait)
    assert code == 0, server.output()
    statuses = set(answered.values())
    assert statuses <= {200}, f"in-flight callbacks were not drained cleanly: {statuses}"
    stored = archived_keys(database_url)
    assert all(f"msg:{mid}" in stored for mid in answered)
    assert "storage closed" in server.output()


async def test_several_workers_share_the_port(  # type: ignore[no-untyped-def]
    server_factory, pg_schema_url: str, redis_url: str, redis_prefix: str
) -> None:
    server = server_factory(
        pg_schema_url, redis_url=redis_url, redis_prefix=redis_prefix, workers=2
    )
    pids = set()
    deadline = (
        time.monotonic() + 20
    )  # the second worker may still be starting after the first answers
    while len(pids) < 2 and time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.base}/healthz", timeout=2) as resp:
            pids.add(json.load(resp)["pid"])
    assert len(pids) == 2, "SO_REUSEPORT did not spread connections over both workers"
    answered = await post_many(server.base, 9000, 100)
    assert set(answered.values()) == {200}
    # The same 100 again (WeCom retries), possibly to the other worker: dropped, stored once.
    again = await post_many(server.base, 9000, 100)
    assert set(again.values()) == {200}
    assert len({k for k in archived_keys(pg_schema_url) if k.startswith("msg:9")}) == 100
    # SIGHUP (reload the rules) is forwarded to the workers; it must not kill the supervisor.
    server.signal(signal.SIGHUP)
    await asyncio.sleep(1.0)
    assert server.proc.poll() is None
    assert set((await post_many(server.base, 9500, 20)).values()) == {200}
    server.signal(signal.SIGTERM)
    assert await asyncio.get_running_loop().run_in_executor(None, server.wait) == 0


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_simulate_round_trip(server_factory, sqlite_url: str) -> None:  # type: ignore[no-untyped-def]
    server = server_factory(sqlite_url)
    url = f"{server.base}/wecom/callback"
    config = str(server.log_path.parent / "config.toml")  # the server's own, same archive
    done = run_cli("simulate", "--text", "你好", "--url", url, "--config", config)
    assert done.returncode == 0, done.stderr
    assert "HTTP 200" in done.stdout
    assert "reply text: 您好！我是智能助手" in done.stdout
    assert "no sensitive words" in done.stdout
    risky = run_cli(
        "simulate", "--text", "我要维 权！", "--from", "lisi", "--url", url, "--config", config
    )
    assert risky.returncode == 0
    assert "no passive reply" in risky.stdout
    assert "命中「维权」 原文「维 权」 客户维权风险（高）" in risky.stdout
    assert len(archived_keys(sqlite_url)) == 2


def test_simulate_without_server_is_a_clear_error() -> None:
    done = run_cli(
        "simulate", "--text", "你好", "--url", f"http://127.0.0.1:{free_port()}/wecom/callback"
    )
    assert done.returncode == 1
    assert "is the bot running" in done.stderr


def test_check_names_the_bad_key(tmp_path: Path, sqlite_url: str) -> None:
    good = write_config(tmp_path, sqlite_url)
    assert run_cli("check", "--config", str(good)).returncode == 0
    bad_key = tmp_path / "bad.toml"
    bad_key.write_text(good.read_text().replace(AES_KEY, AES_KEY[:40]), encoding="utf-8")
    done = run_cli("check", "--config", str(bad_key))
    assert done.returncode == 2
    assert "[wecom].encoding_aes_key" in done.stderr
    assert "must be 43 characters" in done.stderr
    no_corp = tmp_path / "nocorp.toml"
    no_corp.write_text(good.read_text().replace(f'corp_id = "{CORP_ID}"', ""), encoding="utf-8")
    assert "[wecom].corp_id" in run_cli("check", "--config", str(no_corp)).stderr
    broken_rules = tmp_path / "broken.toml"
    broken_rules.write_text('[[group]]\nname = "x"\nseverity = "huge"\nwords = ["a"]\n', "utf-8")
    with_rules = write_config(tmp_path, sqlite_url, extra=f'[rules]\npaths = ["{broken_rules}"]\n')
    done = run_cli("check", "--config", str(with_rules))
    assert done.returncode == 2
    assert "[rules].paths" in done.stderr
    assert f"{broken_rules}:3:" in done.stderr  # file:line of the bad severity
    unreachable = write_config(tmp_path, f"postgresql://nobody:pw@127.0.0.1:{free_port()}/x")
    done = run_cli("serve", "--config", str(unreachable))
    assert done.returncode == 2
    assert "[storage].database_url: cannot connect" in done.stderr
    assert "pw@" not in done.stderr  # the password is never printed


def test_check_from_another_directory_keeps_the_database_beside_the_config(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "etc"
    conf.mkdir()
    config = write_config(conf, "sqlite:///data/sentinel.db")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), "check", "--config", str(config)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (conf / "data" / "sentinel.db").is_file()
    assert list(elsewhere.iterdir()) == []  # nothing made in the working directory
    assert sorted(p.name for p in conf.iterdir()) == ["config.toml", "data"]


def test_commands_import_only_what_they_need() -> None:
    """``rules``, ``--help`` and argument errors answer without loading the server's stack
    (aiohttp, SQLAlchemy, Redis, jinja2: about 2 s of imports)."""
    probe = (
        "import sys, run_bot\n"
        "heavy = ('aiohttp', 'sqlalchemy', 'sqlmodel', 'redis', 'jinja2', 'alembic', 'uvloop')\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == ""
    assert run_cli("rules", "check", str(REPO / "rules" / "samples")).returncode == 0
    # The --tz default written in the CLI is the exporter's.
    import run_bot
    from monitor.archive.export_cli import DEFAULT_TZ

    assert run_bot.EXPORT_TZ == DEFAULT_TZ


def test_workers_without_redis_refused(tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, sqlite_url)
    done = run_cli("serve", "--config", str(config), "--workers", "2")
    assert done.returncode == 2
    assert "[server].workers" in done.stderr
    assert "redis_url" in done.stderr


RULES_V1 = """
[[group]]
name = "测试组"
severity = "high"
audience = "any"
words = ["甲乙丙丁"]
"""


async def test_sighup_reloads_rules_without_restart(  # type: ignore[no-untyped-def]
    server_factory, tmp_path: Path, sqlite_url: str
) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "test.toml").write_text(RULES_V1, encoding="utf-8")
    # A long poll interval, so only SIGHUP can explain a reload within the test.
    extra = f'[rules]\npaths = ["{rules_dir}"]\nreload_interval_s = 3600.0\n'
    server = server_factory(sqlite_url, extra=extra)
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)

    async def send(msg_id: int, content: str) -> None:
        body, query = sealed_post(crypto, text_xml(content, msg_id))
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{server.base}/wecom/callback", params=query, data=body) as resp,
        ):
            assert resp.status == 200

    def hit_words(msg_id: int) -> list[str]:
        engine = make_engine(sqlite_url)
        try:
            with engine.connect() as conn:
                return [
                    row[0]
                    for row in conn.execute(
                        text(
                            "SELECT hit.word FROM hit JOIN message ON hit.message_id = message.id "
                            "WHERE message.dedupe_key = :key"
                        ),
                        {"key": f"msg:{msg_id}"},
                    )
                ]
        finally:
            engine.dispose()

    await send(1, "甲乙丙丁 和 戊己庚辛")
    assert hit_words(1) == ["甲乙丙丁"]
    (rules_dir / "test.toml").write_text(
        RULES_V1.replace('["甲乙丙丁"]', '["甲乙丙丁", "戊己庚辛"]'), encoding="utf-8"
    )
    server.signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    msg_id = 2
    while time.monotonic() < deadline:
        await send(msg_id, "甲乙丙丁 和 戊己庚辛")
        if len(hit_words(msg_id)) == 2:
            break
        msg_id += 1
        await asyncio.sleep(0.2)
    assert sorted(hit_words(msg_id)) == ["戊己庚辛", "甲乙丙丁"], server.output()
    assert server.proc.poll() is None  # reloaded, not restarted


# --- mutation holes ---


def _slow_commits(url: str) -> str:
    """``url`` with every COMMIT of a new message taking 50 ms, and its backend dropping the
    transaction when the client dies meanwhile (PostgreSQL).

    A deferred constraint trigger runs at COMMIT; ``client_connection_check_interval`` makes the
    backend notice a killed client during it and roll back, as a crash mid-commit does. So a 2xx
    sent before the COMMIT returned is caught by a kill right after it.
    """
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$"
            )
            conn.exec_driver_sql(
                "CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON message "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
            )
    finally:
        engine.dispose()
    return url.replace("options=", "options=-cclient_connection_check_interval%3D10%20", 1)


async def _post_until_first_ack(server: ServerProcess, first_id: int, count: int) -> set[int]:
    """POST ``count`` messages at once; SIGKILL the server the instant the first 2xx arrives
    (before anything else is awaited). Returns every msg_id answered 200, before or after."""
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)
    acked: set[int] = set()

    async def one(session: aiohttp.ClientSession, msg_id: int) -> None:
        body, query = sealed_post(crypto, text_xml(f"第{msg_id}条消息，我要投诉", msg_id))
        try:
            async with session.post(
                f"{server.base}/wecom/callback", params=query, data=body
            ) as resp:
                if resp.status == 200:
                    if not acked:
                        server.proc.send_signal(signal.SIGKILL)
                    acked.add(msg_id)
        except (TimeoutError, aiohttp.ClientError):
            pass  # the server died before answering: WeCom would retry

    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10), connector=connector
    ) as session:
        await asyncio.gather(*(one(session, first_id + n) for n in range(count)))
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_kill_9_at_the_first_2xx_loses_nothing(  # type: ignore[no-untyped-def]
    server_factory, request: pytest.FixtureRequest, backend: str
) -> None:
    """Every 2xx answered before the kill is in the archive, whatever instant the kill hits.

    Five rounds on one database, each a fresh server: the kill lands within microseconds of
    the first acknowledgement, while the group commit holding the next messages is in flight.
    """
    if backend == "sqlite":
        url = served = str(request.getfixturevalue("sqlite_url"))
    else:
        url = str(request.getfixturevalue("pg_schema_url"))
        server_factory(url).close()  # creates the schema
        served = _slow_commits(url)
    for round_ in range(5):
        server = server_factory(served)
        acked = await _post_until_first_ack(server, 20_000 + 100 * round_, 40)
        assert acked, f"nothing was acknowledged:\n{server.output()}"
        stored = archived_keys(url)
        lost = sorted(m for m in acked if f"msg:{m}" not in stored)
        assert not lost, f"round {round_}: {len(acked)} acknowledged, lost {lost}"
