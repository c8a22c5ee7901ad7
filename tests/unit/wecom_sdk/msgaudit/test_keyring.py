"""KeyRing: PEM files by publickey_ver, RSA PKCS#1 v1.5 of each record's random key, and errors
that name the version and file but never hold key material."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from tests.support.paths import DATA
from wecom_sdk.errors import RecordUndecryptable, WeComError
from wecom_sdk.msgaudit.keyring import KeyFileError, KeyRing
from wecom_sdk.testing.archive_feed import private_pem

# Test-only 1024-bit keys: v1 as PKCS#1 ("BEGIN RSA PRIVATE KEY"), v2 as PKCS#8 ("BEGIN PRIVATE
# KEY"). VECTOR_KEY was encrypted under v1's public key; v2's private key does not open it.
V1_PKCS1 = DATA / "msgaudit" / "test_key_v1_pkcs1.pem"
V2_PKCS8 = DATA / "msgaudit" / "test_key_v2_pkcs8.pem"
VECTOR_KEY = "Lq3u9Wc2xR7yN4tPz8Kd1Fv6Hb5Jm0Sa"
VECTOR = (
    "en+4NA9mjOlohf6qMLYzP7gbHJu50PNPcQew4H24WguUjAqsHBXn3JczgvRHyPLcuXrat7Q45cK9QGWmuT+8DVH6Nj8"
    "bxfxUVo9e8IqdgOwiZjIb3RcKWbiU2iAJtI9I6SGS4MY2Ce59RmBBZ26vjHHngwz0P5yD/bkocNqvJJY="
)


def _encrypt(key: rsa.RSAPrivateKey, plain: bytes) -> str:
    return base64.b64encode(key.public_key().encrypt(plain, padding.PKCS1v15())).decode()


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    # TOML keys are strings: "2" as [msgaudit] private_keys gives it.
    return KeyRing.from_files({1: V1_PKCS1, "2": str(V2_PKCS8)})


def test_both_pem_formats_load() -> None:
    assert V1_PKCS1.read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert V2_PKCS8.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    ring = KeyRing.from_files({"2": V2_PKCS8, 1: V1_PKCS1})
    assert ring.versions == (1, 2)
    assert 1 in ring and 2 in ring and 3 not in ring
    assert len(ring) == 2
    assert repr(ring) == "KeyRing(versions=(1, 2))"


def test_published_vector_opens_with_its_version(ring: KeyRing) -> None:
    assert ring.random_key(1, VECTOR) == VECTOR_KEY


def test_round_trip_under_generated_keys(rsa_keys: dict[int, rsa.RSAPrivateKey]) -> None:
    ring = KeyRing(rsa_keys)
    for version, key in rsa_keys.items():
        assert ring.random_key(version, _encrypt(key, f"key-of-v{version}".encode())) == (
            f"key-of-v{version}"
        )


def test_wrapped_base64_is_accepted(ring: KeyRing) -> None:
    wrapped = "\n".join(VECTOR[i : i + 64] for i in range(0, len(VECTOR), 64))
    assert ring.random_key(1, wrapped) == VECTOR_KEY


def test_missing_version_is_10007(ring: KeyRing) -> None:
    with pytest.raises(RecordUndecryptable) as caught:
        ring.random_key(7, VECTOR)
    assert caught.value.errcode == 10007
    assert "publickey_ver 7" in str(caught.value)


@pytest.mark.parametrize(
    "garbage",
    [
        "not base64 at all!",
        "",
        "QUJD",  # base64, but 3 bytes: not one RSA block
        base64.b64encode(b"\x00" * 128).decode(),  # a block's length, not a ciphertext
        VECTOR[:-4] + "@@@@",
    ],
)
def test_garbage_is_10008(ring: KeyRing, garbage: str) -> None:
    with pytest.raises(RecordUndecryptable) as caught:
        ring.random_key(1, garbage)
    assert caught.value.errcode == 10008


def test_wrong_key_is_10008(ring: KeyRing) -> None:
    # OpenSSL's implicit rejection turns the padding failure into pseudo-random bytes; the
    # ring refuses them because a random key is printable ASCII.
    with pytest.raises(RecordUndecryptable) as caught:
        ring.random_key(2, VECTOR)
    assert caught.value.errcode == 10008
    assert "publickey_ver 2" in str(caught.value)


@pytest.mark.parametrize("plain", [b"", b"\x00\x01\x02", "密钥".encode(), b"tab\there"])
def test_plaintext_that_is_no_key_is_10008(
    rsa_keys: dict[int, rsa.RSAPrivateKey], plain: bytes
) -> None:
    ring = KeyRing({1: rsa_keys[1]})
    with pytest.raises(RecordUndecryptable) as caught:
        ring.random_key(1, _encrypt(rsa_keys[1], plain))
    assert caught.value.errcode == 10008


def test_errors_carry_no_key_material(ring: KeyRing) -> None:
    with pytest.raises(RecordUndecryptable) as caught:
        ring.random_key(2, VECTOR)
    text = str(caught.value)
    assert VECTOR not in text and VECTOR_KEY not in text
    assert caught.value.__cause__ is None


# ---- key files ---------------------------------------------------------------------------------


def _error(mapping: dict[int | str, str | Path]) -> KeyFileError:
    with pytest.raises(KeyFileError) as caught:
        KeyRing.from_files(mapping)
    assert isinstance(caught.value, WeComError)
    return caught.value


def test_missing_file_names_version_and_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.pem"
    error = _error({"3": path})
    assert "publickey_ver 3" in str(error) and str(path) in str(error)
    assert "no such file" in str(error)
    assert (error.version, error.path) == (3, str(path))


def test_directory_is_unreadable(tmp_path: Path) -> None:
    error = _error({1: tmp_path})
    assert "cannot read" in str(error) and "publickey_ver 1" in str(error)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A permission error, made by hand: chmod 0 does not stop root, who may run the tests.
    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    error = _error({1: V1_PKCS1})
    assert "cannot read: Permission denied" in str(error)


def test_garbage_file_names_no_contents(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pem"
    secret_looking = (
        b"-----BEGIN RSA PRIVATE KEY-----\nSECRETSTUFF\n-----END RSA PRIVATE KEY-----\n"
    )
    path.write_bytes(secret_looking)
    error = _error({1: path})
    assert "not a PEM private key" in str(error)
    assert "SECRETSTUFF" not in str(error)
    # The parser's own error is not chained: nothing of the file travels with the exception.
    assert error.__cause__ is None and error.__suppress_context__


def test_public_key_file_is_refused(tmp_path: Path, rsa_keys: dict[int, rsa.RSAPrivateKey]) -> None:
    path = tmp_path / "public.pem"
    path.write_bytes(
        rsa_keys[1]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert "not a PEM private key" in str(_error({1: path}))


def test_non_rsa_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert "not an RSA key" in str(_error({4: path}))


def test_password_protected_key_is_refused(
    tmp_path: Path, rsa_keys: dict[int, rsa.RSAPrivateKey]
) -> None:
    path = tmp_path / "locked.pem"
    path.write_bytes(
        rsa_keys[1].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    assert "password-protected" in str(_error({1: path}))


@pytest.mark.parametrize("version", ["v1", "", "-1", "１", True, -2])
def test_bad_versions_are_refused(version: int | str) -> None:
    error = _error({version: V1_PKCS1})
    assert "publickey_ver" in str(error)


def test_same_version_twice_is_refused() -> None:
    assert "twice" in str(_error({1: V1_PKCS1, "1": V2_PKCS8}))


def test_empty_ring_and_pickled_error(tmp_path: Path) -> None:
    assert KeyRing.from_files({}).versions == ()
    error = _error({1: tmp_path / "x.pem"})
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.version, again.path) == (str(error), 1, error.path)


def test_written_feed_keys_load(tmp_path: Path, rsa_keys: dict[int, rsa.RSAPrivateKey]) -> None:
    for fmt, header in (("pkcs1", b"BEGIN RSA PRIVATE KEY"), ("pkcs8", b"BEGIN PRIVATE KEY")):
        path = tmp_path / f"{fmt}.pem"
        path.write_bytes(private_pem(rsa_keys[2], fmt))  # type: ignore[arg-type]
        assert header in path.read_bytes()
        ring = KeyRing.from_files({2: path})
        assert ring.random_key(2, _encrypt(rsa_keys[2], b"k")) == "k"
