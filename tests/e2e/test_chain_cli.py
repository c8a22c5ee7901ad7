"""``run_bot.py archive verify`` and ``archive head`` through a real subprocess, on both backends:
the lines they print and their exit codes, intact and tampered with."""

from __future__ import annotations

import fcntl
import os
import pty
import sqlite3
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from monitor.archive import Archive, GroupCommitWriter
from monitor.archive.audit import record_audit_event
from tests.support.app import write_config
from tests.support.paths import REPO
from tests.unit.monitor.test_chain_verify import HITS, audit, record


def run(
    config: Path, *args: str, stderr: int = subprocess.PIPE
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # the config's URL counts
    return subprocess.run(
        [sys.executable, str(REPO / "run_bot.py"), "archive", *args, "--config", str(config)],
        check=False,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        timeout=60,
    )


@pytest.fixture
def engine(schema_engine: Engine) -> Engine:
    return schema_engine


@pytest.fixture
async def config(engine: Engine, database_url: str, tmp_path: Path) -> Path:
    """Three archive blocks (one message each, the first with hits) and one audit block."""
    async with GroupCommitWriter(engine) as writer:
        archive = Archive(writer)
        await archive.store_inbound(record("c1", "投诉12315", HITS))
        await archive.store_inbound(record("c2"))
        await archive.store_inbound(record("c3"))
        await writer.run(lambda conn: record_audit_event(conn, audit("claim")))
    return write_config(tmp_path, database_url)


def heads(engine: Engine) -> dict[str, tuple[int, str]]:
    """Each chain's last block, read with SQL of the test's own."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT chain, seq, block_hash FROM chain_block b WHERE seq = "
                "(SELECT max(seq) FROM chain_block WHERE chain = b.chain)"
            )
        ).all()
    return {chain: (seq, digest) for chain, seq, digest in rows}


def test_an_intact_archive_verifies_with_a_summary(config: Path, engine: Engine) -> None:
    result = run(config, "verify")
    found = heads(engine)
    (archive_seq, archive_hash), (audit_seq, audit_hash) = found["archive"], found["audit"]
    assert (result.returncode, result.stderr) == (0, "")  # no progress bar without a terminal
    assert result.stdout.splitlines() == [
        "archive chain intact: 3 blocks, 3 rows (3 message, 0 message_flag, 0 msgaudit_quarantine), "
        f"head {archive_seq} {archive_hash}",
        f"audit chain intact: 1 block, 1 row (1 audit_event), head {audit_seq} {audit_hash}",
    ]


def test_head_prints_the_latest_block_of_each_chain(config: Path, engine: Engine) -> None:
    result = run(config, "head")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"{chain} {seq} {digest}" for chain, (seq, digest) in sorted(heads(engine).items())
    ]
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [
        ["archive", "3"],
        ["audit", "1"],
    ]


def test_a_modified_message_exits_1_naming_block_and_row(config: Path, engine: Engine) -> None:
    with engine.begin() as conn:
        message_id = conn.execute(text("SELECT id FROM message WHERE dedupe_key = 'c2'")).scalar()
        conn.execute(text("UPDATE message SET content = 'x' WHERE id = :id"), {"id": message_id})
    result = run(config, "verify")
    assert (result.returncode, result.stderr) == (1, "")
    assert result.stdout.splitlines()[0] == (
        f"archive chain broken at block 2: message {message_id} was modified"
    )
    assert result.stdout.splitlines()[1].startswith("audit chain intact: 1 block")


def test_a_deleted_audit_row_exits_1(config: Path, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
    result = run(config, "verify")
    assert result.returncode == 1
    assert (
        result.stdout.splitlines()[1] == "audit chain broken at block 1: audit_event 1 was deleted"
    )


def test_progress_goes_to_a_terminal(config: Path) -> None:
    leader, follower = pty.openpty()
    # 80 columns: a new pty has none, and the bar then draws nothing.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        result = run(config, "verify", stderr=follower)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert result.returncode == 0
    assert b"archive chain" in shown
    assert b"blocks" in shown


def test_a_database_without_chains_or_without_a_file_is_one_line_on_stderr(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    sqlite3.connect(old).close()  # a database made before the chains (here: empty)
    result = run(write_config(tmp_path, f"sqlite:///{old}"), "verify")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.splitlines() == [
        "error: [storage].database_url: the database has no hash chain tables (an older "
        "schema): run `python run_bot.py db upgrade` first"
    ]
    missing = tmp_path / "typo.db"
    result = run(write_config(tmp_path, f"sqlite:///{missing}"), "head")
    assert (result.returncode, result.stdout) == (1, "")
    assert (
        result.stderr == f"error: [storage].database_url: there is no SQLite archive at {missing}\n"
    )
    assert not missing.exists()
