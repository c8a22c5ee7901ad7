"""Configuration: TOML file -> frozen, validated dataclasses.

Environment variables override secrets and addresses, and only here (objects get their settings through
their constructors, never by reading the environment themselves). A wrong value raises ``ConfigError``
naming the key, e.g. ``[wecom].encoding_aes_key: must be 43 characters``; secret values are never part of
an error message.

Relative paths written in the file (``[rules].paths``, a SQLite ``[storage].database_url``) are
relative to the file's folder, wherever the process runs; a relative SQLite path given by the
environment (``DATABASE_URL``) is relative to the working directory. Both are made absolute here.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "AlertsConfig",
    "ArchiveConfig",
    "Config",
    "ConfigError",
    "KfConfig",
    "MetricsConfig",
    "ReviewConfig",
    "RulesConfig",
    "SandboxConfig",
    "ServerConfig",
    "StorageConfig",
    "WeComConfig",
    "default_config_path",
    "load_config",
    "sqlite_file",
]

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"

# (section, key) for every environment override the design's config contract names.
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "WECOM_CORP_ID": ("wecom", "corp_id"),
    "WECOM_TOKEN": ("wecom", "token"),
    "WECOM_AES_KEY": ("wecom", "encoding_aes_key"),
    "WECOM_AGENT_ID": ("wecom", "agent_id"),
    "WECOM_SECRET": ("wecom", "secret"),
    "WECOM_API_BASE": ("wecom", "api_base"),
    "DATABASE_URL": ("storage", "database_url"),
    "REDIS_URL": ("storage", "redis_url"),
    "SENTINEL_METRICS_TOKEN": ("metrics", "bearer_token"),
    "WECOM_MSGAUDIT_SECRET": ("msgaudit", "secret"),
    "REVIEW_PSEUDONYM_KEY": ("review", "pseudonym_key"),
}

_AES_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
_CHAT_ID_RE = re.compile(r"[A-Za-z0-9]{1,32}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the key."""


