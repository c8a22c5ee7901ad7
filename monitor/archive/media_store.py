"""Media files of the conversation archive, stored by content: ``<root>/ab/cd/<sha256>``.

A download streams into a :class:`MediaSink`: a temporary file under ``<root>/tmp`` whose md5 and
sha256 are computed as the bytes arrive. :meth:`MediaSink.commit` fsyncs it and renames it to its
content address (the same filesystem, so the rename is atomic), then fsyncs the folder: a file
under its final name is always whole. Content that is already stored is not stored twice (the
temporary file is dropped), and two writers of the same content at once are harmless: both
rename identical bytes to the same name. A crash leaves at most a stray file in ``tmp``
(:meth:`MediaStore.sweep_tmp`).

Names are checked strictly (64 lowercase hex digits) before any path is built, so no name can
reach outside the root. All I/O here blocks: call it from a thread in async code.
:func:`sniff_mime` is pure: the type of stored bytes, from their first bytes or the file name.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self

__all__ = [
    "INLINE_IMAGE_TYPES",
    "InvalidMediaName",
    "MediaSink",
    "MediaStore",
    "MediaUsage",
    "StoredMedia",
    "extension_for",
    "is_sha256",
    "sniff_mime",
]

INLINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""Image types a browser may show inline (never SVG: it can carry script)."""

SNIFF_BYTES = 16
"""How many leading bytes :func:`sniff_mime` looks at."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP = "tmp"

# (offset, magic, type): the formats WeCom's archive carries (images, emotions, voice, video).
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"#!AMR", "audio/amr"),
    (0, b"#!SILK", "audio/silk"),
    # WeChat's voice: SILK v3 behind one extra byte (0x02).
    (1, b"#!SILK", "audio/silk"),
)
# ISO media (``....ftyp<brand>``): mp4 unless the brand says HEIF or QuickTime.
_FTYP_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heif",
    b"qt  ": "video/quicktime",
}


# The extensions of the sniffed types (``mimetypes`` does not know all of them on every system).
_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "audio/amr": ".amr",
    "audio/silk": ".silk",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
}


class InvalidMediaName(ValueError):
    """A media name that is not a sha256 hex digest (64 lowercase hex digits)."""


def is_sha256(name: str) -> bool:
    """Whether ``name`` is a sha256 hex digest as the store names files."""
    return _SHA256.fullmatch(name) is not None


def sniff_mime(head: bytes, filename: str = "") -> str:
    """The type of a file from its first bytes (jpeg, png, gif, webp, amr, silk, mp4), else from
    its name's extension, else ``application/octet-stream``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], "video/mp4")
    for offset, magic, mime in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return mime
    guessed, _encoding = mimetypes.guess_type(filename, strict=False) if filename else (None, None)
    return guessed or "application/octet-stream"


def extension_for(mime: str) -> str:
    """A file name extension for ``mime`` (``.jpg``, ``.amr``, ...; "" when none is known)."""
    if not mime:
        return ""
    return _EXTENSIONS.get(mime) or mimetypes.guess_extension(mime, strict=False) or ""


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """A committed file: its content address, md5, size, and whether this put created it."""

    sha256: str
    md5: str
    size: int
    created: bool
    """False when the same content was already stored (nothing was written)."""


@dataclass(frozen=True, slots=True)
class MediaUsage:
    """What the store holds: stored files and their bytes (temporary files not counted)."""

    files: int
    bytes: int


