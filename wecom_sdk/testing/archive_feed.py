"""Writes what WeCom's archive would serve: a fake-source file, its media and our private keys.

:class:`ArchiveFeed` is the other half of :class:`~wecom_sdk.msgaudit.fake.FakeArchiveSource`
(design.md §3 "Fake archive source"), used by the tests, ``bench/`` and the demo. It encrypts
each message as WeCom does: a random ASCII key under RSA PKCS#1 v1.5 with the public key of a
``publickey_ver`` (keys generated here, private halves written as PEM files for
:class:`~wecom_sdk.msgaudit.keyring.KeyRing`), the message JSON under the fake's ``DecryptData``
cipher (:func:`~wecom_sdk.msgaudit.fake.seal_chat_msg`, the one copy of it). A version whose
private key is not written yet makes records nobody can decrypt until :meth:`write_key`, as
after a key rotation whose new key was not configured.

Example::

    feed = ArchiveFeed(tmp_path / "chatdata.jsonl", key_bits=1024)
    feed.add_key(1)
    feed.append([feed.text("zhangsan", ["wmCUST1"], "你好")])
    source = FakeArchiveSource(feed.path)
    keys = KeyRing.from_files(feed.key_paths)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from wecom_sdk.messages.msgaudit import is_external_id
from wecom_sdk.msgaudit.fake import media_dir, media_path, seal_chat_msg
from wecom_sdk.msgaudit.source import ChatDataEntry

__all__ = ["ArchiveFeed", "KeyFormat", "entry_line", "generate_key", "private_pem"]

KeyFormat = Literal["pkcs8", "pkcs1"]
"""PEM private-key formats: PKCS#8 (``BEGIN PRIVATE KEY``), PKCS#1 (``BEGIN RSA PRIVATE KEY``)."""

_FORMATS = {
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
}


def generate_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A fresh RSA private key (exponent 65537); tests may take 1024 bits, WeCom wants 2048."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_pem(key: rsa.RSAPrivateKey, key_format: KeyFormat = "pkcs8") -> bytes:
    """``key`` as an unencrypted PEM file's bytes."""
    return key.private_bytes(
        serialization.Encoding.PEM, _FORMATS[key_format], serialization.NoEncryption()
    )


def entry_line(entry: ChatDataEntry) -> str:
    """One line of a fake-source file: the entry as ``GetChatData``'s JSON (no newline)."""
    return json.dumps(asdict(entry), ensure_ascii=False, separators=(",", ":"))


