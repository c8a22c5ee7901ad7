"""WeCom callback crypto (WXBizMsgCrypt): signature, timestamp window, AES-256-CBC.

Pure and deterministic when ``random_bytes`` and ``clock`` are injected; no I/O.
Scheme: https://developer.work.weixin.qq.com/document/path/90968 (加解密方案说明).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

from .errors import (
    DecryptError,
    EncryptError,
    InvalidAESKeyError,
    ReceiveIdError,
    SignatureError,
    TimestampError,
    XmlError,
)
from .xmlsafe import envelope_fields, render_xml

__all__ = ["MsgCrypto", "SealedMessage"]

_KEY_RE = re.compile(r"[A-Za-z0-9]{43}")
# Canonical decimal seconds: no sign, no leading zero, no Unicode digits; 16 digits is far beyond
# any real clock and keeps int() cheap.
_TIMESTAMP_RE = re.compile(r"0|[1-9][0-9]{0,15}")
_BLOCK = 32  # WeCom pads PKCS#7 to 32 bytes, not to the AES block size of 16
_RANDOM_LEN = 16
_HEADER_LEN = _RANDOM_LEN + 4  # random prefix + big-endian message length
_NONCE_DIGITS = 10


@dataclass(frozen=True, slots=True)
class SealedMessage:
    """An encrypted, signed message: a passive reply or a simulated WeCom callback.

    Attributes:
        encrypt: Base64 ciphertext.
        signature: sha1 over token, timestamp, nonce and ``encrypt``.
        timestamp: Unix seconds, canonical decimal string.
        nonce: The nonce that was signed.
    """

    encrypt: str
    signature: str
    timestamp: str
    nonce: str

    def __post_init__(self) -> None:
        if not _TIMESTAMP_RE.fullmatch(self.timestamp):
            raise ValueError(f"timestamp must be canonical decimal seconds, got {self.timestamp!r}")

    def reply_xml(self) -> bytes:
        """The passive-reply body (doc 90968 §被动回复)."""
        return render_xml(
            {
                "Encrypt": self.encrypt,
                "MsgSignature": self.signature,
                "TimeStamp": int(self.timestamp),
                "Nonce": self.nonce,
            }
        )

    def callback_xml(self, to_user: str, agent_id: str | None) -> bytes:
        """The body WeCom POSTs to a callback URL (AgentID omitted when None)."""
        return render_xml({"ToUserName": to_user, "Encrypt": self.encrypt, "AgentID": agent_id})

    def query(self) -> dict[str, str]:
        """The callback URL's query parameters for this message."""
        return {"msg_signature": self.signature, "timestamp": self.timestamp, "nonce": self.nonce}