class MediaSink:
    """One file being written into the store (see the module docstring); from :meth:`MediaStore.sink`.

    ``write`` the bytes in order, then ``commit``; ``abort`` (or leaving a ``with`` block
    without committing) removes the temporary file. Not thread-safe: one writer at a time.
    """

    def __init__(self, store: MediaStore) -> None:
        self._store = store
        tmp = store.root / _TMP
        tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=tmp, prefix="part-")
        self._path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._size = 0
        self._head = b""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def head(self) -> bytes:
        """The first bytes written (up to :data:`SNIFF_BYTES`), for :func:`sniff_mime`."""
        return self._head

    @property
    def md5(self) -> str:
        """md5 hex of the bytes written so far."""
        return self._md5.hexdigest()

    def write(self, data: bytes) -> None:
        """Append ``data`` (hashes and size follow)."""
        if self._file is None:
            raise ValueError("the media sink is closed")
        self._file.write(data)
        self._md5.update(data)
        self._sha256.update(data)
        self._size += len(data)
        if len(self._head) < SNIFF_BYTES:
            self._head = (self._head + data[:SNIFF_BYTES])[:SNIFF_BYTES]

    def commit(self) -> StoredMedia:
        """Make the bytes durable under their sha256 (see the module docstring)."""
        file = self._file
        if file is None:
            raise ValueError("the media sink is closed")
        sha256 = self._sha256.hexdigest()
        try:
            file.flush()
            os.fsync(file.fileno())
        finally:
            file.close()
            self._file = None
        final = self._store.path(sha256)
        created = not final.exists()
        if created:
            _make_dirs(final.parent, self._store.root)
            os.replace(self._path, final)
            _fsync_dir(final.parent)
        else:
            self._path.unlink(missing_ok=True)
        return StoredMedia(sha256=sha256, md5=self.md5, size=self._size, created=created)

    def abort(self) -> None:
        """Drop the temporary file (idempotent; after :meth:`commit` it does nothing)."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self._path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class MediaStore:
    """The content-addressed file store under ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    @property
    def root(self) -> Path:
        return self._root

    def path(self, sha256: str) -> Path:
        """Where the content ``sha256`` is (or would be) stored.

        Raises:
            InvalidMediaName: ``sha256`` is not 64 lowercase hex digits.
        """
        if not is_sha256(sha256):
            raise InvalidMediaName("a media name is 64 lowercase hex digits")
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether the content is stored (InvalidMediaName for a bad name)."""
        return self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """The stored file, open for reading (FileNotFoundError when absent)."""
        return self.path(sha256).open("rb")

    def sink(self) -> MediaSink:
        """A new file to stream bytes into (a temporary file under ``<root>/tmp``)."""
        return MediaSink(self)

    def put(self, chunks: Iterable[bytes]) -> StoredMedia:
        """Store the concatenation of ``chunks`` (see :class:`MediaSink`)."""
        with self.sink() as sink:
            for chunk in chunks:
                sink.write(chunk)
            return sink.commit()

    def put_file(self, source: Path, *, chunk_bytes: int = 1 << 20) -> StoredMedia:
        """Store a copy of the file at ``source``."""
        with source.open("rb") as file:
            return self.put(iter(lambda: file.read(chunk_bytes), b""))

    def usage(self) -> MediaUsage:
        """Count the stored files and their bytes (walks the store: for status pages and CLIs)."""
        files = size = 0
        if not self._root.is_dir():
            return MediaUsage(0, 0)
        for first in self._root.iterdir():
            if first.name == _TMP or not first.is_dir():
                continue
            for path in first.glob("*/*"):
                if is_sha256(path.name) and path.is_file():
                    files += 1
                    size += path.stat().st_size
        return MediaUsage(files, size)

    def sweep_tmp(self, older_than_s: float = 24 * 3600) -> int:
        """Remove temporary files older than ``older_than_s`` (left by a crash); returns how many.

        A download in progress keeps writing its file, so a day-old one is abandoned.
        """
        tmp = self._root / _TMP
        if not tmp.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in tmp.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # another worker swept it
                continue
        return removed


def _make_dirs(folder: Path, root: Path) -> None:
    """Create ``folder`` (inside ``root``) and fsync each parent that gained an entry."""
    missing = []
    at = folder
    while not at.exists() and at != root:
        missing.append(at)
        at = at.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
