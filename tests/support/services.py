"""Fail loudly, naming what to start, when the real services the tests need are not reachable.

The suite runs storage and shared-state tests against the real PostgreSQL and Redis (never mocks), so a
missing service is an error, not a skip.
"""

from __future__ import annotations

import os
import socket
import sys
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
}


def _reachable(url: str, default_port: int) -> tuple[str, int, bool]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return host, port, True
    except OSError:
        return host, port, False


def main() -> int:
    checks = [
        ("PostgreSQL", os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL), 5432),
        ("Redis", os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL), 6379),
    ]
    missing = []
    for name, url, default_port in checks:
        host, port, ok = _reachable(url, default_port)
        if not ok:
            missing.append(
                f"  {name} is not reachable at {host}:{port}; start it with:\n    {START_HINTS[name]}"
            )
    if missing:
        print("The test suite needs real services that are not running:", file=sys.stderr)
        print("\n".join(missing), file=sys.stderr)
        print("(override the addresses with TEST_DATABASE_URL / TEST_REDIS_URL)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
