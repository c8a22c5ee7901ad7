"""Test helpers: configs on the real services, sealed WeCom callbacks, a server in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp

from bot.config import SAMPLE_RULES, Config, load_config
from rules.loader import load_rules
from rules.models import TextReplyContent
from tests.support.paths import REPO
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.testing.sealer import CallbackSealer, text_message_xml

CORP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AGENT_ID = "1000002"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_config(
    directory: Path,
    database_url: str,
    *,
    redis_url: str = "",
    redis_prefix: str = "sentinel:",
    port: int = 8080,
    workers: int = 1,
    extra: str = "",
    secret: str = "",
    api_base: str = "",
) -> Path:
    """A config file for the sample credentials on the given storage."""
    path = directory / "config.toml"
    path.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
workers = {workers}
shutdown_timeout_s = 5.0
[wecom]
corp_id = "{CORP_ID}"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
agent_id = "{AGENT_ID}"
secret = "{secret}"
{f'api_base = "{api_base}"' if api_base else ""}
[storage]
database_url = "{database_url}"
redis_url = "{redis_url}"
redis_prefix = "{redis_prefix}"
[logging]
level = "INFO"
{extra}
""",
        encoding="utf-8",
    )
    return path


def make_config(directory: Path, database_url: str, **kwargs: object) -> Config:
    return load_config(write_config(directory, database_url, **kwargs), {})  # type: ignore[arg-type]


def text_xml(
    content: str, msg_id: int, from_user: str = "zhangsan", create_time: int | None = None
) -> bytes:
    """A member's text message, as WeCom writes the inner XML."""
    return text_message_xml(
        content,
        msg_id,
        to_user=CORP_ID,
        from_user=from_user,
        agent_id=int(AGENT_ID),
        create_time=create_time,
    )


def sealed_post(crypto: MsgCrypto, inner: bytes, **seal: str) -> tuple[bytes, dict[str, str]]:
    """Body and query of a callback POST carrying ``inner`` (``seal``: timestamp, nonce)."""
    request = CallbackSealer(crypto, CORP_ID, AGENT_ID).seal(inner, **seal)
    return request.body, request.query


class ServerProcess:
    """``run_bot.py serve`` in a subprocess, for kill -9, SIGTERM and multi-worker tests."""

    def __init__(self, config_path: Path, port: int, *, workers: int | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, str(REPO / "run_bot.py"), "serve", "--config", str(config_path)]
        cmd += ["--port", str(port)]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        self.log_path = config_path.parent / f"server-{port}.log"
        self._log = self.log_path.open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # own process group, so close() also reaps worker processes
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"server not ready:\n{self.output()}")

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 20.0) -> int:
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()


def sample_reply(name: str) -> str:
    """The text the shipped sample rules answer with for the reply rule ``name``."""
    for rule in load_rules([SAMPLE_RULES]).replies:
        if rule.name == name and isinstance(rule.reply, TextReplyContent):
            return rule.reply.text
    raise KeyError(name)


async def post_many(
    base: str,
    first_id: int,
    count: int,
    concurrency: int = 16,
    answered: dict[int, int | str] | None = None,
    *,
    new_connections: bool = False,
    record_errors: bool = False,
) -> dict[int, int | str]:
    """POST ``count`` distinct sealed text messages; return msg_id -> HTTP status for those that got
    an answer (filled in as answers arrive, into ``answered`` when given).

    ``new_connections`` sends each on its own connection (so SO_REUSEPORT spreads them over the
    workers); ``record_errors`` records a client error's name instead of skipping the message (a
    server that went away mid-request gives no answer, and WeCom would retry).
    """
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)
    answered = {} if answered is None else answered
    queue = list(range(first_id, first_id + count))

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue:
            msg_id = queue.pop(0)
            body, query = sealed_post(crypto, text_xml(f"第{msg_id}条消息，我要投诉", msg_id))
            try:
                async with session.post(f"{base}/wecom/callback", params=query, data=body) as resp:
                    await resp.read()
                    answered[msg_id] = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                if record_errors:
                    answered[msg_id] = f"{exc.__class__.__name__}: {exc}"

    connector = aiohttp.TCPConnector(force_close=new_connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return answered
