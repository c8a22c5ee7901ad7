"""``[review]``'s session and lockout keys: defaults, validation, and the settings they make."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, ReviewConfig
from bot.web.resources import review_settings
from tests.support.app import make_config


def test_defaults_map_to_review_settings(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path, sqlite_url, extra='[alerts]\nmanagers = ["boss"]\n')
    settings = review_settings(config)
    assert settings.path == "/review"
    assert settings.idle_timeout_s == 30 * 60
    assert settings.secure_cookie == "auto"
    assert (settings.lockout_failures, settings.lockout_window_s) == (5, 15 * 60)
    assert settings.escalate_to == ("boss",)


def test_configured_values(tmp_path: Path, sqlite_url: str) -> None:
    extra = (
        '[review]\npath = "/audit"\nidle_timeout_min = 10\nsecure_cookie = "always"\n'
        'lockout_failures = 3\nlockout_minutes = 60\n[alerts]\nmanagers = ["boss"]\n'
        'escalate_to = ["legal"]\n'
    )
    settings = review_settings(make_config(tmp_path, sqlite_url, extra=extra))
    assert (settings.path, settings.idle_timeout_s, settings.secure_cookie) == (
        "/audit",
        600,
        "always",
    )
    assert (settings.lockout_failures, settings.lockout_window_s) == (3, 3600)
    assert settings.escalate_to == ("legal",)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secure_cookie": "sometimes"}, "[review].secure_cookie"),
        ({"idle_timeout_min": 0}, "[review].idle_timeout_min"),
        ({"lockout_failures": 0}, "[review].lockout_failures"),
        ({"lockout_minutes": 0}, "[review].lockout_minutes"),
        ({"path": "/"}, "[review].path"),
        ({"path": "/review/"}, "[review].path"),
    ],
)
def test_invalid_values(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ReviewConfig(**values)


def test_example_config_documents_the_keys() -> None:
    text = (Path(__file__).resolve().parents[3] / "config.example.toml").read_text(encoding="utf-8")
    section = text.split("[review]", 1)[1].split("\n[", 1)[0]
    for key in ("idle_timeout_min", "secure_cookie", "lockout_failures", "lockout_minutes"):
        assert f"\n{key} = " in section


def test_media_dir_comes_from_msgaudit(tmp_path: Path, sqlite_url: str) -> None:
    config = make_config(tmp_path, sqlite_url, extra='[msgaudit]\nmedia_dir = "store/media"\n')
    assert review_settings(config).media_dir == config.msgaudit.media_dir
    assert Path(review_settings(config).media_dir).is_absolute()
