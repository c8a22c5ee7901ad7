"""Exceptions raised by wecom_sdk.

Every error is a :class:`WeComError`; the tree::

    WeComError                      errcode: int | None (WeCom sample-lib code when one applies)
    ├── CryptoError                 callback crypto (WXBizMsgCrypt)
    │   ├── SignatureError          -40001  msg_signature mismatch
    │   ├── TimestampError          -40001  timestamp not an integer / outside our window (ours)
    │   ├── InvalidAESKeyError      -40004  EncodingAESKey not 43 chars / not 32 bytes (at init)
    │   ├── ReceiveIdError          -40005  trailing receiveid != corpid / suiteid
    │   ├── EncryptError            -40006  AES encrypt failed
    │   └── DecryptError            -40007  AES decrypt failed; errcode -40010 for bad base64,
    │                                       -40008 for a bad buffer (padding, length field)
    ├── XmlError                    -40002  malformed XML, DTD/entities, wrong root, missing fields
    │                                       (-40011 when *rendering* XML fails)
    ├── KfItemError                 a kf/sync_msg msg_list item is not an object or has a field
    │                               of the wrong JSON type (no WeCom code)
    ├── ArchiveError                10000-10011: the conversation archive (会话内容存档) SDK
    │   ├── ArchiveUnavailable      10001 network, 10003 system: transient, retried with backoff
    │   └── RecordUndecryptable     10006 decrypt failed, 10007 no private key for the version,
    │                               10008 bad encrypt_random_key (and 10002 for a record whose
    │                               decrypted JSON cannot be read): the record is quarantined
    ├── ApiError(errcode, errmsg, path)     a WeCom API call answered errcode != 0
    │   ├── TokenInvalid            40014, 42001: refresh the access_token and retry once
    │   ├── RateLimited             45009, 45033
    │   ├── PermissionDenied        48002, 60011, 60020
    │   └── CredentialError         40001, 40013: wrong secret / corpid; never retried
    └── TransportError              no usable WeCom answer (network, HTTP status, bad JSON)
        └── ServiceUnavailable      network error, timeout or HTTP 5xx: transient, retried

Errors carry data (codes, messages, API paths), never secrets (tokens, keys, message plaintext).
Error codes: https://developer.work.weixin.qq.com/document/path/90968 (crypto) and
https://developer.work.weixin.qq.com/document/path/90313 (global errcodes).
"""

from __future__ import annotations

__all__ = [
    "ARCHIVE_ERRCODES",
    "ApiError",
    "ArchiveError",
    "ArchiveUnavailable",
    "CredentialError",
    "CryptoError",
    "DecryptError",
    "EncryptError",
    "InvalidAESKeyError",
    "KfItemError",
    "PermissionDenied",
    "RateLimited",
    "ReceiveIdError",
    "RecordUndecryptable",
    "ServiceUnavailable",
    "SignatureError",
    "TimestampError",
    "TokenInvalid",
    "TransportError",
    "WeComError",
    "XmlError",
    "api_error",
    "archive_error",
]


