"""docs/deploy.md, as an operator follows it: every ``$`` command of the page is run here.

The page's paths are pointed at a temporary folder (``/opt/wecom-sentinel`` is this checkout,
``/etc/wecom-sentinel`` and ``/var/...`` a temporary directory) and ``$DATABASE_URL`` at a fresh
PostgreSQL database of its own. A command on the page that this test does not run fails the test,
so the page cannot promise what the code does not do. The systemd unit and the compose file run the
same commands; their Exec and health-check lines are checked against the page.
"""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.app import free_port, write_config
from tests.support.paths import REPO

DOC = REPO / "docs" / "deploy.md"
UNIT = REPO / "docs" / "deploy" / "wecom-sentinel.service"
COMPOSE = REPO / "docs" / "deploy" / "compose.yaml"
DOCKERFILE = REPO / "docs" / "deploy" / "Dockerfile"
PYTHON = "/opt/wecom-sentinel/.venv/bin/python"
CLI = "/opt/wecom-sentinel/run_bot.py"
CONFIG = "/etc/wecom-sentinel/config.toml"


def doc_commands() -> list[str]:
    """Every ``$`` line of the page's console blocks, in order."""
    blocks = re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def _libpq(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme.split('+', 1)[0]}://{rest}"


@pytest.fixture
def own_database(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own (pg_dump takes a whole database), dropped afterwards."""
    name = f"deploy_{uuid.uuid4().hex[:10]}"
    admin = _libpq(pg_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Operator:
    """Runs the page's commands with its paths pointed at ``root`` and the test's services."""

    def __init__(self, root: Path, config: Path, database_url: str) -> None:
        self.root = root
        self.config = config
        self.env = {**os.environ, "DATABASE_URL": database_url}
        self.ran: set[str] = set()

    def argv(self, command: str) -> list[str]:
        text = command.replace(PYTHON, sys.executable).replace(CLI, str(REPO / "run_bot.py"))
        text = text.replace(CONFIG, str(self.config))
        text = text.replace("/var/backups", str(self.root / "backups"))
        text = text.replace("/var/lib/wecom-sentinel", str(self.root / "state"))
        text = text.replace('"$DATABASE_URL"', shlex.quote(self.env["DATABASE_URL"]))
        argv = shlex.split(text)
        if argv[:3] == ["make", "-C", "/opt/wecom-sentinel"]:
            # The checkout's venv exists (make test made it): a dry run proves the target.
            argv = ["make", "-n", "-C", str(REPO), *argv[3:]]
        return argv

    def run(self, command: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        assert command in doc_commands(), f"not on the page: {command}"
        done = subprocess.run(
            self.argv(command),
            check=False,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        self.ran.add(command)
        return done

    def start(self, command: str, log: Path) -> subprocess.Popen[bytes]:
        assert command in doc_commands(), f"not on the page: {command}"
        self.ran.add(command)
        with log.open("wb") as out:
            return subprocess.Popen(self.argv(command), env=self.env, stdout=out, stderr=out)


def _command(word: str) -> str:
    """The page's one command containing ``word``."""
    found = sorted({c for c in doc_commands() if word in c})
    assert len(found) == 1, f"{word!r}: {found}"
    return found[0]


def test_every_command_on_the_page_runs(
    tmp_path: Path, own_database: str, redis_url: str, redis_prefix: str
) -> None:
    (tmp_path / "backups").mkdir()
    (tmp_path / "state").mkdir()
    port = free_port()
    config = write_config(
        tmp_path,
        "postgresql://ignored.invalid/overridden-by-DATABASE_URL",
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        port=port,
    )
    ops = Operator(tmp_path, config, own_database)

    for command in doc_commands():
        if command.startswith("make "):
            ops.run(command)
    ops.run(_command(" check "))
    upgrade = ops.run(_command(" db upgrade "))
    assert "database at revision" in upgrade.stdout

    server = ops.start(_command(" serve "), tmp_path / "serve.log")
    try:
        ops.run(_command("--wait 60"), timeout=90)
        health = ops.run(f"{PYTHON} {CLI} health --config {CONFIG}")
        assert "ok" in health.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)

    ops.run(_command("pg_dump "))
    listing = ops.run(_command("pg_restore "))
    assert "TABLE public message" in listing.stdout

    # The SQLite lines: a database the same `db upgrade` made, under the page's state folder.
    sqlite_config = write_config(
        tmp_path / "state", f"sqlite:///{tmp_path / 'state' / 'sentinel.db'}", port=port
    )
    ops.config = sqlite_config
    ops.env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'state' / 'sentinel.db'}"
    ops.run(_command(" db upgrade "))
    ops.run(_command(".backup "))
    check = ops.run(_command("integrity_check"))
    assert check.stdout.strip() == "ok"

    assert ops.ran == set(doc_commands()), "commands on the page that no test runs"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read_string(UNIT.read_text(encoding="utf-8"))
    return unit


def test_the_systemd_unit_runs_the_pages_commands_and_restarts() -> None:
    service = _unit()["Service"]
    page = set(doc_commands())
    for key in ("ExecStartPre", "ExecStart", "ExecStartPost"):
        line = service[key]
        assert line.startswith(f"{PYTHON} run_bot.py ")
        assert line.replace(f"{PYTHON} run_bot.py", f"{PYTHON} {CLI}") in page, key
    assert "db upgrade" in service["ExecStartPre"]
    assert " serve " in service["ExecStart"]
    assert "health" in service["ExecStartPost"]
    assert "--wait" in service["ExecStartPost"]
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"] == "/etc/wecom-sentinel/env"
    assert service["WorkingDirectory"] == "/opt/wecom-sentinel"


def test_the_container_runs_the_same_commands() -> None:
    compose = COMPOSE.read_text(encoding="utf-8")
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "python run_bot.py db upgrade --config /etc/wecom-sentinel/config.toml" in dockerfile
    assert "python run_bot.py serve --config /etc/wecom-sentinel/config.toml" in dockerfile
    health = '"python", "run_bot.py", "health", "--config", "/etc/wecom-sentinel/config.toml"'
    assert health in dockerfile
    assert health in compose
    assert compose.count("restart: unless-stopped") == 3
    assert "env_file: [secrets.env]" in compose
    # Secrets are never written into the compose file itself.
    assert not re.search(r"(WECOM_SECRET|WECOM_AES_KEY|PASSWORD)\s*[:=]\s*\S", compose)
