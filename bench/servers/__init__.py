"""Reference servers the callback benchmark measures ours against.

Each is started as ``python -m bench.servers.<name> --port P`` and runs the way ours does: aiohttp
on a uvloop event loop, access log off (ours logs at WARNING: no per-request line either).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

__all__ = ["serve"]


def serve(app: web.Application, argv: Sequence[str] | None, description: str) -> None:
    """Parse ``--host``/``--port`` and run ``app`` on uvloop until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    import uvloop

    web.run_app(
        app,
        host=args.host,
        port=args.port,
        loop=uvloop.new_event_loop(),
        access_log=None,
        print=None,
    )
