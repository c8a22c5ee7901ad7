"""Async WeCom server-API client: ``WeComClient`` with ``message``, ``appchat``, ``kf``, ``robot``,
``externalcontact`` and ``user`` groups.

Tokens are cached (memory or Redis) and refreshed single-flight; errcodes become typed
:mod:`wecom_sdk.errors` exceptions. https://developer.work.weixin.qq.com/document/path/90664
"""

from __future__ import annotations

from .appchat import AppChatApi
from .caller import Caller
from .externalcontact import ExternalContactApi
from .kf import KfApi
from .message import MessageApi
from .models import ExternalContact, FollowUser, Member, SendResult, ServiceState, SyncResult
from .robot import RobotApi
from .token import MemoryTokenCache, RedisTokenCache, TokenCache, TokenManager, token_key
from .transport import AiohttpTransport, Transport
from .user import UserApi
from .wecom_client import DEFAULT_API_BASE, RetryPolicy, WeComClient, check_response, redact

__all__ = [
    "DEFAULT_API_BASE",
    "AiohttpTransport",
    "AppChatApi",
    "Caller",
    "ExternalContact",
    "ExternalContactApi",
    "FollowUser",
    "KfApi",
    "Member",
    "MemoryTokenCache",
    "MessageApi",
    "RedisTokenCache",
    "RetryPolicy",
    "RobotApi",
    "SendResult",
    "ServiceState",
    "SyncResult",
    "TokenCache",
    "TokenManager",
    "Transport",
    "UserApi",
    "WeComClient",
    "check_response",
    "redact",
    "token_key",
]
