"""The send sandbox: a WeCom stand-in used when no ``[wecom].secret`` is configured.

:class:`SandboxTransport` plugs into ``WeComClient(transport=...)``. It is the WeCom emulator of
``wecom_sdk.testing`` (the same checks and errcodes as the tests' fake) run in process, plus one
hook: each accepted call that WeCom would deliver is recorded in a :class:`SandboxLog`, so
``/sandbox/`` (``bot.sandbox.pages``) shows the card a manager would have got. Nothing leaves the
machine. Credentials (access_token, robot key) are only checked, never written to the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from bot.log import server_log
from monitor.archive import MonitorError, SandboxLog
from wecom_sdk.errors import ServiceUnavailable
from wecom_sdk.testing.emulator import API_PATHS, WeComEmulator
from wecom_sdk.testing.records import Call
from wecom_sdk.testing.transport import EmulatorTransport, api_path

__all__ = ["SANDBOX_TOKEN", "SandboxTransport", "api_path"]

SANDBOX_TOKEN = "sandbox-access-token"
"""The access_token the sandbox hands out and accepts (constant, so a shared token cache works)."""

#: Calls kept in the emulator's own memory (the log holds the ones that matter).
_HISTORY = 1000
#: Nothing is delivered by a pull, and nobody writes to a sandbox customer-service account.
_NOT_RECORDED = frozenset({"kf/sync_msg"})


class SandboxTransport(EmulatorTransport):
    """A :class:`wecom_sdk.client.Transport` that answers like WeCom and records instead of sending.

    Args:
        log: where accepted calls are recorded (the database, so every worker's page sees them).
        corp_id: the configured corp id; ``gettoken`` with another one gets 40013.
        agent_id: the configured app id; when set, ``agentid`` must equal it (else 40056).
        clock: wall-clock seconds, for record times and the duplicate check.

    Any ``corpsecret`` and robot key is accepted (the sandbox runs precisely because none is
    configured). ``kf/sync_msg`` answers an empty page; ``gettoken`` and ``kf/sync_msg`` are not
    recorded, nor a message WeCom's duplicate check would not deliver again.
    """

    def __init__(
        self,
        log: SandboxLog,
        corp_id: str,
        agent_id: int | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        emulator = WeComEmulator(
            corp_id=corp_id,
            secret=None,
            robot_keys=None,
            agent_id=agent_id,
            access_token=SANDBOX_TOKEN,
            clock=clock,
            wall=clock,
            id_prefix="sandbox-",
            history_limit=_HISTORY,
        )
        super().__init__(emulator)
        self._log = log
        self._clock = clock
        for path in API_PATHS - _NOT_RECORDED:
            emulator.on_accepted(path, self._record)

    def __repr__(self) -> str:
        corp_id, agent_id = self.emulator.corp_id, self.emulator.agent_id
        return f"SandboxTransport(corp_id={corp_id!r}, agent_id={agent_id!r})"

    async def _record(self, call: Call) -> None:
        if call.repeat:
            return  # WeCom answers 0 but delivers it once
        at = datetime.fromtimestamp(self._clock(), UTC)
        try:
            call_id = await self._log.record(call.path, call.body, call.answer, at=at)
        except MonitorError as exc:
            # As if WeCom were unreachable: the caller retries, and the page shows it once stored.
            # `from None`: the database error's cause carries SQL parameters (chat text).
            path = f"/cgi-bin/{call.path}"
            why = f"sandbox log unavailable ({type(exc).__name__})"
            raise ServiceUnavailable(f"{path}: {why}", path=path) from None
        server_log.info("sandbox: %s recorded as call %d, not sent to WeCom", call.path, call_id)