def _check(condition: bool, key: str, problem: str) -> None:
    if not condition:
        raise ConfigError(f"{key}: {problem}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """``[server]``: where and how the callback server listens."""

    host: str = "127.0.0.1"
    port: int = 8080
    callback_path: str = "/wecom/callback"
    max_body_bytes: int = 64 * 1024
    #: Allowed distance between a POST's timestamp and our clock, each way (WeCom sets no window).
    timestamp_skew_s: int = 300
    workers: int = 1
    #: Seconds SIGTERM waits for in-flight callbacks and the pending group commit.
    shutdown_timeout_s: float = 10.0
    #: Seconds a client has to send a request's header block, from its first byte (or the accept).
    header_timeout_s: float = 10.0
    #: Seconds a client has to send a request's body, from the end of its header block.
    body_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        _check(0 < self.port < 65536, "[server].port", "must be 1..65535")
        _check(self.callback_path.startswith("/"), "[server].callback_path", "must start with '/'")
        _check(
            1024 <= self.max_body_bytes <= 16 * 1024 * 1024,
            "[server].max_body_bytes",
            "must be between 1024 and 16777216",
        )
        _check(self.timestamp_skew_s > 0, "[server].timestamp_skew_s", "must be positive")
        _check(self.workers >= 1, "[server].workers", "must be at least 1")
        _check(self.shutdown_timeout_s > 0, "[server].shutdown_timeout_s", "must be positive")
        for key in ("header_timeout_s", "body_timeout_s"):
            _check(
                0 < getattr(self, key) <= 300,
                f"[server].{key}",
                "must be more than 0 and at most 300 seconds",
            )


@dataclass(frozen=True, slots=True)
class WeComConfig:
    """``[wecom]``: the app's callback credentials and API access."""

    corp_id: str = ""
    token: str = field(default="", repr=False)
    encoding_aes_key: str = field(default="", repr=False)
    agent_id: str = ""
    secret: str = field(default="", repr=False)
    api_base: str = DEFAULT_API_BASE

    def __post_init__(self) -> None:
        _check(bool(self.corp_id), "[wecom].corp_id", "is required (env WECOM_CORP_ID)")
        _check(bool(self.token), "[wecom].token", "is required (env WECOM_TOKEN)")
        _check(
            len(self.token) <= 32 and self.token.isalnum(),
            "[wecom].token",
            "must be 1-32 letters or digits",
        )
        _check(
            len(self.encoding_aes_key) == 43,
            "[wecom].encoding_aes_key",
            f"must be 43 characters, got {len(self.encoding_aes_key)} (env WECOM_AES_KEY)",
        )
        _check(
            bool(_AES_KEY_RE.fullmatch(self.encoding_aes_key)),
            "[wecom].encoding_aes_key",
            "must contain only letters and digits",
        )
        _check(
            self.agent_id == "" or self.agent_id.isdigit(),
            "[wecom].agent_id",
            "must be the app's numeric AgentId",
        )
        _check(
            self.api_base.startswith(("http://", "https://")),
            "[wecom].api_base",
            "must be an http(s) URL",
        )


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """``[storage]``: the archive database and the shared-state Redis."""

    database_url: str = "sqlite:///data/sentinel.db"
    #: Empty = in-process fallbacks (dedupe, locks); only one worker may run then.
    redis_url: str = field(default="", repr=False)
    #: Prefix of every Redis key this deployment writes (several deployments may share one Redis).
    redis_prefix: str = "sentinel:"
    #: SQLite only. FULL fsyncs every group commit (survives power loss); NORMAL survives kill -9 only.
    sqlite_synchronous: str = "FULL"
    #: How long a stored message's id is remembered to drop WeCom's retries (3 retries within ~15 s).
    dedupe_ttl_s: int = 600
    #: Deadline of one Redis call, waiting for a pooled connection included (``bot.redis_guard``).
    redis_timeout_ms: int = 200

    def __post_init__(self) -> None:
        _check(
            self.database_url.split(":", 1)[0].split("+", 1)[0]
            in ("sqlite", "postgresql", "postgres"),
            "[storage].database_url",
            "must be a sqlite:/// or postgresql:// URL (env DATABASE_URL)",
        )
        _check(
            self.redis_url == "" or self.redis_url.startswith(("redis://", "rediss://", "unix://")),
            "[storage].redis_url",
            "must be empty or a redis:// URL (env REDIS_URL)",
        )
        _check(
            self.sqlite_synchronous in ("FULL", "NORMAL"),
            "[storage].sqlite_synchronous",
            "must be FULL or NORMAL",
        )
        _check(
            self.dedupe_ttl_s >= 60,
            "[storage].dedupe_ttl_s",
            "must be at least 60 (WeCom retries for ~15 s)",
        )
        _check(
            10 <= self.redis_timeout_ms <= 1000,
            "[storage].redis_timeout_ms",
            "must be between 10 and 1000 (a callback makes up to 3 Redis calls within WeCom's 5 s)",
        )


#: The sample rules shipped with the package, used when a config names no rule paths.
SAMPLE_RULES = str(Path(__file__).resolve().parent.parent / "rules" / "samples")


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """``[rules]``: rule files and folders (relative paths are relative to the config file)."""

    paths: tuple[str, ...] = (SAMPLE_RULES,)
    #: Seconds between checks of the rule files for changes (hot reload; SIGHUP reloads at once).
    reload_interval_s: float = 2.0
    #: Messages of one sender in one conversation matched as one text (a word split over them:
    #: 维 / 权), the newest included; 0 or 1 turns the live window off.
    split_window_messages: int = 3
    #: Seconds (by the messages' create times) an earlier message stays in that window; 0 = off.
    split_window_s: int = 120
    #: ``rules sync-intercept``: who WeCom's own interception applies to. Members (userids) and
    #: departments (ids); both empty = the whole company (department 1, WeCom's root department).
    intercept_userids: tuple[str, ...] = ()
    intercept_departments: tuple[int, ...] = ()
    #: ``rules sync-intercept``: true = WeCom warns and blocks the message (intercept_type 1),
    #: false = it only warns (intercept_type 2).
    intercept_block: bool = True
    #: ``rules sync-intercept``: WeCom's extra semantic checks: 1 phone numbers, 2 e-mail
    #: addresses, 3 red packets.
    intercept_semantics: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.paths), "[rules].paths", "must name at least one rule file or folder")
        _check(self.reload_interval_s > 0, "[rules].reload_interval_s", "must be positive")
        _check(self.split_window_messages >= 0, "[rules].split_window_messages", "must be >= 0")
        _check(self.split_window_s >= 0, "[rules].split_window_s", "must be >= 0")
        _check(
            len(self.intercept_userids) <= 1000 and len(self.intercept_departments) <= 1000,
            "[rules].intercept_userids",
            "WeCom takes at most 1000 members and 1000 departments per rule",
        )
        _check(
            all(d > 0 for d in self.intercept_departments),
            "[rules].intercept_departments",
            "must be positive department ids",
        )
        _check(
            all(s in (1, 2, 3) for s in self.intercept_semantics),
            "[rules].intercept_semantics",
            "must list 1 (phone), 2 (e-mail) or 3 (red packet)",
        )

    @property
    def split_window_on(self) -> bool:
        """Whether the live pipeline matches words split over messages."""
        return self.split_window_messages > 1 and self.split_window_s > 0


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """``[alerts]``: who is told about hits, and how."""

    managers: tuple[str, ...] = ()
    robot_webhook: str = field(default="", repr=False)
    aggregate_window_s: int = 600
    escalate_after_s: int = 1800
    escalate_to: tuple[str, ...] = ()
    #: Per-recipient budget, well under WeCom's silent-drop limits (30/min, 1000/h per member).
    max_per_minute: int = 20
    max_per_hour: int = 600
    #: Card titles by severity (low, medium, high, critical); empty = the built-in Chinese ones.
    customer_titles: tuple[str, ...] = ()
    staff_titles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for key in ("customer_titles", "staff_titles"):
            titles = getattr(self, key)
            _check(
                not titles or (len(titles) == 4 and all(t.strip() for t in titles)),
                f"[alerts].{key}",
                "must list 4 non-empty titles: low, medium, high, critical",
            )
        _check(self.aggregate_window_s >= 0, "[alerts].aggregate_window_s", "must be >= 0")
        _check(self.escalate_after_s >= 0, "[alerts].escalate_after_s", "must be >= 0")
        _check(
            1 <= self.max_per_minute <= 30,
            "[alerts].max_per_minute",
            "must be 1..30 (WeCom silently drops more than 30 a minute per member)",
        )
        _check(
            1 <= self.max_per_hour <= 1000,
            "[alerts].max_per_hour",
            "must be 1..1000 (WeCom silently drops more than 1000 an hour per member)",
        )
        _check(
            not self.robot_webhook
            or self.robot_webhook.startswith("https://")
            or self.robot_webhook.startswith("http://"),
            "[alerts].robot_webhook",
            "must be the robot's webhook URL (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=...)",
        )


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """``[review]``: the compliance review web."""

    path: str = "/review"
    #: Address managers' phones open from an alert card, e.g. "https://sentinel.example.com";
    #: empty = this server's own host and port (fine on a laptop, not reachable from WeCom).
    public_url: str = ""
    #: A reviewer's session ends after this many minutes without a request.
    idle_timeout_min: int = 30
    #: The session cookie's ``Secure`` flag: "auto" (when the request came over TLS, directly or
    #: as ``X-Forwarded-Proto: https``), "always", or "never" (plain-http test set-ups only).
    secure_cookie: str = "auto"
    #: Failed logins, per account and per client address, that lock further logins out ...
    lockout_failures: int = 5
    #: ... when they fall within this many minutes; the lock lifts as the failures age out.
    lockout_minutes: int = 15
    #: Share (0..1) of each staff member's conversations without any hit in an ISO week that
    #: enters the queue as a sampled case (抽检), so reviewers see what the word list misses; 0 = off.
    sample_rate: float = 0.0
    #: Show customers' ids and names to reviewers as stable pseudonyms (客户-K7Q2M9XA) until a
    #: reviewer reveals one, giving a reason (audited).
    pseudonymise: bool = False
    #: The pseudonyms' HMAC key (prefer env REVIEW_PSEUDONYM_KEY); "" = a random key generated
    #: once and kept in the database. Changing it changes every pseudonym.
    pseudonym_key: str = ""
    #: How long one reveal lasts for the reviewer who made it.
    reveal_minutes: int = 240

    def __post_init__(self) -> None:
        _check(self.path.startswith("/"), "[review].path", "must start with '/'")
        _check(
            len(self.path) > 1 and not self.path.endswith("/"),
            "[review].path",
            'must not be "/" or end with "/" (e.g. "/review")',
        )
        _check(1 <= self.idle_timeout_min <= 1440, "[review].idle_timeout_min", "must be 1..1440")
        _check(
            self.secure_cookie in ("auto", "always", "never"),
            "[review].secure_cookie",
            'must be "auto", "always" or "never"',
        )
        _check(1 <= self.lockout_failures <= 100, "[review].lockout_failures", "must be 1..100")
        _check(1 <= self.lockout_minutes <= 1440, "[review].lockout_minutes", "must be 1..1440")
        _check(0.0 <= self.sample_rate <= 1.0, "[review].sample_rate", "must be 0..1 (a share)")
        _check(
            isinstance(self.pseudonymise, bool), "[review].pseudonymise", "must be true or false"
        )
        _check(
            not self.pseudonym_key or len(self.pseudonym_key) >= 32,
            "[review].pseudonym_key",
            "must be at least 32 characters (env REVIEW_PSEUDONYM_KEY), or empty",
        )
        _check(1 <= self.reveal_minutes <= 1440, "[review].reveal_minutes", "must be 1..1440")
        _check(
            not self.public_url or self.public_url.startswith(("https://", "http://")),
            "[review].public_url",
            "must start with https:// (or http://)",
        )


