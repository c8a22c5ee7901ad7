"""``run_bot.py msgaudit ...`` as an operator runs it, in real processes on the fake source: a pull
killed with SIGKILL mid-page and run again archives every record exactly once; two pullers at once
neither double nor skip a record; an undecryptable record waits in quarantine until its key is
added and ``keys reload`` releases it; ``status`` says where the pull stands."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

import run_bot
from bot.config import ConfigError
from bot.web.preflight import config_notes
from monitor.archive import make_engine
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.msgaudit_models import MsgauditCursorRecord
from tests.support.app import make_config, write_config
from tests.support.msgaudit import CUSTOMER, STAFF, make_feed, msgaudit_toml
from tests.support.paths import REPO
from wecom_sdk.testing.archive_feed import ArchiveFeed

MESSAGES = MessageRecord.__table__.c
CURSOR = MsgauditCursorRecord.__table__.c


def argv(config: Path, *args: str) -> list[str]:
    """``run_bot.py ARGS --config CONFIG`` in this interpreter."""
    return [sys.executable, str(REPO / "run_bot.py"), *args, "--config", str(config)]


def env() -> dict[str, str]:
    """This environment without the variables that would override the config's storage."""
    return {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}


def run(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The command in its own process (an interpreter and the stack's imports: ~2 s)."""
    return subprocess.run(
        argv(config, "msgaudit", *args),
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def call(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The command through ``run_bot.main`` in this process (what ``run`` runs, minus start-up),
    with the config file read afresh like a new process would."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_bot.main(["msgaudit", *args, "--config", str(config)])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def start(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """The command in the background, its output to ``log`` (read it with ``log.read_text()``)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            argv(config, "msgaudit", *args),
            cwd=REPO,
            env=env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def scalar(engine: Engine, query: object) -> int:
    with engine.connect() as conn:
        value = conn.execute(query).scalar()  # type: ignore[call-overload]
    return int(value or 0)


def archived(engine: Engine) -> tuple[int, int]:
    """(messages, distinct keys) of the archive channel."""
    total = scalar(engine, select(func.count()).where(MESSAGES.channel == "msgaudit"))
    distinct = scalar(
        engine,
        select(func.count(func.distinct(MESSAGES.dedupe_key))).where(
            MESSAGES.channel == "msgaudit"
        ),
    )
    return total, distinct


def texts(feed: ArchiveFeed, n: int, start_at: int = 0) -> list[dict[str, object]]:
    """``n`` chat lines, every 50th a staff request for a 红包."""
    out = []
    for i in range(start_at, start_at + n):
        staff, customer = f"staff{i % 37:02d}", f"wmC{i % 401:04d}"
        if i % 50 == 0:
            out.append(feed.text(staff, [customer], f"第{i}单，先发个红包给我"))
        else:
            out.append(feed.text(customer, [staff], f"第{i}条：什么时候发货？"))
    return out


def test_kill_9_mid_pull_then_again_archives_every_record_exactly_once(
    tmp_path: Path, sqlite_url: str
) -> None:
    feed = make_feed(tmp_path / "archive")
    total = 10_000
    for at in range(0, total, 2_500):
        feed.append(texts(feed, 2_500, at))
    config = write_config(tmp_path, sqlite_url, extra=msgaudit_toml(feed, page_limit=500))
    engine = make_engine(sqlite_url)
    try:
        log = tmp_path / "pull.log"
        proc = start(config, "pull", "--once", log=log)
        deadline = time.monotonic() + 90
        seq = 0
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seq = scalar(engine, select(CURSOR.seq))
            except Exception:  # the schema is still being made
                seq = 0
            if seq >= 1_500:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"the pull ended before it was killed: {log.read_text()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        killed_at = scalar(engine, select(CURSOR.seq))
        stored_then = archived(engine)[0]
        assert 1_500 <= killed_at < total
        assert stored_then >= killed_at  # records of the unfinished page may be in already

        done = run(config, "pull", "--once")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"seq {killed_at} -> {total}" in done.stdout
        assert archived(engine) == (total, total)
        assert scalar(engine, select(CURSOR.seq)) == total
        hits = scalar(engine, select(func.count()).select_from(HitRecord.__table__))
        assert hits == total // 50  # inspected once each: no hit twice, none missing
    finally:
        engine.dispose()
    verify = subprocess.run(
        argv(config, "archive", "verify"),
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr  # the hash chain survived


def test_two_pullers_at_once_neither_double_nor_skip(
    tmp_path: Path, pg_schema_url: str, redis_url: str, redis_prefix: str
) -> None:
    feed = make_feed(tmp_path / "archive")
    feed.append(texts(feed, 1_500))
    config = write_config(
        tmp_path,
        pg_schema_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        extra=msgaudit_toml(feed, page_limit=100),
    )
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first, second = (start(config, "pull", "--once", log=log) for log in logs)
    time.sleep(1.0)
    feed.append(texts(feed, 500, 1_500))  # more arrives while they pull
    codes = [p.wait(120) for p in (first, second)]
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], outputs
    pulled = sum(int(out.split("pulled ")[1].split(" ")[0]) for out in outputs)
    engine = make_engine(pg_schema_url)
    try:
        late = call(config, "pull", "--once")  # whatever arrived after both had finished
        assert late.returncode == 0, late.stdout + late.stderr
        pulled += int(late.stdout.split("pulled ")[1].split(" ")[0])
        assert archived(engine) == (2_000, 2_000)
        assert pulled == 2_000  # no record pulled by both: the lock and the fence kept them apart
        assert scalar(engine, select(CURSOR.seq)) == 2_000
        hits = scalar(engine, select(func.count()).select_from(HitRecord.__table__))
        assert hits == 2_000 // 50
    finally:
        engine.dispose()


def test_quarantine_until_the_key_is_added_then_keys_reload_releases(
    tmp_path: Path, sqlite_url: str
) -> None:
    folder = tmp_path / "archive"
    feed = make_feed(folder, 1)
    feed.add_key(2, write=False)  # WeCom already encrypts under a key we have not installed
    feed.append([feed.text(CUSTOMER, [STAFF], "旧密钥的消息")], version=1)
    lost = feed.append(
        [
            feed.text(STAFF, [CUSTOMER], "新密钥：先发红包给我"),
            feed.text(CUSTOMER, [STAFF], "新密钥：好的"),
        ],
        version=2,
    )
    feed.append([feed.text(STAFF, [CUSTOMER], "旧密钥的第二条")], version=1)
    config = write_config(tmp_path, sqlite_url, extra=msgaudit_toml(feed, versions=(1,)))

    pulled = run(config, "pull", "--once")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "4 record(s)" in pulled.stdout and "2 archived" in pulled.stdout
    assert "2 quarantined" in pulled.stdout
    listed = call(config, "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(q["msgid"], q["publickey_ver"]) for q in lines] == [(e.msgid, 2) for e in lost]
    assert all("10007" in q["reason"] or q["errcode"] == 10007 for q in lines)
    status = call(config, "status")
    assert "quarantined: 2" in status.stdout and "cursor seq: 4" in status.stdout

    # A retry without the key leaves them where they are.
    retried = call(config, "quarantine", "retry")
    assert retried.returncode == 0 and "released 0" in retried.stdout

    # The admin installs the key and reloads: the records are archived and inspected.
    feed.write_key(2)
    write_config(tmp_path, sqlite_url, extra=msgaudit_toml(feed, versions=(1, 2)))
    reloaded = call(config, "keys", "reload")
    assert reloaded.returncode == 0, reloaded.stdout + reloaded.stderr
    assert "publickey_ver 1, 2" in reloaded.stdout and "released 2" in reloaded.stdout
    assert call(config, "quarantine", "list").stdout == ""
    engine = make_engine(sqlite_url)
    try:
        assert archived(engine) == (4, 4)
        hits = scalar(engine, select(func.count()).select_from(HitRecord.__table__))
        assert hits == 1  # the released 红包 request was inspected like any other
    finally:
        engine.dispose()
    assert "quarantined: 0" in call(config, "status").stdout


def test_a_missing_key_file_fails_reload_before_telling_anyone(
    tmp_path: Path, sqlite_url: str
) -> None:
    feed = make_feed(tmp_path / "archive")
    extra = msgaudit_toml(feed).replace(
        "private_keys = {", f'private_keys = {{ "7" = "{tmp_path}/nope.pem", '
    )
    config = write_config(tmp_path, sqlite_url, extra=extra)
    reloaded = call(config, "keys", "reload")
    assert reloaded.returncode == 1
    assert "nope.pem" in reloaded.stderr and "7" in reloaded.stderr


@pytest.mark.parametrize("command", [("pull", "--once"), ("keys", "reload")])
def test_commands_that_need_the_archive_say_when_it_is_off(
    tmp_path: Path, sqlite_url: str, command: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, sqlite_url)
    done = call(config, *command)
    assert done.returncode == 1 and "[msgaudit].enabled is false" in done.stderr


def test_check_reads_the_key_files_before_the_first_pull(tmp_path: Path, sqlite_url: str) -> None:
    feed = make_feed(tmp_path / "archive", 1, 2)
    good = make_config(tmp_path, sqlite_url, extra=msgaudit_toml(feed))
    assert any("publickey_ver 1, 2" in note for note in config_notes(good))
    (tmp_path / "archive" / "keys" / "msgaudit_v2.pem").write_text("not a key")
    with pytest.raises(ConfigError, match=r"private_keys.*2"):
        config_notes(good)
    empty = make_config(tmp_path, sqlite_url, extra=msgaudit_toml(feed, versions=()))
    assert any("quarantine" in note for note in config_notes(empty))
