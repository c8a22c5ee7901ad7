"""A ``redis-server`` of a test's own, on a free port, to freeze (SIGSTOP), thaw and kill.

Fault tests never touch the shared Redis on 6379 (other tests use it); they start one of these.
:func:`dedicated_redis` always kills it at the end, also when the test fails, and where
``setpriv`` exists the server also dies with the test process if that is killed outright.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis as syncredis

from tests.support.app import free_port


class DedicatedRedis:
    """One redis-server process: ``start``, ``freeze``, ``thaw``, ``kill``, ``start`` again."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = directory / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start it (on the same port every time) and wait until it answers PING."""
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
        if shutil.which("setpriv"):
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        with self._log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        client = syncredis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                with contextlib.suppress(syncredis.RedisError):
                    if client.ping():
                        return
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {self._log.read_text()}")
                time.sleep(0.05)
        finally:
            client.close()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and connects still succeed, nothing answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (a frozen server dies too) and reap it; connects are refused from now on."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None


@contextlib.contextmanager
def dedicated_redis(directory: Path) -> Iterator[DedicatedRedis]:
    """A started :class:`DedicatedRedis`, killed on exit whatever happened."""
    server = DedicatedRedis(directory)
    try:
        server.start()
        yield server
    finally:
        server.kill()
