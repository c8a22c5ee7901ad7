"""``run_bot.py health``: ask a running server's ``/healthz`` whether it can store messages.

Used by the systemd unit (started means healthy), the container health check and operators. The
server's own answer decides: 200 (``ok`` or ``degraded``) is healthy, anything else (503 when
storage is down, no answer at all) is not. A wildcard listen address is probed on loopback.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Config

__all__ = ["HealthAnswer", "health_url", "probe", "wait_healthy"]

_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True, slots=True)
class HealthAnswer:
    """One probe: the HTTP status (0 when nothing answered) and the status word or the error."""

    status: int
    summary: str

    @property
    def healthy(self) -> bool:
        """Whether the server can store messages (it answered 200)."""
        return self.status == 200


def health_url(config: Config) -> str:
    """``http://<host>:<port>/healthz`` of the configured server, on loopback for ``0.0.0.0``."""
    host = _LOOPBACK.get(config.server.host, config.server.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.server.port}/healthz"


def probe(url: str, *, timeout_s: float = 3.0) -> HealthAnswer:
    """One GET of ``url``; never raises."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return HealthAnswer(response.status, _status_word(response.read()))
    except urllib.error.HTTPError as exc:
        return HealthAnswer(exc.code, _status_word(exc.read()))
    except (OSError, ValueError) as exc:
        return HealthAnswer(0, f"no answer ({exc.__class__.__name__})")


def wait_healthy(
    url: str,
    wait_s: float,
    *,
    interval_s: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> HealthAnswer:
    """Probe until the server is healthy or ``wait_s`` has passed; the last answer."""
    deadline = clock() + wait_s
    answer = probe(url)
    while not answer.healthy and clock() < deadline:
        sleep(interval_s)
        answer = probe(url)
    return answer


def _status_word(body: bytes) -> str:
    try:
        document = json.loads(body)
    except ValueError:
        return "not JSON"
    status = document.get("status") if isinstance(document, dict) else None
    return str(status) if status is not None else "no status"