class MsgCrypto:
    """Verify, decrypt, encrypt and sign WeCom callback messages.

    Args:
        token: The callback Token from the app's settings.
        encoding_aes_key: The 43-character EncodingAESKey.
        receive_id: Expected trailing id: the corpid for self-built apps, the suiteid for
            third-party suites, "" for internal AI bots.
        max_skew_s: Largest accepted |now - timestamp| for POST callbacks, in seconds.
        random_bytes: Source of randomness (16-byte prefixes and nonces).
        clock: Source of the current Unix time.

    Raises:
        InvalidAESKeyError: The key is not 43 chars of [A-Za-z0-9] decoding to 32 bytes.
    """

    __slots__ = ("_aes_key", "_clock", "_max_skew_s", "_random_bytes", "_token", "receive_id")

    def __init__(
        self,
        token: str,
        encoding_aes_key: str,
        receive_id: str,
        *,
        max_skew_s: int = 300,
        random_bytes: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(encoding_aes_key, str) or not _KEY_RE.fullmatch(encoding_aes_key):
            raise InvalidAESKeyError("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
        aes_key = base64.b64decode(encoding_aes_key + "=")
        if len(aes_key) != 32:
            raise InvalidAESKeyError("EncodingAESKey does not decode to 32 bytes")
        if max_skew_s < 0:
            raise ValueError("max_skew_s must be >= 0")
        self._token = token
        self._aes_key = aes_key
        self.receive_id = receive_id
        self._max_skew_s = max_skew_s
        self._random_bytes = random_bytes
        self._clock = clock

    def sign(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """sha1 of the lexicographically sorted concatenation, as lower-case hex."""
        joined = "".join(sorted([self._token, timestamp, nonce, encrypt]))
        return hashlib.sha1(joined.encode("utf-8")).hexdigest()

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """Answer the GET URL verification: check the signature, decrypt ``echostr``.

        No time window applies (WeCom's flow defines none): a replayed GET only gets back the
        plaintext its original request already revealed.
        ``echostr`` must be URL-decoded exactly once (aiohttp's ``request.query`` already did).

        Returns:
            The plaintext to send back as the response body.
        """
        self._check_signature(msg_signature, timestamp, nonce, echostr)
        try:
            return self.decrypt(echostr).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecryptError("echostr is not UTF-8", errcode=-40008) from exc

    def open(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        """Verify and decrypt a POST callback's ``Encrypt`` value.

        Order: signature (constant time), then the timestamp window, then decryption, so no
        decryption work is done for unauthenticated input.

        Returns:
            The inner message (UTF-8 XML).

        Raises:
            SignatureError, TimestampError, DecryptError, ReceiveIdError.
        """
        self._check_signature(msg_signature, timestamp, nonce, encrypt)
        self._check_timestamp(timestamp)
        return self.decrypt(encrypt)

    def open_envelope(self, msg_signature: str, timestamp: str, nonce: str, body: bytes) -> bytes:
        """Take ``<Encrypt>`` from a POST body and :meth:`open` it.

        The envelope is read by a flat, linear scan (:func:`~wecom_sdk.xmlsafe.envelope_fields`),
        never parsed as XML: until the signature over ``Encrypt`` has been checked the body is
        anyone's. The inner message this returns is the caller's to parse (``parse_xml``, which
        bounds depth and size).

        Raises:
            XmlError: The body is not WeCom's flat ``<xml>`` envelope with one non-empty ``Encrypt``.
            CryptoError: As :meth:`open`.
        """
        encrypt = envelope_fields(body).get("Encrypt")
        if not encrypt:
            raise XmlError("callback body has no Encrypt text")
        return self.open(msg_signature, timestamp, nonce, encrypt)

    def encrypt(self, plaintext: bytes) -> str:
        """Encrypt ``random(16) | len(>I) | plaintext | receive_id``, PKCS#7/32, AES-256-CBC.

        Raises:
            EncryptError: The random source misbehaved or the message exceeds 4 GiB.
        """
        prefix = self._random_bytes(_RANDOM_LEN)
        if len(prefix) != _RANDOM_LEN:
            raise EncryptError("random_bytes returned the wrong length")
        if len(plaintext) > 0xFFFFFFFF:
            raise EncryptError("message too long for the 4-byte length field")
        body = prefix + struct.pack(">I", len(plaintext)) + plaintext + self.receive_id.encode()
        cipher = AES.new(self._aes_key, AES.MODE_CBC, iv=self._aes_key[:16])
        return base64.b64encode(cipher.encrypt(pad(body, _BLOCK))).decode("ascii")

    def decrypt(self, encrypt: str) -> bytes:
        """Decrypt an ``Encrypt`` / ``echostr`` value and check its receiveid.

        Strict: canonical base64, whole 32-byte blocks, pad value 1..32 with equal pad bytes,
        a length field that fits the buffer. This does not authenticate (CBC is malleable): call
        it only after the signature check, as :meth:`open` and :meth:`verify_url` do.

        Raises:
            DecryptError: -40010 bad base64, -40007 not whole AES blocks, -40008 bad buffer.
            ReceiveIdError: The trailing id is not :attr:`receive_id`.
        """
        try:
            ciphertext = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise DecryptError("Encrypt is not valid base64", errcode=-40010) from exc
        # b64decode ignores non-zero unused trailing bits; re-encoding makes the text canonical so
        # distinct strings never decrypt to the same message.
        if base64.b64encode(ciphertext).decode("ascii") != encrypt:
            raise DecryptError("Encrypt is not canonical base64", errcode=-40010)
        if not ciphertext or len(ciphertext) % AES.block_size:
            raise DecryptError("ciphertext is not a whole number of AES blocks")
        cipher = AES.new(self._aes_key, AES.MODE_CBC, iv=self._aes_key[:16])
        try:
            # Padding errors are not an oracle here: callers reach this only after the signature.
            plain = unpad(cipher.decrypt(ciphertext), _BLOCK, style="pkcs7")
        except ValueError as exc:
            raise DecryptError("invalid PKCS#7 padding", errcode=-40008) from exc
        if len(plain) < _HEADER_LEN:
            raise DecryptError("plaintext shorter than its header", errcode=-40008)
        (length,) = struct.unpack(">I", plain[_RANDOM_LEN:_HEADER_LEN])
        end = _HEADER_LEN + length
        if end > len(plain):
            raise DecryptError("length field exceeds the buffer", errcode=-40008)
        if plain[end:] != self.receive_id.encode():
            raise ReceiveIdError("receiveid does not match")
        return plain[_HEADER_LEN:end]

    def seal(
        self, plaintext: bytes, *, timestamp: str | None = None, nonce: str | None = None
    ) -> SealedMessage:
        """Encrypt and sign ``plaintext``.

        Args:
            plaintext: The inner message (a rendered reply, or a simulated callback).
            timestamp: Defaults to the clock's current second.
            nonce: Defaults to 10 random digits.
        """
        if timestamp is None:
            timestamp = str(int(self._clock()))
        if nonce is None:
            nonce = "".join(str(b % 10) for b in self._random_bytes(_NONCE_DIGITS))
        encrypt = self.encrypt(plaintext)
        return SealedMessage(encrypt, self.sign(timestamp, nonce, encrypt), timestamp, nonce)

    def _check_signature(self, msg_signature: str, timestamp: str, nonce: str, data: str) -> None:
        expected = self.sign(timestamp, nonce, data).encode("ascii")
        # compare_digest on bytes: str arguments must be ASCII or it raises TypeError.
        if not hmac.compare_digest(expected, msg_signature.encode("utf-8")):
            raise SignatureError("msg_signature does not match")

    def _check_timestamp(self, timestamp: str) -> None:
        if not _TIMESTAMP_RE.fullmatch(timestamp):
            raise TimestampError("timestamp is not a decimal integer")
        if abs(self._clock() - int(timestamp)) > self._max_skew_s:
            raise TimestampError(f"timestamp outside the allowed {self._max_skew_s} s window")
