"""The WeCom emulator: a fake qyapi server that checks requests the way WeCom does and records every
call, used by the tests, ``bench/`` and the sandbox alike. Never imported by production code paths
except the sandbox.
"""

from __future__ import annotations

from .fake_api import (
    KF_OVER_LIMIT,
    KF_STATE_REFUSES,
    Call,
    FakeWeCom,
    KfDelivery,
    kf_event,
    kf_text,
)

__all__ = [
    "KF_OVER_LIMIT",
    "KF_STATE_REFUSES",
    "Call",
    "FakeWeCom",
    "KfDelivery",
    "kf_event",
    "kf_text",
]
