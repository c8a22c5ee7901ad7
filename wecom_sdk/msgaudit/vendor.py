"""The archive source on WeCom's vendor library ``libWeWorkFinanceSdk_C.so``, bound with ctypes.

Operator notes:

* **Getting the library.** WeCom ships it in the 会话内容存档 SDK download of the developer docs
  ("下载SDK", https://developer.work.weixin.qq.com/document/path/91774): a tarball with
  ``libWeWorkFinanceSdk_C.so`` and ``WeWorkFinanceSdk_C.h``. We never ship or commit it; put it on
  the host (e.g. ``/opt/wework/libWeWorkFinanceSdk_C.so``) and give its path in the
  ``[msgaudit]`` config. It exists for **Linux x86-64 and arm64 only** (a Windows DLL too, no
  macOS build): on other hosts use the fake source.
* **Credentials.** ``corp_id`` and the archive's own **Secret** (管理工具 → 会话内容存档, not an
  app secret). The secret goes to ``Init`` and is then forgotten: this object does not keep it,
  and no message, log or repr of ours contains it.
* **Proxy.** Without direct egress to ``qyapi.weixin.qq.com``, give ``proxy`` (as the vendor
  sample writes it, e.g. ``socks5://10.0.0.1:8081`` or ``http://proxy:3128``) and
  ``proxy_password`` (``user:password``, or ""); both are passed to every network call.
* **Blocking.** Every call blocks (the library does its network I/O inside, up to ``timeout_s``)
  and the library is not documented as thread-safe: one instance serialises its calls with a
  lock, so a media download holds back the next page on the same instance. Call it from a worker
  thread (``asyncio.to_thread``), never on the event loop; ctypes releases the GIL meanwhile.
* **Failures.** Return codes 10000-10011 raise :func:`wecom_sdk.errors.archive_error`'s classes
  (10001/10003 :class:`~wecom_sdk.errors.ArchiveUnavailable`, retried); a library that cannot be
  loaded raises :class:`VendorLibraryError` at construction, naming the path and what is wrong.

C API: wecom-protocol.md §7 and the vendor header ``WeWorkFinanceSdk_C.h``. Tests drive this module
through a C test double of the same ABI (``tests/support/fake_finance_sdk.c``).
"""

from __future__ import annotations

import ctypes
import os
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from wecom_sdk.errors import ArchiveError, archive_error

from .source import ChatDataEntry, MediaChunk, parse_chat_data

if TYPE_CHECKING:
    from .source import ArchiveSource

__all__ = ["VendorArchiveSource", "VendorLibraryError"]

_PTR = ctypes.c_void_p
_INT = ctypes.c_int
_STR = ctypes.c_char_p

# (restype, argtypes) of every function of WeWorkFinanceSdk_C.h. Pointers are c_void_p, never the
# default int restype (which truncates 64-bit pointers); returned buffers are read with
# string_at(pointer, length), never as c_char_p (media data holds NUL bytes).
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "NewSdk": (_PTR, []),
    "Init": (_INT, [_PTR, _STR, _STR]),
    "GetChatData": (
        _INT,
        [_PTR, ctypes.c_ulonglong, ctypes.c_uint, _STR, _STR, _INT, _PTR],
    ),
    "GetMediaData": (_INT, [_PTR, _STR, _STR, _STR, _STR, _INT, _PTR]),
    "DecryptData": (_INT, [_STR, _STR, _PTR]),
    "DestroySdk": (None, [_PTR]),
    "NewSlice": (_PTR, []),
    "FreeSlice": (None, [_PTR]),
    "GetContentFromSlice": (_PTR, [_PTR]),
    "GetSliceLen": (_INT, [_PTR]),
    "NewMediaData": (_PTR, []),
    "FreeMediaData": (None, [_PTR]),
    "GetOutIndexBuf": (_PTR, [_PTR]),
    "GetData": (_PTR, [_PTR]),
    "GetIndexLen": (_INT, [_PTR]),
    "GetDataLen": (_INT, [_PTR]),
    "IsMediaDataFinish": (_INT, [_PTR]),
}

_MAX_SEQ = 2**64 - 1  # unsigned long long
_MAX_LIMIT_ARG = 2**32 - 1  # unsigned int; the library itself refuses more than 1000
_MAX_TIMEOUT = 2**31 - 1  # int


