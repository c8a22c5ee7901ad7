"""The WeCom emulator: WeCom's server API checking requests the way WeCom does and recording every
call, and the callback sealer; used by the tests, ``bench/`` and the bot's send sandbox alike.

One core (:mod:`.emulator`: settings, state, the endpoint modules) behind two front ends:
:class:`FakeWeCom`, an aiohttp app for tests and benchmarks, and :class:`EmulatorTransport`, an
in-process ``WeComClient`` transport. Production code imports it only for the sandbox.
"""

from __future__ import annotations

from .emulator import API_PATHS, Reply, WeComEmulator
from .fake_api import FakeWeCom
from .kf_endpoints import KF_OVER_LIMIT, KF_STATE_REFUSES
from .kf_items import kf_event, kf_text
from .records import Call, KfDelivery
from .sealer import CallbackRequest, CallbackSealer, text_message_xml
from .settings import EmulatorSettings
from .state import EmulatorState
from .transport import EmulatorTransport, api_path

__all__ = [
    "API_PATHS",
    "KF_OVER_LIMIT",
    "KF_STATE_REFUSES",
    "Call",
    "CallbackRequest",
    "CallbackSealer",
    "EmulatorSettings",
    "EmulatorState",
    "EmulatorTransport",
    "FakeWeCom",
    "KfDelivery",
    "Reply",
    "WeComEmulator",
    "api_path",
    "kf_event",
    "kf_text",
    "text_message_xml",
]
