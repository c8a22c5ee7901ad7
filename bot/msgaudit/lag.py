"""How far the archive pull is behind, as a metric and, past ``lag_alert_hours``, a WeCom message.

Two clocks:

- the **lag** (the metric): now minus the ``msgtime`` of the newest archived record;
- **behind**: now minus the later of that ``msgtime`` and the last time a pull reached the end of
  what WeCom holds. A quiet weekend (nothing to pull, pulls caught up) is not behind; a puller that
  fails every pull (an IP not allowed, a wrong secret) or pulls slower than chats arrive is.

WeCom keeps archived chats 5 days, so the operators are told once when *behind* passes
``lag_alert_hours`` (default 24), reminded once a day while it lasts, and told when it is over.
Runs after each pull round, under the pull lock: one worker sends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from bot.config import Config
from bot.msgaudit.log import msgaudit_log
from bot.msgaudit.store import CursorState, cursor_state, mark_lag_alerted
from bot.web.metrics import BotMetrics
from monitor.archive import GroupCommitWriter
from wecom_sdk.client import WeComClient

__all__ = ["LagStatus", "LagWatch", "lag_status", "lag_text", "recovered_text"]

_REMIND_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class LagStatus:
    """The two clocks at ``now`` (None: nothing archived / never caught up yet)."""

    lag_s: float | None
    behind_s: float | None
    newest_at: datetime | None
    caught_up_at: datetime | None


def lag_status(state: CursorState | None, now: float) -> LagStatus:
    """The lag and how far behind the pull is, from the cursor row (pure)."""
    if state is None:
        return LagStatus(None, None, None, None)
    newest = state.newest_msgtime / 1000 if state.newest_msgtime else None
    caught = state.caught_up_at.timestamp() if state.caught_up_at is not None else None
    marks = [t for t in (newest, caught) if t is not None]
    return LagStatus(
        lag_s=now - newest if newest is not None else None,
        behind_s=now - max(marks) if marks else None,
        newest_at=datetime.fromtimestamp(newest, UTC) if newest is not None else None,
        caught_up_at=state.caught_up_at,
    )


def _local(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M") if at is not None else "无"


def lag_text(status: LagStatus, hours: float) -> str:
    """The operators' message when the pull is behind (Chinese, one screen)."""
    behind_h = (status.behind_s or 0) / 3600
    return (
        f"【会话存档拉取延迟】员工会话存档已落后 {behind_h:.1f} 小时（告警阈值 {hours:g} 小时）。\n"
        f"最新存档消息时间：{_local(status.newest_at)}\n"
        f"最近一次追平时间：{_local(status.caught_up_at)}\n"
        "企业微信只保留最近 5 天的会话记录，超过将永久无法拉取。"
        "请检查拉取服务（python run_bot.py msgaudit status）。"
    )


def recovered_text(status: LagStatus) -> str:
    """The operators' message when the pull has caught up again."""
    return f"【会话存档拉取恢复】员工会话存档已追平，最新存档消息时间：{_local(status.newest_at)}。"


class LagWatch:
    """Updates the lag metric and tells the operators (see the module docstring)."""

    def __init__(
        self,
        *,
        writer: GroupCommitWriter,
        client: WeComClient,
        config: Config,
        metrics: BotMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._writer = writer
        self._client = client
        self._hours = config.msgaudit.lag_alert_hours
        self._operators = config.msgaudit.operators or config.alerts.managers
        self._metrics = metrics
        self._clock = clock

    async def check(self) -> LagStatus:
        """Measure, and message the operators when the state calls for it.

        Raises:
            monitor.errors.StorageError, wecom_sdk.errors.WeComError: the next round tries again.
        """
        state = await self._writer.run(cursor_state)
        now = self._clock()
        status = lag_status(state, now)
        if self._metrics is not None and status.lag_s is not None:
            self._metrics.msgaudit_lag.set(status.lag_s)
        if state is None or status.behind_s is None:
            return status
        alerted = state.lag_alerted_at.timestamp() if state.lag_alerted_at is not None else None
        if status.behind_s > self._hours * 3600:
            if alerted is None or now - alerted >= _REMIND_S:
                await self._tell(lag_text(status, self._hours))
                await self._writer.run(partial(mark_lag_alerted, at=now))
        elif alerted is not None:
            await self._tell(recovered_text(status))
            await self._writer.run(partial(mark_lag_alerted, at=None))
        return status

    async def _tell(self, text: str) -> None:
        if not self._operators:
            msgaudit_log.warning("msgaudit lag: no operators and no [alerts].managers to tell")
            return
        await self._client.message.send_text(list(self._operators), text)
        msgaudit_log.warning("msgaudit lag: told %d operator(s)", len(self._operators))
