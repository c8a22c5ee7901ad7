"""Fixtures of the archive SDK tests: RSA keys made once per session (generating is the slow
part), and a feed writing a fake-source file under the test's tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from wecom_sdk.testing.archive_feed import ArchiveFeed, generate_key


@pytest.fixture(scope="session")
def rsa_keys() -> dict[int, rsa.RSAPrivateKey]:
    """Three 1024-bit keys by version: enough for tests, quick to make."""
    return {version: generate_key(1024) for version in (1, 2, 3)}


@pytest.fixture
def feed(tmp_path: Path, rsa_keys: dict[int, rsa.RSAPrivateKey]) -> ArchiveFeed:
    """A feed of ``tmp_path/chatdata.jsonl`` with key version 1 written."""
    feed = ArchiveFeed(tmp_path / "chatdata.jsonl", clock=lambda: 1_700_000_000.0)
    feed.add_key(1, key=rsa_keys[1])
    return feed