@dataclass(frozen=True, slots=True)
class ArchiveConfig:
    """``[archive]``: the message archive's hash chains and its retention."""

    #: A group chat the app created (appchat/create): once a day the bot posts both chains' latest
    #: block hashes there, so a later rewrite of the database cannot go unnoticed. "" = off.
    anchor_chat: str = ""
    #: ``archive purge`` deletes messages received more than this many days ago (legal holds and
    #: open cases kept); 0 = keep everything forever (the default).
    retention_days: int = 0

    def __post_init__(self) -> None:
        _check(
            0 <= self.retention_days <= 36500,
            "[archive].retention_days",
            "must be 0 (keep forever) or a number of days up to 36500",
        )
        _check(
            self.anchor_chat == "" or bool(_CHAT_ID_RE.fullmatch(self.anchor_chat)),
            "[archive].anchor_chat",
            'must be "" (off) or a group chat id of 1-32 letters and digits',
        )


_SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class MsgauditConfig:
    """``[msgaudit]``: staff chats pulled from WeCom's conversation archive (会话内容存档).

    Paths (``sdk_path``, ``fake_source``, ``private_keys``, ``media_dir``) are relative to the
    config file's folder (made absolute by :func:`load_config`).
    """

    enabled: bool = False
    #: The vendor library ``libWeWorkFinanceSdk_C.so`` (never shipped with the project).
    sdk_path: str = ""
    #: Used when ``sdk_path`` is empty: a file of ``chatdata`` entries (design.md §3).
    fake_source: str = ""
    #: The archive's own Secret (管理工具 → 会话内容存档); prefer env WECOM_MSGAUDIT_SECRET.
    secret: str = field(default="", repr=False)
    #: ``{"<publickey_ver>" = "key.pem"}``: every private key ever uploaded (keep old versions).
    private_keys: Mapping[str, str] = field(default_factory=dict)
    #: Seconds between pulls besides the ``msgaudit_notify`` callbacks.
    poll_interval_s: float = 60.0
    #: Tell the operators when the newest archived message is older than this (WeCom keeps 5 days).
    lag_alert_hours: float = 24.0
    #: Who is told about the lag (WeCom userids); empty = ``[alerts] managers``.
    operators: tuple[str, ...] = ()
    #: Entries per GetChatData call (1..1000).
    page_limit: int = 1000
    #: GetChatData / GetMediaData timeout in seconds.
    timeout_s: int = 5
    #: An HTTP proxy for the vendor library, when the host has no direct route to WeCom.
    proxy: str = ""
    proxy_password: str = field(default="", repr=False)
    #: Where media files are stored by content (sha256); relative to the config file.
    media_dir: str = "data/media"
    #: Larger media files are not downloaded (the message is archived all the same).
    media_max_bytes: int = 100 * 1024 * 1024

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), "[msgaudit].enabled", "must be true or false")
        _check(
            isinstance(self.private_keys, Mapping)
            and all(
                isinstance(v, str) and v and k.isdigit() and int(k) > 0
                for k, v in self.private_keys.items()
            ),
            "[msgaudit].private_keys",
            'must map each publickey_ver (a positive number in quotes) to a PEM file: {"1" = "key.pem"}',
        )
        _check(self.poll_interval_s > 0, "[msgaudit].poll_interval_s", "must be positive")
        _check(
            0 < self.lag_alert_hours < 120,
            "[msgaudit].lag_alert_hours",
            "must be between 0 and 120 (WeCom keeps archived chats 5 days)",
        )
        _check(1 <= self.page_limit <= 1000, "[msgaudit].page_limit", "must be 1..1000")
        _check(1 <= self.timeout_s <= 60, "[msgaudit].timeout_s", "must be 1..60")
        _check(self.media_max_bytes > 0, "[msgaudit].media_max_bytes", "must be positive")
        _check(
            not self.enabled or bool(self.sdk_path or self.fake_source),
            "[msgaudit].sdk_path",
            "is needed when enabled (or fake_source, for tests and the demo)",
        )
        _check(
            not (self.enabled and self.sdk_path) or bool(self.secret),
            "[msgaudit].secret",
            "is needed with sdk_path (env WECOM_MSGAUDIT_SECRET)",
        )


