"""The lag clocks: a quiet weekend is not "behind"; a failing or slow puller is."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.msgaudit.lag import lag_status, lag_text, recovered_text
from bot.msgaudit.store import CursorState

NOW = 1_780_000_000.0
H = 3600.0


def state(newest_s: float | None, caught_up_s: float | None) -> CursorState:
    return CursorState(
        fence=1,
        seq=10,
        newest_msgtime=int(newest_s * 1000) if newest_s is not None else 0,
        keys_generation=0,
        caught_up_at=datetime.fromtimestamp(caught_up_s, UTC) if caught_up_s is not None else None,
        lag_alerted_at=None,
        updated_at=None,
    )


def test_nothing_archived_yet_is_unknown_not_behind() -> None:
    assert lag_status(None, NOW).behind_s is None
    status = lag_status(state(None, None), NOW)
    assert status.lag_s is None and status.behind_s is None


def test_a_quiet_period_that_is_caught_up_is_not_behind() -> None:
    status = lag_status(state(NOW - 60 * H, NOW - 60), NOW)
    assert status.lag_s == 60 * H  # the metric shows the newest message's age
    assert status.behind_s == 60  # but the pull reached the end a minute ago


def test_a_puller_that_stopped_catching_up_is_behind() -> None:
    status = lag_status(state(NOW - 30 * H, NOW - 31 * H), NOW)
    assert status.behind_s == 30 * H
    text = lag_text(status, 24)
    assert "已落后 30.0 小时" in text and "阈值 24 小时" in text and "5 天" in text
    assert "已追平" in recovered_text(status)
