"""The file-fed stand-in for WeCom's archive SDK (design.md §3 "Fake archive source").

Used when ``[msgaudit] sdk_path`` is empty and ``fake_source`` names a file: by the tests, the
sandbox and the demo. Each line of the file is one ``chatdata`` entry exactly as ``GetChatData``
returns it. A pull answers the entries whose ``seq`` is above the cursor, up to ``limit``, in
file order, reading the file afresh on every call (a test may append), and goes through the real
answer parser (:func:`~wecom_sdk.msgaudit.source.parse_chat_data`).

Only ``DecryptData``'s cipher is ours (the vendor's is closed): AES-256-CBC, key
``sha256(random_key)``, IV its first 16 bytes, PKCS#7 to 16-byte blocks, base64
(:func:`seal_chat_msg` / :func:`open_chat_msg`, shared with the writer of such files,
:class:`wecom_sdk.testing.archive_feed.ArchiveFeed`). The RSA step around it is the real one, so
key versions, rotation and quarantine behave in tests as they do against WeCom.

Media live beside the file, in ``<fake_source>.media/``, one file per ``sdkfileid`` named by
:func:`media_path`, and are served in :data:`~wecom_sdk.msgaudit.source.MEDIA_CHUNK_BYTES`
chunks whose ``next_index`` is the decimal byte offset.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import os
import re
import threading
from collections import deque
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from wecom_sdk.errors import ArchiveError, archive_error

from .source import MAX_LIMIT, MEDIA_CHUNK_BYTES, ChatDataEntry, MediaChunk, parse_chat_data

__all__ = [
    "SOURCE_METHODS",
    "FakeArchiveSource",
    "SourceCall",
    "media_dir",
    "media_path",
    "open_chat_msg",
    "seal_chat_msg",
]

SOURCE_METHODS = frozenset({"get_chat_data", "decrypt_data", "get_media_data", "close"})
"""The :class:`~wecom_sdk.msgaudit.source.ArchiveSource` methods a test can script."""

_OFFSET = re.compile(r"[0-9]{1,19}")


def _aes(random_key: str) -> Cipher[modes.CBC]:
    key = hashlib.sha256(random_key.encode("utf-8")).digest()
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def seal_chat_msg(random_key: str, message_json: str) -> str:
    """``encrypt_chat_msg`` for ``message_json`` under ``random_key`` (the fake's cipher)."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(message_json.encode("utf-8")) + padder.finalize()
    encryptor = _aes(random_key).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def open_chat_msg(random_key: str, encrypt_chat_msg: str) -> str:
    """The message JSON of ``encrypt_chat_msg`` (inverse of :func:`seal_chat_msg`).

    Raises:
        ValueError: Not base64, not whole AES blocks, bad PKCS#7 padding, or not UTF-8.
    """
    ciphertext = base64.b64decode(encrypt_chat_msg, validate=True)
    decryptor = _aes(random_key).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")


def media_dir(source: str | Path) -> Path:
    """The folder of a fake source's media: the file's path plus ``.media``."""
    return Path(f"{source}.media")


def media_path(source: str | Path, sdkfileid: str) -> Path:
    """Where a fake source keeps the media of ``sdkfileid`` (named by its sha256: an sdkfileid
    is long and holds characters no file name should)."""
    return media_dir(source) / hashlib.sha256(sdkfileid.encode("utf-8")).hexdigest()


class SourceCall(NamedTuple):
    """One call a :class:`FakeArchiveSource` received; ``args`` never hold key material."""

    method: str
    args: tuple[Any, ...]


class FakeArchiveSource:
    """An :class:`~wecom_sdk.msgaudit.source.ArchiveSource` reading a file of chatdata lines.

    Thread-safe: the puller calls it from a worker thread while a test reads :attr:`calls` or
    scripts failures with :meth:`fail_next`.

    Args:
        path: The file of chatdata entries, one JSON object a line. It may not exist yet: a pull
            then fails as a network error would (10001), so the puller retries.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._calls: list[SourceCall] = []
        self._failures: dict[str, deque[int]] = {}
        self._index = _LineIndex()

    @property
    def media_dir(self) -> Path:
        """The folder of this source's media files (see :func:`media_path`)."""
        return media_dir(self.path)

    @property
    def calls(self) -> list[SourceCall]:
        """Every call received, in order, failed ones (scripted or not) included; a copy.

        ``decrypt_data`` is recorded without arguments: they are the record's key and text.
        """
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SourceCall]:
        """:attr:`calls` of one method."""
        return [c for c in self.calls if c.method == method]

    def fail_next(self, method: str, errcode: int, times: int = 1) -> None:
        """Fail the next ``times`` calls of ``method`` with the SDK's ``errcode``.

        The failure comes before any other check, as the vendor library fails before answering
        (10001 network and 10003 system are the transient ones; see
        :func:`wecom_sdk.errors.archive_error`).

        Raises:
            ValueError: ``method`` is not an ArchiveSource method, or ``times`` is negative.
        """
        if method not in SOURCE_METHODS:
            raise ValueError(f"not an ArchiveSource method: {method!r}")
        if times < 0:
            raise ValueError("times must be >= 0")
        with self._lock:
            self._failures.setdefault(method, deque()).extend([errcode] * times)

    def _enter(self, method: str, *args: Any) -> None:
        """Record a call and raise its scripted failure, if one is queued."""
        with self._lock:
            self._calls.append(SourceCall(method, args))
            queued = self._failures.get(method)
            errcode = queued.popleft() if queued else None
        if errcode is not None:
            raise archive_error(errcode, f"{method} (scripted)")

    # -- the ArchiveSource calls -------------------------------------------------------------
    def get_chat_data(self, seq: int, limit: int, timeout_s: int) -> list[ChatDataEntry]:
        """The entries after ``seq``, at most ``limit``, in file order.

        A last line without its newline is taken when it is a whole JSON object and skipped
        when not (it is still being written); blank lines are skipped.

        Raises:
            ArchiveUnavailable: 10001 when the file is missing, 10003 when it cannot be read.
            ArchiveError: 10000 for a ``limit`` outside 1..1000 or a negative ``seq``.
            RecordUndecryptable: 10002 for a whole line that is not a JSON object with an
                integer ``seq`` (a broken fake file is loud, as a broken answer would be).
        """
        self._enter("get_chat_data", seq, limit, timeout_s)
        if type(limit) is not int or not 1 <= limit <= MAX_LIMIT:
            raise archive_error(10000, f"limit must be 1..{MAX_LIMIT}")
        if type(seq) is not int or seq < 0:
            raise archive_error(10000, "seq must be a non-negative integer")
        try:
            with self.path.open("rb") as file:
                return self._answer(file, seq, limit)
        except FileNotFoundError:
            raise archive_error(10001, "fake source file missing") from None
        except OSError as exc:
            raise archive_error(10003, f"fake source file unreadable: {exc.strerror}") from None

    def _answer(self, file: BinaryIO, seq: int, limit: int) -> list[ChatDataEntry]:
        """The answer from the file as it is now: its complete lines through the index (only
        what was appended since the last call is read), then a trailing line without newline."""
        with self._lock:
            index = self._index.refresh(file)
            spans = index.after(seq, limit)
        picked = []
        for start, end in spans:
            file.seek(start)
            picked.append(file.read(end - start).strip().decode("utf-8"))
        if len(picked) < limit:
            file.seek(index.end)
            tail = file.read()
            if tail.strip():
                try:
                    entry = _entry_line(tail, index.lines + 1)
                except ArchiveError:
                    entry = None  # still being written
                if entry is not None and entry[0] > seq:
                    picked.append(entry[1])
        answer = '{"errcode":0,"errmsg":"ok","chatdata":[' + ",".join(picked) + "]}"
        return parse_chat_data(answer)

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        """The message JSON of an entry (the fake's cipher, :func:`open_chat_msg`).

        Raises:
            RecordUndecryptable: 10006 when the key does not open the text.
        """
        self._enter("decrypt_data")
        try:
            return open_chat_msg(random_key, encrypt_chat_msg)
        except ValueError:
            raise archive_error(10006, "encrypt_chat_msg does not decrypt") from None

    def get_media_data(self, sdkfileid: str, index: str, timeout_s: int) -> MediaChunk:
        """The chunk of ``sdkfileid`` at ``index`` ("" first, then the previous ``next_index``).

        Raises:
            ArchiveError: 10005 for an sdkfileid without a media file, 10000 for an index that
                is not "" or a decimal offset inside the file.
            ArchiveUnavailable: 10003 when the media file cannot be read.
        """
        self._enter("get_media_data", sdkfileid, index, timeout_s)
        path = media_path(self.path, sdkfileid)
        try:
            with path.open("rb") as media:
                size = media.seek(0, 2)
                if index == "":
                    offset = 0
                elif _OFFSET.fullmatch(index) and int(index) <= size:
                    offset = int(index)
                else:
                    raise archive_error(10000, "index is not an offset of this file")
                media.seek(offset)
                data = media.read(MEDIA_CHUNK_BYTES)
        except (FileNotFoundError, IsADirectoryError):
            raise archive_error(10005, "unknown sdkfileid") from None
        except OSError as exc:
            raise archive_error(10003, f"media file unreadable: {exc.strerror}") from None
        end = offset + len(data)
        return MediaChunk(data=data, next_index=str(end), is_finish=end >= size)

    def close(self) -> None:
        """Nothing to release (recorded, so a test can check the puller closes its source)."""
        self._enter("close")


