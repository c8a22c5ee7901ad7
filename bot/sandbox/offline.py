"""A WeCom client for one CLI run without ``[wecom].secret``: answered by an in-process emulator.

The CLI commands that call WeCom (``rules sync-intercept``) run against it when no secret is
configured: every request is checked as WeCom would check it, nothing leaves the machine, and
what the emulator holds is gone when the command ends.
"""

from __future__ import annotations

from wecom_sdk.client import WeComClient
from wecom_sdk.testing.emulator import WeComEmulator
from wecom_sdk.testing.transport import EmulatorTransport

__all__ = ["OFFLINE_TOKEN", "offline_client"]

OFFLINE_TOKEN = "offline-access-token"


def offline_client(corp_id: str, api_base: str) -> WeComClient:
    """A client whose calls an emulator of ``corp_id`` answers (any secret, one fixed token)."""
    emulator = WeComEmulator(corp_id=corp_id, secret=None, access_token=OFFLINE_TOKEN)
    return WeComClient(corp_id, "offline", api_base=api_base, transport=EmulatorTransport(emulator))