class WeComError(Exception):
    """Root of every wecom_sdk error.

    Attributes:
        errcode: WeCom's code for this failure (sample-lib code for crypto/XML, API errcode for
            API errors), or None when WeCom defines none.
        message: Human-readable description; never contains secrets.
    """

    errcode: int | None = None

    def __init__(self, message: str = "", *, errcode: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if errcode is not None:
            self.errcode = errcode

    def __str__(self) -> str:
        if self.errcode is None:
            return self.message
        return f"[{self.errcode}] {self.message}"


class CryptoError(WeComError):
    """Callback signature, timestamp, key or cipher failure."""


class SignatureError(CryptoError):
    """msg_signature does not match sha1(sorted(token, timestamp, nonce, data))."""

    errcode = -40001


class TimestampError(CryptoError):
    """Timestamp is not a decimal integer or lies outside the allowed clock skew.

    WeCom defines no replay window for app callbacks; this is our own check. It reuses -40001
    because to WeCom's libraries a stale or forged timestamp is a signature-level rejection.
    """

    errcode = -40001


class InvalidAESKeyError(CryptoError):
    """EncodingAESKey is not 43 chars of [A-Za-z0-9] decoding to a 32-byte AES key."""

    errcode = -40004


class ReceiveIdError(CryptoError):
    """The decrypted receiveid (corpid / suiteid / "") is not the expected one."""

    errcode = -40005


class EncryptError(CryptoError):
    """Encrypting a reply failed."""

    errcode = -40006


class DecryptError(CryptoError):
    """Decrypting failed: bad base64 (-40010), bad AES input (-40007) or bad buffer (-40008)."""

    errcode = -40007


class XmlError(WeComError):
    """XML is malformed, refused (DTD/entities), has the wrong root or lacks required fields."""

    errcode = -40002


class KfItemError(WeComError):
    """A ``kf/sync_msg`` ``msg_list`` item cannot be modelled.

    Raised when the item is not a JSON object, lacks its ``msgid`` or holds a field of the
    wrong JSON type (e.g. ``send_time`` not an integer, ``text.content`` not a string). The
    message names the field, never its value: values may be customer text.

    Attributes:
        field: Dotted path of the offending field (``"text.content"``), "" for the whole item.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        # Pickling replays __init__ with (message,) and restores ``field`` from __dict__.
        self.field = field


ARCHIVE_ERRCODES: dict[int, str] = {
    10000: "参数错误 (bad parameters)",
    10001: "网络错误 (network error)",
    10002: "数据解析失败 (cannot parse the data)",
    10003: "系统失败 (system failure)",
    10004: "密钥错误导致加密失败 (key error)",
    10005: "fileid 错误 (bad sdkfileid)",
    10006: "解密失败 (decrypt failed)",
    10007: "找不到消息加密版本的私钥 (no private key for this publickey_ver)",
    10008: "解析 encrypt_key 出错 (bad encrypt_random_key)",
    10009: "ip 非法 (IP not allowed)",
    10010: "数据过期 (data expired)",
    10011: "证书错误 (certificate error)",
}
"""The archive SDK's return codes (WeWorkFinanceSdk_C.h)."""


class ArchiveError(WeComError):
    """The conversation archive SDK (or our step around it) failed; ``errcode`` is its 100xx code."""


class ArchiveUnavailable(ArchiveError):
    """Network (10001) or system (10003) failure: a later call may succeed."""


class RecordUndecryptable(ArchiveError):
    """One record cannot be turned into a message: it is quarantined, never dropped.

    10006 (decrypt failed), 10007 (no private key for its ``publickey_ver``), 10008 (bad
    ``encrypt_random_key``), 10002 (the decrypted text is not a message object).
    """


_ARCHIVE_TRANSIENT = frozenset({10001, 10003})
_ARCHIVE_RECORD = frozenset({10002, 10006, 10007, 10008})


def archive_error(errcode: int, detail: str = "") -> ArchiveError:
    """The exception for an archive SDK return code (``detail`` must hold no secret)."""
    text = ARCHIVE_ERRCODES.get(errcode)
    if text is None:
        # The library passes WeCom's own API errcodes through inside GetChatData's answer: a
        # wrong secret is accepted by Init and comes back as 41001/40001/42001 on the first pull.
        text = (
            f"WeCom refused the archive pull (errcode {errcode}): check the corp id, the "
            "archive secret and this server's IP in the archive's allow-list"
            if errcode >= 40000
            else "unknown archive SDK error"
        )
    message = f"{text}: {detail}" if detail else text
    if errcode in _ARCHIVE_TRANSIENT:
        return ArchiveUnavailable(message, errcode=errcode)
    if errcode in _ARCHIVE_RECORD:
        return RecordUndecryptable(message, errcode=errcode)
    return ArchiveError(message, errcode=errcode)


class ApiError(WeComError):
    """A WeCom API call returned a non-zero errcode.

    Attributes:
        errcode: WeCom's errcode (https://developer.work.weixin.qq.com/document/path/90313).
        errmsg: WeCom's errmsg, as returned.
        path: API path called, e.g. ``/cgi-bin/message/send`` (no query: it holds the token).
    """

    errcode: int

    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"{path}: {errmsg}", errcode=errcode)
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path

    def __reduce__(self) -> tuple[type[ApiError], tuple[int, str, str]]:
        # Exception pickling replays __init__ with self.args (only the message); keep all fields.
        return (type(self), (self.errcode, self.errmsg, self.path))


class TokenInvalid(ApiError):
    """The access_token was rejected (40014) or has expired (42001)."""


class RateLimited(ApiError):
    """Call frequency (45009) or concurrency (45033) limit exceeded."""


class PermissionDenied(ApiError):
    """API not allowed for the app (48002), no privilege (60011) or untrusted IP (60020)."""


class CredentialError(ApiError):
    """The corp id (40013) or secret (40001) is wrong: fix the configuration, retrying cannot help."""

    def __init__(self, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(errcode, errmsg, path)
        self.message = f"{path}: {errmsg} (check wecom corp_id / secret; not retried)"


class TransportError(WeComError):
    """The API call got no usable WeCom answer: connection error, timeout, HTTP status, bad JSON.

    Attributes:
        path: API path called (without the query string).
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class ServiceUnavailable(TransportError):
    """Connection error, timeout or HTTP 5xx: WeCom may answer a retry."""


_API_ERRORS: dict[int, type[ApiError]] = {
    40001: CredentialError,
    40013: CredentialError,
    40014: TokenInvalid,
    42001: TokenInvalid,
    45009: RateLimited,
    45033: RateLimited,
    48002: PermissionDenied,
    60011: PermissionDenied,
    60020: PermissionDenied,
}


def api_error(errcode: int, errmsg: str, path: str) -> ApiError:
    """Build the ApiError subclass that matches ``errcode`` (plain ApiError for the rest)."""
    return _API_ERRORS.get(errcode, ApiError)(errcode, errmsg, path)
