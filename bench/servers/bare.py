"""The floor: an aiohttp handler that reads the callback body and answers 200 "success".

It does the HTTP work every WeCom callback server must do and nothing else, so "ours / bare" is the
share of raw aiohttp throughput left after verifying, decrypting, parsing, deduplicating, inspecting
and storing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from aiohttp import web

from bench.messages import CALLBACK_PATH
from bench.servers import serve

__all__ = ["create_app", "main"]


async def _callback(request: web.Request) -> web.Response:
    # Read the body as a real handler must (aiohttp would drain it after the response anyway).
    await request.read()
    return web.Response(text="success")


def create_app(path: str = CALLBACK_PATH) -> web.Application:
    """The bare app: ``POST {path}`` → 200 "success"."""
    app = web.Application()
    app.router.add_post(path, _callback)
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m bench.servers.bare``."""
    serve(create_app(), argv, __doc__ or "")


if __name__ == "__main__":
    main(sys.argv[1:])