class VendorLibraryError(ArchiveError):
    """The vendor library cannot be used: no such file, not a shared object for this machine,
    or a function of ``WeWorkFinanceSdk_C.h`` missing. ``errcode`` is None: no SDK code applies,
    and retrying cannot help."""


def _load(sdk_path: str | os.PathLike[str]) -> ctypes.CDLL:
    path = os.fspath(sdk_path)
    # A bare name ("libWeWorkFinanceSdk_C.so") is searched on the loader's path; check only paths.
    if os.sep in path and not os.path.exists(path):
        raise VendorLibraryError(f"archive SDK library {path}: no such file")
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise VendorLibraryError(
            f"archive SDK library {path}: cannot be loaded as a shared library ({exc})"
        ) from None
    missing = []
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            function = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        function.restype = restype
        function.argtypes = argtypes
    if missing:
        raise VendorLibraryError(
            f"archive SDK library {path}: missing function(s) {', '.join(missing)} "
            "(is it libWeWorkFinanceSdk_C.so?)"
        )
    return lib


def _cstr(value: str, what: str, function: str) -> bytes:
    """``value`` as the UTF-8 C string the library takes; a NUL would silently cut it short."""
    if "\0" in value:
        raise archive_error(10000, f"{function}: {what} contains a NUL character")
    return value.encode("utf-8")


def _in_range(value: int, low: int, high: int, what: str, function: str) -> int:
    """``value`` if the C parameter type holds it: ctypes would wrap it silently otherwise."""
    if not isinstance(value, int) or not low <= value <= high:
        raise archive_error(10000, f"{function}: {what} {value!r} is outside {low}..{high}")
    return value


def _read(pointer: int | None, length: int, function: str) -> bytes:
    """``length`` bytes at ``pointer`` (binary-safe)."""
    if length == 0:
        return b""
    if length < 0 or not pointer:
        raise archive_error(10002, f"{function}: the library returned a bad buffer")
    return ctypes.string_at(pointer, length)


