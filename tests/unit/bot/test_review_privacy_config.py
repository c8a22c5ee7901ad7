"""``[review]``'s sampling and pseudonym keys: defaults, validation, the env override, the example
and production profiles, and the settings they make."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, ReviewConfig, load_config
from bot.web.resources import review_settings
from tests.support.app import make_config
from tests.support.paths import REPO

ENV = {
    "WECOM_CORP_ID": "wx5823bf96d3bd56c7",
    "WECOM_TOKEN": "QDG6eK",
    "WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "WECOM_AGENT_ID": "1000002",
    "DATABASE_URL": "postgresql://sentinel@127.0.0.1:5432/sentinel",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def test_defaults_are_off() -> None:
    config = ReviewConfig()
    assert (config.sample_rate, config.pseudonymise, config.pseudonym_key) == (0.0, False, "")
    assert config.reveal_minutes == 240


def test_values_reach_the_review_settings(tmp_path: Path, sqlite_url: str) -> None:
    extra = (
        "[review]\nsample_rate = 0.05\npseudonymise = true\nreveal_minutes = 30\n"
        f'pseudonym_key = "{"k" * 32}"\n'
    )
    settings = review_settings(make_config(tmp_path, sqlite_url, extra=extra))
    assert (settings.sample_rate, settings.pseudonymise) == (0.05, True)
    assert (settings.pseudonym_key, settings.reveal_minutes) == ("k" * 32, 30)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"sample_rate": -0.01}, "[review].sample_rate"),
        ({"sample_rate": 1.5}, "[review].sample_rate"),
        ({"pseudonymise": "yes"}, "[review].pseudonymise"),
        ({"pseudonym_key": "short"}, "[review].pseudonym_key"),
        ({"reveal_minutes": 0}, "[review].reveal_minutes"),
    ],
)
def test_invalid_values(values: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        ReviewConfig(**values)  # type: ignore[arg-type]


def test_a_rate_of_text_is_refused(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="sample_rate"):
        make_config(tmp_path, sqlite_url, extra='[review]\nsample_rate = "2%"\n')


def test_the_key_comes_from_the_environment(tmp_path: Path) -> None:
    key = "an-environment-key-of-32-characters"
    config = load_config(REPO / "config.example.toml", {"REVIEW_PSEUDONYM_KEY": key})
    assert config.review.pseudonym_key == key


def test_the_example_keeps_customer_ids_and_samples() -> None:
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    section = text.split("[review]", 1)[1].split("\n[", 1)[0]
    for key in ("sample_rate", "pseudonymise", "pseudonym_key", "reveal_minutes"):
        assert f"\n{key} = " in section
    review = load_config(REPO / "config.example.toml", {}).review
    assert review.pseudonymise is False and review.sample_rate == 0.02


def test_the_production_profile_pseudonymises() -> None:
    config = load_config(REPO / "docs" / "deploy" / "config.production.toml", ENV)
    assert config.review.pseudonymise is True
    assert config.review.sample_rate > 0
    assert config.sandbox.enabled is False
    env_example = (REPO / "docs" / "deploy" / "env.example").read_text(encoding="utf-8")
    assert "\nREVIEW_PSEUDONYM_KEY=" in env_example
