"""Where the tests find the repository and their data, written once."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
"""The repository root (config.example.toml, run_bot.py, rules/samples)."""
DATA = REPO / "tests" / "data"
"""Test data: rule files (``rules/``), the labelled corpus (``corpus/``), WeCom samples."""
