"""The conversation archive in tests: one RSA key per session, a fake-source feed, the config.

Generating RSA keys is the slow part of these tests, so one 1024-bit key pair per version is made
once per process and shared by every feed (WeCom asks for 2048 bits; the size does not change the
code path).
"""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from wecom_sdk.testing.archive_feed import ArchiveFeed, generate_key

__all__ = ["CUSTOMER", "STAFF", "make_feed", "msgaudit_toml", "shared_key"]

STAFF = "zhangsan"
CUSTOMER = "wmCUST0001"


@functools.cache
def shared_key(version: int) -> rsa.RSAPrivateKey:
    """The private key of ``version``, the same for the whole test process."""
    return generate_key(1024)


def make_feed(folder: Path, *versions: int, write: bool = True) -> ArchiveFeed:
    """A feed writing ``folder/chatdata.jsonl`` with the shared keys of ``versions`` (default 1)."""
    feed = ArchiveFeed(folder / "chatdata.jsonl", key_dir=folder / "keys", key_bits=1024)
    for version in versions or (1,):
        feed.add_key(version, key=shared_key(version), write=write)
    feed.path.parent.mkdir(parents=True, exist_ok=True)
    feed.path.touch()  # WeCom answers an empty archive with an empty page, not an error
    return feed


def msgaudit_toml(
    feed: ArchiveFeed,
    *,
    versions: tuple[int, ...] | None = None,
    page_limit: int = 1000,
    poll_interval_s: float = 3600,
    extra: str = "",
) -> str:
    """The ``[msgaudit]`` section reading ``feed`` with the private keys of ``versions`` (default:
    every version the feed wrote)."""
    chosen = versions if versions is not None else tuple(feed.key_paths)
    keys = ", ".join(f'"{v}" = "{feed.key_path(v)}"' for v in chosen)
    return (
        "[msgaudit]\n"
        "enabled = true\n"
        f'fake_source = "{feed.path}"\n'
        f"private_keys = {{ {keys} }}\n"
        f"page_limit = {page_limit}\n"
        f"poll_interval_s = {poll_interval_s}\n"
        f'media_dir = "{feed.path.parent / "media"}"\n'
        f"{extra}"
    )