def _last_seq(path: Path) -> int:
    """The highest seq already in ``path`` (0 when none), so a feed continues a file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    last = 0
    for line in data.splitlines():
        try:
            seq = json.loads(line, strict=False).get("seq")
        except (ValueError, AttributeError):
            continue
        if type(seq) is int:
            last = max(last, seq)
    return last


class ArchiveFeed:
    """Keys by ``publickey_ver`` and a fake-source file that encrypted messages are appended to.

    Thread-safe appends: seq numbers are handed out and lines written under one lock.

    Args:
        path: The fake-source file (created on the first append; an existing one is continued
            after its highest seq).
        key_dir: Where private keys are written (default: ``<path>.keys/``).
        key_bits: Size of generated keys (2048 as WeCom asks; 1024 is fine in tests).
        key_format: PEM format of written keys.
        clock: Unix seconds, for the default ``msgtime`` of built messages.
        random_key: Makes each record's random key (default: 32 URL-safe characters).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        key_dir: str | Path | None = None,
        key_bits: int = 2048,
        key_format: KeyFormat = "pkcs8",
        clock: Callable[[], float] = time.time,
        random_key: Callable[[], str] = lambda: secrets.token_urlsafe(24),
    ) -> None:
        self.path = Path(path)
        self.key_dir = Path(key_dir) if key_dir is not None else Path(f"{path}.keys")
        self.key_bits = key_bits
        self.key_format: KeyFormat = key_format
        self._clock = clock
        self._random_key = random_key
        self._keys: dict[int, rsa.RSAPrivateKey] = {}
        self._written: dict[int, Path] = {}
        self._latest: int | None = None
        self._seq = _last_seq(self.path)
        # Re-entrant: append holds it around record and append_entries, which take it too.
        self._lock = threading.RLock()

    # -- keys --------------------------------------------------------------------------------
    @property
    def versions(self) -> tuple[int, ...]:
        """The versions added, ascending (written or not)."""
        return tuple(sorted(self._keys))

    @property
    def key_paths(self) -> dict[int, Path]:
        """The written private keys by version: ``KeyRing.from_files(feed.key_paths)``."""
        return dict(self._written)

    def key_path(self, version: int) -> Path:
        """Where the private key of ``version`` is (or would be) written."""
        return self.key_dir / f"msgaudit_v{version}.pem"

    def add_key(
        self,
        version: int,
        *,
        key: rsa.RSAPrivateKey | None = None,
        write: bool = True,
        key_format: KeyFormat | None = None,
    ) -> Path:
        """Add a key pair as ``version`` (later records use the latest added) and return the
        path of its private PEM file.

        Args:
            version: The ``publickey_ver``.
            key: Use this private key instead of generating one (tests share one per module:
                generating is the slow part).
            write: False keeps the private key unwritten, so records under this version cannot
                be decrypted until :meth:`write_key` (the returned path does not exist yet).
            key_format: PEM format (default: the feed's).

        Raises:
            ValueError: ``version`` was added already.
        """
        if version in self._keys:
            raise ValueError(f"publickey_ver {version} was added already")
        self._keys[version] = key if key is not None else generate_key(self.key_bits)
        self._latest = version
        if write:
            return self.write_key(version, key_format=key_format)
        return self.key_path(version)

    def write_key(self, version: int, *, key_format: KeyFormat | None = None) -> Path:
        """Write the private key of ``version`` (mode 0600) and return its path."""
        pem = private_pem(self._keys[version], key_format or self.key_format)
        path = self.key_path(version)
        self.key_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        self._written[version] = path
        return path

    def private_key(self, version: int) -> rsa.RSAPrivateKey:
        """The private key of ``version``."""
        return self._keys[version]

    def public_pem(self, version: int) -> bytes:
        """The public key of ``version`` as PEM: what an admin uploads to WeCom's console."""
        return (
            self._keys[version]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    # -- records -----------------------------------------------------------------------------
    def record(
        self,
        msg: Mapping[str, Any] | str,
        *,
        version: int | None = None,
        seq: int | None = None,
        msgid: str | None = None,
    ) -> ChatDataEntry:
        """Encrypt one message as a chatdata entry (not written; see :meth:`append`).

        Args:
            msg: The decrypted message: a mapping (written as JSON), or text as is (to hold
                what ``json.dumps`` would not write, e.g. raw control characters, or no JSON).
            version: The ``publickey_ver`` to encrypt under (default: the latest added).
            seq: The entry's seq (default: the next one). A given seq moves the counter on
                when it is higher.
            msgid: The entry's msgid (default: the message's, "" when it has none).

        Raises:
            ValueError: No key was added, or ``version`` was not.
        """
        version = self._latest if version is None else version
        if version is None or version not in self._keys:
            raise ValueError(f"no key pair of publickey_ver {version}: call add_key first")
        if isinstance(msg, str):
            text = msg
            try:
                decoded = json.loads(text, strict=False)
            except ValueError:  # a test of unreadable plaintext
                decoded = None
            found = decoded.get("msgid") if isinstance(decoded, dict) else None
        else:
            text = json.dumps(msg, ensure_ascii=False)
            found = msg.get("msgid")
        if msgid is None:
            msgid = found if isinstance(found, str) else ""
        random_key = self._random_key()
        encrypted_key = (
            self._keys[version].public_key().encrypt(random_key.encode("ascii"), padding.PKCS1v15())
        )
        with self._lock:
            if seq is None:
                self._seq += 1
                seq = self._seq
            else:
                self._seq = max(self._seq, seq)
        return ChatDataEntry(
            seq=seq,
            msgid=msgid,
            publickey_ver=version,
            encrypt_random_key=base64.b64encode(encrypted_key).decode("ascii"),
            encrypt_chat_msg=seal_chat_msg(random_key, text),
        )

    def append(
        self, messages: Iterable[Mapping[str, Any] | str], *, version: int | None = None
    ) -> list[ChatDataEntry]:
        """Encrypt ``messages`` (see :meth:`record`) and append them to the file, durably.

        Seqs are handed out and written under one lock, so the file stays in seq order when
        several threads append.
        """
        with self._lock:
            entries = [self.record(m, version=version) for m in messages]
            self.append_entries(entries)
        return entries

    def append_entries(self, entries: Iterable[ChatDataEntry]) -> None:
        """Append entries as they are (e.g. altered ones), flushed and fsynced."""
        text = "".join(entry_line(e) + "\n" for e in entries)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())

    # -- media -------------------------------------------------------------------------------
    @property
    def media_dir(self) -> Path:
        """The folder the fake source serves media from (``<path>.media/``)."""
        return media_dir(self.path)

    def add_media(self, sdkfileid: str, data: bytes) -> Path:
        """Store the bytes the fake source serves for ``sdkfileid``; returns the file."""
        target = media_path(self.path, sdkfileid)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    # -- message builders --------------------------------------------------------------------
    def message(
        self,
        msgtype: str,
        from_user: str,
        tolist: Sequence[str],
        body: Mapping[str, Any],
        *,
        roomid: str = "",
        msgid: str | None = None,
        msgtime: int | None = None,
        action: str = "send",
    ) -> dict[str, Any]:
        """A decrypted message as WeCom writes it (wecom-protocol.md §7).

        ``msgtime`` defaults to the clock's now in ms; ``msgid`` to a WeCom-like id, ending in
        ``_external`` when an external contact takes part, as WeCom's do.
        """
        when = int(self._clock() * 1000) if msgtime is None else msgtime
        if msgid is None:
            external = any(is_external_id(u) for u in (from_user, *tolist))
            msgid = f"{secrets.randbits(63)}_{when // 1000}" + ("_external" if external else "")
        return {
            "msgid": msgid,
            "action": action,
            "from": from_user,
            "tolist": list(tolist),
            "roomid": roomid,
            "msgtime": when,
            "msgtype": msgtype,
            msgtype: dict(body),
        }

    def text(
        self, from_user: str, tolist: Sequence[str], content: str, **options: Any
    ) -> dict[str, Any]:
        """A text message (``options``: those of :meth:`message`)."""
        return self.message("text", from_user, tolist, {"content": content}, **options)

    def image(
        self,
        from_user: str,
        tolist: Sequence[str],
        data: bytes,
        *,
        sdkfileid: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """An image message whose bytes the fake source serves (stored by :meth:`add_media`)."""
        fileid = sdkfileid or secrets.token_urlsafe(48)
        self.add_media(fileid, data)
        body = {
            "md5sum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "filesize": len(data),
            "sdkfileid": fileid,
        }
        return self.message("image", from_user, tolist, body, **options)
