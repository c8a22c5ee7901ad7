"""Start-up checks that turn a wrong config into one clear line naming the key, before serving."""

from __future__ import annotations

from pathlib import Path

import redis
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Config, ConfigError
from monitor.archive import SchemaMismatch, create_schema, make_engine
from rules.errors import RuleFileError
from rules.loader import load_rules
from wecom_sdk.errors import WeComError
from wecom_sdk.msgaudit.keyring import KeyRing

__all__ = ["check_services", "config_notes"]


def check_services(config: Config) -> None:
    """Load the rule files and connect to the database (and Redis, if configured) once.

    Raises:
        ConfigError: naming ``[rules].paths`` (with every ``file:line`` problem),
            ``[storage].database_url`` or ``[storage].redis_url``; a URL itself is not repeated
            because it may carry a password.
    """
    try:
        load_rules(config.rules.paths)
    except RuleFileError as exc:
        raise ConfigError(f"[rules].paths: the rule files have problems:\n{exc}") from exc
    try:
        engine = make_engine(
            config.storage.database_url,
            sqlite_synchronous=config.storage.sqlite_synchronous,  # type: ignore[arg-type]
        )
    except (SQLAlchemyError, OSError, ValueError) as exc:
        raise ConfigError(f"[storage].database_url: unusable ({exc.__class__.__name__})") from exc
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        create_schema(engine)  # idempotent; serve does it anyway, and it checks existing tables
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        raise ConfigError(
            f"[storage].database_url: cannot connect to the database ({reason})"
        ) from exc
    except SchemaMismatch as exc:
        raise ConfigError(f"[storage].database_url: {exc}") from exc
    finally:
        engine.dispose()
    if config.storage.redis_url:
        client = redis.Redis.from_url(config.storage.redis_url, socket_connect_timeout=3)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise ConfigError(
                f"[storage].redis_url: cannot reach Redis ({exc.__class__.__name__})"
            ) from exc
        finally:
            client.close()


def config_notes(config: Config) -> list[str]:
    """Things that work but that an operator should know (printed by ``check``).

    Raises:
        ConfigError: ``[wecom].agent_id`` is missing although a secret is set (cards need it).
    """
    notes: list[str] = []
    if not config.wecom.secret:
        notes.append(
            "[wecom].secret is empty: alerts go to the local sandbox (/sandbox/), not to WeCom"
        )
    elif not config.wecom.agent_id:
        raise ConfigError("[wecom].agent_id: required with a secret (alert cards are app messages)")
    if not config.alerts.managers:
        try:
            groups = load_rules(config.rules.paths).groups
        except RuleFileError:
            groups = ()
        silent = [g.name for g in groups if not g.recipients]
        if silent:
            notes.append(
                "[alerts].managers is empty: hits of "
                + "、".join(silent[:5])
                + ("…" if len(silent) > 5 else "")
                + " alert no one (set managers, or recipients per group)"
            )
    if config.alerts.escalate_after_s and not config.alerts.escalate_to:
        notes.append("[alerts].escalate_to is empty: unclaimed alerts are not escalated")
    notes.extend(_msgaudit_notes(config))
    return notes


def _msgaudit_notes(config: Config) -> list[str]:
    """The archive's key files and library, checked before the first pull needs them.

    Raises:
        ConfigError: a private key file is missing or unreadable, or the library is missing.
    """
    settings = config.msgaudit
    if not settings.enabled:
        return []
    if settings.sdk_path and not Path(settings.sdk_path).is_file():
        raise ConfigError(f"[msgaudit].sdk_path: {settings.sdk_path} does not exist")
    try:
        keys = KeyRing.from_files(settings.private_keys)
    except WeComError as exc:
        raise ConfigError(f"[msgaudit].private_keys: {exc}") from exc
    if not keys.versions:
        return ["[msgaudit].private_keys is empty: every archived record will wait in quarantine"]
    source = (
        "the vendor library" if settings.sdk_path else f"the fake source {settings.fake_source}"
    )
    versions = ", ".join(str(v) for v in keys.versions)
    return [f"[msgaudit]: pulling from {source}; private keys for publickey_ver {versions}"]