@dataclass(frozen=True, slots=True)
class KfConfig:
    """``[kf]``: 微信客服 (WeChat Customer Service): pulling, auto-replies, hand-off, welcome."""

    enabled: bool = True
    #: Seconds between pulls of every known kf account, in case a callback was missed.
    pull_interval_s: float = 60.0
    #: A customer message containing one of these is handed to a human (besides handoff rules).
    #: Unambiguous phrases only: a bare 人工 is the sample 转人工 rule's job, which knows that
    #: 人工智能 is not a request for a human.
    handoff_keywords: tuple[str, ...] = ("转人工", "人工客服", "真人客服")
    #: Hand off after this many customer messages in a row the bot could not answer; 0 = never.
    handoff_after_unanswered: int = 3
    #: Hand off when a customer message hits a group of at least this severity; "" = never.
    handoff_on_severity: str = "high"
    #: Servicer userid to transfer to (state 3); "" = the waiting pool (state 2).
    handoff_servicer: str = ""
    #: Sent when the bot hands off for a reason other than a handoff reply rule.
    handoff_text: str = "好的，正在为您转接人工客服，请稍候。"
    #: The welcome sent on enter_session (with its welcome_code, within 20 s).
    welcome_text: str = "您好，欢迎咨询！我是智能助手，可以为您解答发货、退换货、价格等问题；需要人工服务请回复“人工”。"
    #: Clickable options under the welcome text (a kf menu); "" entries are not allowed.
    welcome_menu: tuple[str, ...] = ("查询物流", "退换货", "人工客服")
    #: Reply rules with a priority at or below this are low-value (greetings, notices): they may
    #: use 3 of the 5 messages WeCom allows after a customer message; other replies 4; the 5th is
    #: kept for a hand-off.
    low_value_priority: int = 10
    #: Customer messages older than this (seconds) are archived and inspected but not answered.
    reply_max_age_s: int = 3600

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), "[kf].enabled", "must be true or false")
        _check(self.pull_interval_s > 0, "[kf].pull_interval_s", "must be positive")
        _check(
            all(k.strip() for k in self.handoff_keywords),
            "[kf].handoff_keywords",
            "must not contain empty keywords",
        )
        _check(self.handoff_after_unanswered >= 0, "[kf].handoff_after_unanswered", "must be >= 0")
        _check(
            self.handoff_on_severity in ("", *_SEVERITIES),
            "[kf].handoff_on_severity",
            f'must be "" (never) or one of {", ".join(_SEVERITIES)}',
        )
        _check(
            0 < len(self.handoff_text.encode()) <= 2048,
            "[kf].handoff_text",
            "must be 1..2048 bytes (WeCom's text limit)",
        )
        _check(
            0 < len(self.welcome_text.encode()) <= 2048,
            "[kf].welcome_text",
            "must be 1..2048 bytes (WeCom's text limit)",
        )
        _check(
            len(self.welcome_menu) <= 10 and all(o.strip() for o in self.welcome_menu),
            "[kf].welcome_menu",
            "must hold at most 10 non-empty options (WeCom's menu limit)",
        )
        _check(self.reply_max_age_s > 0, "[kf].reply_max_age_s", "must be positive")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """``[sandbox]``: the pages ``/sandbox/`` showing the WeCom calls recorded instead of sent while
    ``[wecom].secret`` is empty (they show chat text and alerts: off unless asked for)."""

    enabled: bool = False
    #: False = the pages answer loopback clients only (``bot.web.access``).
    allow_remote: bool = False

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), "[sandbox].enabled", "must be true or false")
        _check(
            isinstance(self.allow_remote, bool), "[sandbox].allow_remote", "must be true or false"
        )


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: who may scrape ``/metrics`` (``bot.web.access``)."""

    #: Peer addresses and CIDRs admitted without a token; default: this host only.
    allow: tuple[str, ...] = ("127.0.0.0/8", "::1")
    #: Admits ``Authorization: Bearer <token>`` from any address; "" = no token.
    bearer_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for entry in self.allow:
            try:
                ipaddress.ip_network(entry)
            except ValueError:
                raise ConfigError(
                    f"[metrics].allow: {entry!r} is not an IP address or CIDR network "
                    '(e.g. "127.0.0.1", "10.0.0.0/8"; a network\'s host bits must be 0)'
                ) from None
        _check(
            self.bearer_token == ""
            or (
                16 <= len(self.bearer_token) <= 256
                and all("!" <= c <= "~" for c in self.bearer_token)
            ),
            "[metrics].bearer_token",
            "must be empty or 16-256 printable ASCII characters without spaces "
            "(env SENTINEL_METRICS_TOKEN)",
        )


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """``[logging]``: log level of the ``sentinel.*`` loggers."""

    level: str = "INFO"

    def __post_init__(self) -> None:
        _check(
            self.level in _LOG_LEVELS, "[logging].level", f"must be one of {', '.join(_LOG_LEVELS)}"
        )


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    server: ServerConfig
    wecom: WeComConfig
    storage: StorageConfig = field(default_factory=StorageConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    review: ReviewConfig = field(default_factory=ReviewConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    kf: KfConfig = field(default_factory=KfConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    archive: ArchiveConfig = field(default_factory=ArchiveConfig)
    msgaudit: MsgauditConfig = field(default_factory=MsgauditConfig)
    #: The file this was read from (for messages only).
    source: str = ""

    def __post_init__(self) -> None:
        _check(
            self.server.workers == 1 or bool(self.storage.redis_url),
            "[server].workers",
            f"{self.server.workers} workers need [storage].redis_url (env REDIS_URL): without Redis "
            "the dedupe and lock state lives in one process, so only one worker is allowed",
        )

    def with_overrides(self, **server: Any) -> Config:
        """Return a copy with some ``[server]`` values replaced (CLI ``--host/--port/--workers``)."""
        given = {k: v for k, v in server.items() if v is not None}
        return replace(self, server=replace(self.server, **given)) if given else self


_SECTIONS: dict[str, type[Any]] = {
    "server": ServerConfig,
    "wecom": WeComConfig,
    "storage": StorageConfig,
    "rules": RulesConfig,
    "alerts": AlertsConfig,
    "review": ReviewConfig,
    "logging": LoggingConfig,
    "kf": KfConfig,
    "sandbox": SandboxConfig,
    "metrics": MetricsConfig,
    "archive": ArchiveConfig,
    "msgaudit": MsgauditConfig,
}


#: Keys whose value is a list of integers (every other list holds strings).
_INT_LISTS = frozenset({"intercept_departments", "intercept_semantics"})


def _build_section(name: str, cls: type[Any], values: Mapping[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(values) - set(known))
    _check(not unknown, f"[{name}].{unknown[0] if unknown else ''}", "unknown key")
    kwargs: dict[str, Any] = {}
    for key, given in values.items():
        value = given
        default = known[key].default
        if key == "agent_id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # TOML users naturally write the AgentId as a number
        if isinstance(default, tuple) and key in _INT_LISTS:
            _check(
                isinstance(value, list)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
                f"[{name}].{key}",
                "must be a list of integers",
            )
            value = tuple(value)
        elif isinstance(default, tuple):
            _check(
                isinstance(value, list) and all(isinstance(v, str) for v in value),
                f"[{name}].{key}",
                "must be a list of strings",
            )
            value = tuple(value)
        elif isinstance(default, bool) or not isinstance(default, (int, float, str)):
            pass
        elif isinstance(default, float):
            _check(
                isinstance(value, (int, float)) and not isinstance(value, bool),
                f"[{name}].{key}",
                "must be a number",
            )
            value = float(value)
        else:
            _check(
                type(value) is type(default),
                f"[{name}].{key}",
                f"must be a {type(default).__name__}",
            )
        kwargs[key] = value
    return cls(**kwargs)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML config file, then apply environment overrides from ``env``.

    Raises:
        ConfigError: the file is missing or unreadable, or a key is unknown or invalid.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    base = path.resolve().parent
    # A relative SQLite path is relative to where it was written: this file's folder, or the
    # working directory for one given by the environment.
    storage = data.get("storage")
    if isinstance(storage, dict) and isinstance(storage.get("database_url"), str):
        storage["database_url"] = _absolute_sqlite(storage["database_url"], base)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env and env.get(var):
            value = env[var]
            if var == "DATABASE_URL":
                value = _absolute_sqlite(value, Path.cwd())
            data.setdefault(section, {})[key] = value
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"[{unknown[0]}]: unknown section in {path}")
    sections = {}
    for name, cls in _SECTIONS.items():
        raw = data.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"[{name}]: must be a table")
        sections[name] = _build_section(name, cls, raw)
    rules: RulesConfig = sections["rules"]
    sections["rules"] = replace(rules, paths=tuple(str(base / p) for p in rules.paths))
    sections["msgaudit"] = _msgaudit_paths(sections["msgaudit"], base)
    if "storage" not in data or "database_url" not in data["storage"]:
        default = sections["storage"].database_url
        sections["storage"] = replace(
            sections["storage"], database_url=_absolute_sqlite(default, base)
        )
    _check_sqlite_folder(sections["storage"].database_url)
    return Config(**sections, source=str(path))


def _msgaudit_paths(section: MsgauditConfig, base: Path) -> MsgauditConfig:
    def absolute(path: str) -> str:
        return str(base / path) if path else ""

    return replace(
        section,
        sdk_path=absolute(section.sdk_path),
        fake_source=absolute(section.fake_source),
        media_dir=absolute(section.media_dir),
        private_keys={k: absolute(v) for k, v in section.private_keys.items()},
    )


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, or None (another backend, or in memory)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] != "sqlite" or not rest.startswith("/"):
        return None
    database = rest[1:].split("?", 1)[0]
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _absolute_sqlite(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file path made absolute against ``base``."""
    database = sqlite_file(url)
    if database is None or database.is_absolute():
        return url
    scheme, rest = url.split(":///", 1)
    query = rest[len(rest.split("?", 1)[0]) :]
    return f"{scheme}:///{os.path.normpath(base / database)}{query}"


def _check_sqlite_folder(url: str) -> None:
    """The database's own folder may be missing (it is created at start), not its parent.

    Creating only that one folder keeps a mistyped path from growing a tree of directories.
    """
    database = sqlite_file(url)
    if database is None:
        return
    folder = database.parent
    _check(
        folder.is_dir() or folder.parent.is_dir(),
        "[storage].database_url",
        f"the SQLite file's folder {folder} cannot be created: {folder.parent} does not exist "
        "(only the database's own folder is created)",
    )


def default_config_path(cwd: Path | None = None) -> Path:
    """``config.toml`` if present, else ``config.example.toml`` (the design's CLI contract)."""
    base = cwd or Path.cwd()
    own = base / "config.toml"
    return own if own.exists() else base / "config.example.toml"