class _LineIndex:
    """``(seq, start, end)`` of each complete line of the file, read once.

    A pull reads only the bytes appended since the previous one, so a file of a day's 500,000
    entries is not parsed again on every page. The index starts over when the file is not the
    one indexed: another inode, shorter than indexed, or a last indexed line that changed
    (a test rewrote it).
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self.identity = identity
        self.seqs: list[int] = []
        self.spans: list[tuple[int, int]] = []
        self.end = 0
        self.lines = 0
        self.ordered = True
        self.last_line = b""

    def refresh(self, file: BinaryIO) -> _LineIndex:
        stat = os.fstat(file.fileno())
        identity = (stat.st_dev, stat.st_ino)
        if identity != self.identity or stat.st_size < self.end or not self._last_line_holds(file):
            self._reset(identity)
        file.seek(self.end)
        data = file.read()
        complete = data.rfind(b"\n") + 1
        position = self.end
        for line in data[:complete].split(b"\n")[:-1]:
            self.lines += 1
            start, position = position, position + len(line) + 1
            try:
                entry = _entry_line(line, self.lines)
            except ArchiveError:
                self._reset(None)  # read it all again next time (a test may repair the line)
                raise
            if entry is None:
                continue
            if self.seqs and entry[0] < self.seqs[-1]:
                self.ordered = False
            self.seqs.append(entry[0])
            self.spans.append((start, position - 1))
            self.last_line = line
        self.end += complete
        return self

    def _last_line_holds(self, file: BinaryIO) -> bool:
        if not self.spans:
            return True
        start, end = self.spans[-1]
        file.seek(start)
        return file.read(end - start) == self.last_line

    def after(self, seq: int, limit: int) -> list[tuple[int, int]]:
        """Spans of the first ``limit`` lines, in file order, whose seq is above ``seq``."""
        if self.ordered:
            first = bisect.bisect_right(self.seqs, seq)
            return self.spans[first : first + limit]
        return [span for s, span in zip(self.seqs, self.spans, strict=True) if s > seq][:limit]


def _entry_line(line: bytes, number: int) -> tuple[int, str] | None:
    """``(seq, JSON text)`` of one line, None for a blank line.

    Raises:
        RecordUndecryptable: 10002 when the line is not an object with an integer ``seq``.
    """
    text = line.strip()
    if not text:
        return None
    try:
        decoded = text.decode("utf-8")
        entry = json.loads(decoded, strict=False)
    except ValueError:
        raise archive_error(10002, f"fake source line {number} is not JSON") from None
    seq = entry.get("seq") if isinstance(entry, dict) else None
    if type(seq) is not int:
        raise archive_error(10002, f"fake source line {number} has no integer seq")
    return seq, decoded
