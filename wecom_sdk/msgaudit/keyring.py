"""Our RSA private keys by ``publickey_ver``: the step that opens each record's random key.

WeCom encrypts every archived record's random key with the RSA public key we uploaded, under
PKCS#1 v1.5, and names the key's version in ``publickey_ver`` (wecom-protocol.md §7). Each
upload is a new version and records encrypted under an old one keep arriving, so the ring holds
every version ever uploaded. Keys are PEM files, PKCS#1 (``BEGIN RSA PRIVATE KEY``) or PKCS#8
(``BEGIN PRIVATE KEY``), unencrypted (the file's permissions protect them).

Errors never carry key material: a bad key file names its version and path only, a record that
cannot be opened its version only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from wecom_sdk.errors import WeComError, archive_error

__all__ = ["KeyFileError", "KeyRing"]

_PKCS1V15 = padding.PKCS1v15()


class KeyFileError(WeComError):
    """A configured private key file is missing, unreadable, or not an unencrypted RSA PEM key.

    Attributes:
        version: The ``publickey_ver`` the file was configured for (as configured).
        path: The file, as configured.
    """

    def __init__(self, message: str, *, version: object = None, path: str = "") -> None:
        super().__init__(message)
        # Pickling replays __init__ with (message,) and restores the rest from __dict__.
        self.version = version
        self.path = path


def _version(raw: int | str) -> int:
    """A configured version (TOML keys are strings) as a non-negative int."""
    if isinstance(raw, bool):
        raise KeyFileError(f"publickey_ver {raw!r} is not an integer", version=raw)
    if isinstance(raw, int):
        version = raw
    else:
        text = raw.strip()
        if not text.isascii() or not text.isdigit():
            raise KeyFileError(f"publickey_ver {raw!r} is not an integer", version=raw)
        version = int(text)
    if version < 0:
        raise KeyFileError(f"publickey_ver {raw!r} is negative", version=raw)
    return version


def _load(version: int, path: Path) -> rsa.RSAPrivateKey:
    where = f"private key of publickey_ver {version} ({path})"
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(f"{where}: no such file", version=version, path=str(path)) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise KeyFileError(
            f"{where}: cannot read: {reason}", version=version, path=str(path)
        ) from exc
    try:
        key = load_pem_private_key(pem, password=None)
    except TypeError:
        # Raised for a password-protected key. The chained error is dropped on purpose: parse
        # errors of a key file should never travel further than this sentence.
        raise KeyFileError(
            f"{where}: the key is password-protected; store it unencrypted",
            version=version,
            path=str(path),
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(
            f"{where}: not a PEM private key (PKCS#1 or PKCS#8)", version=version, path=str(path)
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(
            f"{where}: not an RSA key ({type(key).__name__})", version=version, path=str(path)
        )
    return key


class KeyRing:
    """The private keys by ``publickey_ver``; immutable, safe to share between threads.

    Args:
        keys: The loaded keys by version (see :meth:`from_files` for PEM files).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Mapping[int, rsa.RSAPrivateKey]) -> None:
        self._keys: Mapping[int, rsa.RSAPrivateKey] = MappingProxyType(dict(keys))

    @classmethod
    def from_files(cls, mapping: Mapping[int, str | Path] | Mapping[str, str | Path]) -> KeyRing:
        """Load PEM files by version (``{"1": "keys/v1.pem"}`` as in ``[msgaudit] private_keys``).

        Relative paths are taken as they are (the config loader resolves them first).

        Raises:
            KeyFileError: A version is not a non-negative integer (or is given twice, as ``1``
                and ``"1"``), or its file is missing, unreadable, password-protected, not a PEM
                private key, or not RSA. The message names the version and the file.
        """
        keys: dict[int, rsa.RSAPrivateKey] = {}
        for raw, path in mapping.items():
            version = _version(raw)
            if version in keys:
                raise KeyFileError(f"publickey_ver {version} is configured twice", version=raw)
            keys[version] = _load(version, Path(path))
        return cls(keys)

    @property
    def versions(self) -> tuple[int, ...]:
        """The versions held, ascending."""
        return tuple(sorted(self._keys))

    def __contains__(self, version: object) -> bool:
        return version in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(versions={self.versions})"

    def random_key(self, publickey_ver: int, encrypt_random_key_b64: str) -> str:
        """The random key of one record: base64, then RSA PKCS#1 v1.5 with our key of its version.

        The result is passed to ``DecryptData`` with the record's ``encrypt_chat_msg``.

        OpenSSL 3.2+ answers a PKCS#1 v1.5 padding failure with "implicit rejection": instead of
        an error it returns pseudo-random bytes derived from the key and the ciphertext, so the
        decrypt step never becomes a padding oracle. A random key is printable ASCII, so bytes
        that are not are the wrong key or a corrupt ``encrypt_random_key`` (10008). Rarely a
        wrong key yields a few printable bytes; ``DecryptData`` then fails (10006) instead, and
        the record is quarantined all the same.

        Raises:
            RecordUndecryptable: 10007 when no key of ``publickey_ver`` is held; 10008 when
                ``encrypt_random_key`` is not base64 or does not decrypt to a printable ASCII
                string under that key.
        """
        key = self._keys.get(publickey_ver)
        if key is None:
            raise archive_error(10007, f"publickey_ver {publickey_ver}")
        where = f"encrypt_random_key of publickey_ver {publickey_ver}"
        try:
            # Whitespace (a wrapped line) is harmless; any other non-alphabet byte is damage.
            ciphertext = base64.b64decode("".join(encrypt_random_key_b64.split()), validate=True)
        except (binascii.Error, ValueError):
            raise archive_error(10008, f"{where} is not base64") from None
        try:
            plain = key.decrypt(ciphertext, _PKCS1V15)
        except ValueError:
            # Wrong length for the key, or (older OpenSSL) bad padding: no detail on purpose.
            raise archive_error(10008, f"{where} does not decrypt") from None
        if not plain or not plain.isascii():
            raise archive_error(10008, f"{where} does not decrypt to a key")
        text = plain.decode("ascii")
        if not text.isprintable():
            raise archive_error(10008, f"{where} does not decrypt to a key")
        return text
