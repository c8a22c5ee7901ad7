"""``[archive].retention_days``: 0 (keep forever) by default, validated at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from tests.support.app import write_config


def load(tmp_path: Path, extra: str) -> object:
    return load_config(write_config(tmp_path, "sqlite:///x.db", extra=extra), {})


def test_retention_defaults_to_forever_and_takes_days(tmp_path: Path) -> None:
    assert load(tmp_path, "").archive.retention_days == 0  # type: ignore[attr-defined]
    config = load(tmp_path, "[archive]\nretention_days = 365\n")
    assert config.archive.retention_days == 365  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["-1", "36501", '"30"', "30.5", "true"])
def test_a_bad_retention_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"\[archive\]\.retention_days"):
        load(tmp_path, f"[archive]\nretention_days = {value}\n")