class VendorArchiveSource:
    """:class:`~wecom_sdk.msgaudit.source.ArchiveSource` on ``libWeWorkFinanceSdk_C.so``.

    Args:
        sdk_path: The library's file (a bare name is searched on the loader's path).
        corp_id: The corp id (企业ID).
        secret: The archive's Secret (会话内容存档 Secret); used for ``Init`` only, not kept.
        proxy: Proxy for the library's network calls, "" for none.
        proxy_password: The proxy's ``user:password``, "" for none.

    Raises:
        VendorLibraryError: The library is missing, not loadable here or lacks a function.
        ArchiveError: ``NewSdk`` or ``Init`` failed (``Init``'s return code, e.g. 10000).

    Every method blocks and calls are serialised per instance; use it as a context manager or
    call :meth:`close`.
    """

    def __init__(
        self,
        sdk_path: str | os.PathLike[str],
        corp_id: str,
        secret: str,
        *,
        proxy: str = "",
        proxy_password: str = "",
    ) -> None:
        # Set first: error reporters repr() the half-built object in the traceback's frames.
        self._path = os.fspath(sdk_path)
        self._corp_id = corp_id
        self._sdk: int | None = None
        # The secret serves Init only. It leaves this frame's locals before anything can raise,
        # and its bytes leave them however __init__ ends: a traceback's locals (Sentry, rich,
        # pytest --showlocals) never hold it.
        key = secret.encode("utf-8", "surrogatepass")
        del secret
        try:
            self._proxy = _cstr(proxy, "proxy", "VendorArchiveSource")
            self._proxy_password = _cstr(proxy_password, "proxy_password", "VendorArchiveSource")
            corp = _cstr(corp_id, "corp_id", "Init")
            if b"\0" in key:
                raise archive_error(10000, "Init: secret contains a NUL character")
            self._lock = threading.Lock()
            self._lib = _load(self._path)
            sdk = self._lib.NewSdk()
            if not sdk:
                raise archive_error(10003, "NewSdk returned no handle")
            ret = self._lib.Init(sdk, corp, key)
        finally:
            del key
        if ret != 0:
            self._lib.DestroySdk(sdk)
            raise archive_error(ret, "Init (check corp_id and the archive Secret)")
        self._sdk = sdk

    def __repr__(self) -> str:
        state = "closed" if self._sdk is None else "open"
        return f"<VendorArchiveSource {self._path!r} corp_id={self._corp_id!r} {state}>"

    def _handle(self) -> int:
        if self._sdk is None:
            raise ArchiveError("the archive SDK handle is closed")
        return self._sdk

    def get_chat_data(self, seq: int, limit: int, timeout_s: int) -> list[ChatDataEntry]:
        """Entries after ``seq``, at most ``limit`` (1..1000), through ``GetChatData``."""
        _in_range(seq, 0, _MAX_SEQ, "seq", "GetChatData")
        _in_range(limit, 0, _MAX_LIMIT_ARG, "limit", "GetChatData")
        _in_range(timeout_s, 0, _MAX_TIMEOUT, "timeout", "GetChatData")
        with self._lock:
            sdk = self._handle()
            lib = self._lib
            chat_slice = lib.NewSlice()
            if not chat_slice:
                raise archive_error(10003, "NewSlice returned no slice")
            try:
                ret = lib.GetChatData(
                    sdk,
                    seq,
                    limit,
                    self._proxy,
                    self._proxy_password,
                    timeout_s,
                    chat_slice,
                )
                if ret != 0:
                    raise archive_error(ret, "GetChatData")
                answer = _read(
                    lib.GetContentFromSlice(chat_slice), lib.GetSliceLen(chat_slice), "GetChatData"
                )
            finally:
                lib.FreeSlice(chat_slice)
        return parse_chat_data(answer)

    def decrypt_data(self, random_key: str, encrypt_chat_msg: str) -> str:
        """The message JSON of an entry, through ``DecryptData``.

        The plaintext must be UTF-8; otherwise 10002 (:class:`~wecom_sdk.errors.RecordUndecryptable`).
        """
        key = _cstr(random_key, "encrypt_key", "DecryptData")
        msg = _cstr(encrypt_chat_msg, "encrypt_msg", "DecryptData")
        with self._lock:
            self._handle()
            lib = self._lib
            msg_slice = lib.NewSlice()
            if not msg_slice:
                raise archive_error(10003, "NewSlice returned no slice")
            try:
                ret = lib.DecryptData(key, msg, msg_slice)
                if ret != 0:
                    raise archive_error(ret, "DecryptData")
                plain = _read(
                    lib.GetContentFromSlice(msg_slice), lib.GetSliceLen(msg_slice), "DecryptData"
                )
            finally:
                lib.FreeSlice(msg_slice)
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise archive_error(10002, "DecryptData: the plaintext is not UTF-8") from None

    def get_media_data(self, sdkfileid: str, index: str, timeout_s: int) -> MediaChunk:
        """The next chunk of a media file, through ``GetMediaData``.

        ``index`` is opaque to us: "" first, then the previous ``next_index`` (kept byte for byte
        through latin-1, whatever the library puts in it).
        """
        fileid = _cstr(sdkfileid, "sdkfileid", "GetMediaData")
        if "\0" in index:
            raise archive_error(10000, "GetMediaData: indexbuf contains a NUL character")
        try:
            indexbuf = index.encode("latin-1")
        except UnicodeEncodeError:
            raise archive_error(10000, "GetMediaData: indexbuf is not a returned index") from None
        _in_range(timeout_s, 0, _MAX_TIMEOUT, "timeout", "GetMediaData")
        with self._lock:
            sdk = self._handle()
            lib = self._lib
            media = lib.NewMediaData()
            if not media:
                raise archive_error(10003, "NewMediaData returned no buffer")
            try:
                ret = lib.GetMediaData(
                    sdk,
                    indexbuf,
                    fileid,
                    self._proxy,
                    self._proxy_password,
                    timeout_s,
                    media,
                )
                if ret != 0:
                    raise archive_error(ret, "GetMediaData")
                data = _read(lib.GetData(media), lib.GetDataLen(media), "GetMediaData")
                next_index = _read(
                    lib.GetOutIndexBuf(media), lib.GetIndexLen(media), "GetMediaData"
                )
                is_finish = lib.IsMediaDataFinish(media) != 0
            finally:
                lib.FreeMediaData(media)
        return MediaChunk(data=data, next_index=next_index.decode("latin-1"), is_finish=is_finish)

    def close(self) -> None:
        """``DestroySdk`` the handle (idempotent); later calls raise :class:`ArchiveError`."""
        with self._lock:
            sdk, self._sdk = self._sdk, None
            if sdk is not None:
                self._lib.DestroySdk(sdk)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if TYPE_CHECKING:
    _conforms: type[ArchiveSource] = VendorArchiveSource  # mypy checks the Protocol here
