"""Named loggers of the bot package, declared once.

Formatting is lazy (``%s`` arguments). Chat text, tokens and AES keys are never logged above DEBUG.
"""

from __future__ import annotations

import logging

__all__ = ["callback_log", "pipeline_log", "server_log", "setup_logging"]

server_log = logging.getLogger("sentinel.server")
callback_log = logging.getLogger("sentinel.callback")
pipeline_log = logging.getLogger("sentinel.pipeline")


def setup_logging(level: str) -> None:
    """Configure the root handler once for CLI use (tests leave logging to pytest)."""
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s",
    )
    logging.getLogger("sentinel").setLevel(level)
