"""MsgCrypto against WeCom's published vectors, wechatpy, and hostile input."""

from __future__ import annotations

import base64
import contextlib
import hmac
import string
import struct
import time
from collections.abc import Callable
from typing import Any

import pytest
from Crypto.Cipher import AES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wechatpy.enterprise.crypto import WeChatCrypto

from wecom_sdk import (
    CryptoError,
    DecryptError,
    InvalidAESKeyError,
    MsgCrypto,
    ReceiveIdError,
    SealedMessage,
    SignatureError,
    TimestampError,
    XmlError,
    parse_xml,
)

# Protocol doc §1.6: A = Tencent's python sample (sbzhu/weworkapi_python 3dfbc26), B = doc 90968
# 举例说明, D = wechatpy's own unit tests (not official).
VECTORS: dict[str, Any] = {
    "A": {
        "source": "sbzhu/weworkapi_python callback/Sample.py (commit 3dfbc26)",
        "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
        "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt",
        "receive_id": "ww1436e0e65a779aee",
        "get": {
            "msg_signature": "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb",
            "timestamp": "1476416373",
            "nonce": "47744683",
            "echostr": (
                "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq"
                "6SVHyA=="
            ),
            "plaintext": "1288432023552776189",
        },
        "post": {
            "msg_signature": "0c3914025cb4b4d68103f6bfc8db550f79dcf48e",
            "timestamp": "1476422779",
            "nonce": "1597212914",
            "encrypt": (
                "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLv"
                "El3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6"
                "GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65"
                "HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJO"
                "pcwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+"
            ),
            "body": (
                "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA[K"
                "l7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvE"
                "l3NyeTkAgGzBhzTtRLNshw2AEew+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6G"
                "aUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24YhmZH4ch4Ka7ilEbjbfvhKkNL65H"
                "HL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOp"
                "cwocugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n<Ag"
                "entID><![CDATA[1000002]]></AgentID>\n</xml>"
            ),
            "plaintext": (
                "<xml><ToUserName>ww1436e0e65a779aee</ToUserName><FromUserName>ChenJiaShun</FromU"
                "serName><CreateTime>1476422779</CreateTime><MsgType>text</MsgType><Content>你好</C"
                "ontent><MsgId>1456453720</MsgId><AgentID>1000002</AgentID></xml>"
            ),
            "pad": 22,
        },
    },
    "B": {
        "source": "WeCom doc 90968 (加解密方案说明, 举例说明)",
        "token": "QDG6eK",
        "encoding_aes_key": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
        "receive_id": "wx5823bf96d3bd56c7",
        "get": {
            "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
            "timestamp": "1409659589",
            "nonce": "263014780",
            "echostr": (
                "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZ"
                "XvnaqQ=="
            ),
            "plaintext": "1616140317555161061",
        },
        "post": {
            "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
            "timestamp": "1409659813",
            "nonce": "1372623149",
            "encrypt": (
                "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHH"
                "hGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4a"
                "SknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP"
                "7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8"
                "V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p"
                "8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
            ),
            "pad": 30,
        },
    },
    "D": {
        "source": "wechatpy enterprise crypto unit tests (not official)",
        "token": "123456",
        "encoding_aes_key": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
        "receive_id": "wx49f0ab532d5d035a",
        "get": {
            "msg_signature": "dd6b9c95b495b3f7e2901bfbc76c664930ffdb96",
            "timestamp": "1411443780",
            "nonce": "437374425",
            "echostr": (
                "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOch"
                "LF6p+Q=="
            ),
            "plaintext": "5927782489442352469",
        },
        "post": {
            "msg_signature": "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
            "timestamp": "1411525903",
            "nonce": "461056294",
            "encrypt": (
                "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPat"
                "fjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD"
                "8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0"
                "gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgW"
                "YEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnT"
                "bcX2e8K9QaNWHp91eBdCRxthuL0="
            ),
        },
        "reply": {
            "random_prefix": "1234567890123456",
            "timestamp": "1411525903",
            "nonce": "461056294",
            "plaintext": (
                "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<F"
                "romUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[m"
                "essense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>"
                "\n</xml>"
            ),
            "encrypt": (
                "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrlu"
                "LBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkM"
                "KCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnw"
                "KKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vW"
                "wi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
            ),
            "msg_signature": "407518b7649e86ef23978113f92d27afa9296533",
        },
    },
}
A, B, D = VECTORS["A"], VECTORS["B"], VECTORS["D"]  # protocol doc §1.6; D is wechatpy's own


def creds(v: dict[str, Any]) -> tuple[str, str, str]:
    return v["token"], v["encoding_aes_key"], v["receive_id"]


def query(v: dict[str, Any]) -> tuple[str, str, str]:
    return v["msg_signature"], v["timestamp"], v["nonce"]


def get_query(v: dict[str, Any]) -> tuple[str, str, str, str]:
    return (*query(v), v["echostr"])


A_TOKEN, A_KEY, A_ID = creds(A)
B_TOKEN, B_KEY, B_ID = creds(B)
D_TOKEN, D_KEY, D_ID = creds(D)
A_GET, B_GET, D_GET = (get_query(v["get"]) for v in (A, B, D))
A_POST_QUERY, B_POST_QUERY, D_POST_QUERY = (query(v["post"]) for v in (A, B, D))
A_ENCRYPT, B_ENCRYPT, D_ENCRYPT = (v["post"]["encrypt"] for v in (A, B, D))
A_BODY, A_PLAINTEXT = A["post"]["body"].encode(), A["post"]["plaintext"].encode()

NOW = 1_700_000_000.0
ALNUM = string.ascii_letters + string.digits
B64_ALPHABET = ALNUM + "+/="
keys = st.text(alphabet=ALNUM, min_size=43, max_size=43)


def fixed_clock(t: float) -> Callable[[], float]:
    return lambda: t


def counter_bytes() -> Callable[[int], bytes]:
    """Deterministic 'randomness' so sealed messages are reproducible."""
    state = {"n": 0}

    def take(n: int) -> bytes:
        state["n"] += 1
        return bytes((state["n"] + i) % 256 for i in range(n))

    return take


def make(
    token: str = A_TOKEN, key: str = A_KEY, rid: str = A_ID, *, now: float = NOW, skew: int = 300
) -> MsgCrypto:
    return MsgCrypto(
        token, key, rid, max_skew_s=skew, random_bytes=counter_bytes(), clock=fixed_clock(now)
    )


def forge(key: str, plain: bytes) -> str:
    """Encrypt an arbitrary (already padded) plaintext with the callback's AES key and IV."""
    aes_key = base64.b64decode(key + "=")
    return base64.b64encode(AES.new(aes_key, AES.MODE_CBC, aes_key[:16]).encrypt(plain)).decode()


def raw_plaintext(key: str, encrypt: str) -> bytes:
    aes_key = base64.b64decode(key + "=")
    return AES.new(aes_key, AES.MODE_CBC, aes_key[:16]).decrypt(base64.b64decode(encrypt))


# --- published vectors ---------------------------------------------------------------------------


def test_set_a_get() -> None:
    assert (
        make(now=time.time()).verify_url(*A_GET) == A["get"]["plaintext"] == "1288432023552776189"
    )


def test_set_a_post_envelope_decrypts_to_exact_plaintext() -> None:
    crypto = make(now=1476422779)
    assert crypto.open_envelope(*A_POST_QUERY, A_BODY) == A_PLAINTEXT
    assert crypto.open(*A_POST_QUERY, A_ENCRYPT) == A_PLAINTEXT


def test_set_a_post_pad_is_22_and_needs_32_byte_blocks() -> None:
    # Regression for the unpad(…, 16) bug (Tencent/WeKnora#2832): this pad is > 16.
    assert raw_plaintext(A_KEY, A_ENCRYPT)[-1] == A["post"]["pad"] == 22


def test_set_b_get() -> None:
    crypto = make(B_TOKEN, B_KEY, B_ID, now=time.time())
    _, ts, nonce, echostr = B_GET
    assert crypto.sign(ts, nonce, echostr) == "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
    assert crypto.verify_url(*B_GET) == "1616140317555161061"


def test_set_b_post_with_clock_at_sample_time() -> None:
    crypto = make(B_TOKEN, B_KEY, B_ID, now=1409659813)
    sig, ts, nonce = B_POST_QUERY
    assert crypto.sign(ts, nonce, B_ENCRYPT) == sig  # "1372623149" + "1409659813" + "QDG6eK" + …
    fields = parse_xml(crypto.open(*B_POST_QUERY, B_ENCRYPT))
    assert fields == {
        "ToUserName": "wx5823bf96d3bd56c7",
        "FromUserName": "mycreate",
        "CreateTime": "1409659813",
        "MsgType": "text",
        "Content": "hello",
        "MsgId": "4561255354251345929",
        "AgentID": "218",
    }
    assert raw_plaintext(B_KEY, B_ENCRYPT)[-1] == B["post"]["pad"] == 30


def test_set_b_post_with_real_clock_is_stale() -> None:
    crypto = MsgCrypto(B_TOKEN, B_KEY, B_ID)
    with pytest.raises(TimestampError) as exc:
        crypto.open(*B_POST_QUERY, B_ENCRYPT)
    assert exc.value.errcode == -40001


def test_set_d_get() -> None:
    assert make(D_TOKEN, D_KEY, D_ID).verify_url(*D_GET) == "5927782489442352469"


def test_set_d_post() -> None:
    fields = parse_xml(make(D_TOKEN, D_KEY, D_ID, now=1411525903).open(*D_POST_QUERY, D_ENCRYPT))
    assert (fields["Content"], fields["FromUserName"]) == ("test", "messense")


def test_set_d_reply_is_byte_identical_with_the_same_random_prefix() -> None:
    reply = D["reply"]
    prefix = reply["random_prefix"].encode()
    crypto = MsgCrypto(D_TOKEN, D_KEY, D_ID, random_bytes=lambda n: prefix[:n])
    sealed = crypto.seal(
        reply["plaintext"].encode(), timestamp=reply["timestamp"], nonce=reply["nonce"]
    )
    assert (sealed.encrypt, sealed.signature) == (reply["encrypt"], reply["msg_signature"])


# --- wechatpy, an independent implementation ---------------------------------------------------


@pytest.mark.parametrize(
    ("token", "key", "rid"),
    [(A_TOKEN, A_KEY, A_ID), (B_TOKEN, B_KEY, B_ID), (D_TOKEN, D_KEY, D_ID)],
)
def test_wechatpy_encrypts_we_open(token: str, key: str, rid: str) -> None:
    msg = "<xml><Content><![CDATA[风控 hello]]></Content></xml>"
    body = WeChatCrypto(token, key, rid).encrypt_message(msg, "12345", str(int(NOW)))
    fields = parse_xml(body)
    opened = make(token, key, rid).open_envelope(
        fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"], body.encode()
    )
    assert opened == msg.encode()


@pytest.mark.parametrize(
    ("token", "key", "rid"),
    [(A_TOKEN, A_KEY, A_ID), (B_TOKEN, B_KEY, B_ID), (D_TOKEN, D_KEY, D_ID)],
)
def test_we_seal_wechatpy_decrypts(token: str, key: str, rid: str) -> None:
    msg = "<xml><Content><![CDATA[已收到，谢谢]]></Content></xml>"
    sealed = make(token, key, rid).seal(msg.encode())
    out = WeChatCrypto(token, key, rid).decrypt_message(
        sealed.reply_xml(), sealed.signature, sealed.timestamp, sealed.nonce
    )
    assert out == msg


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys, message=st.text(max_size=300))
def test_wechatpy_round_trip_any_key(key: str, message: str) -> None:
    # wechatpy's decoder trusts the pad byte, so feed it only what a real peer would send.
    sealed = make(key=key).seal(message.encode())
    wx = WeChatCrypto(A_TOKEN, key, A_ID)
    assert wx.decrypt_message(
        sealed.reply_xml(), sealed.signature, sealed.timestamp, sealed.nonce
    ) == (message)


# --- properties ----------------------------------------------------------------------------------


@given(key=keys, message=st.binary(max_size=2000), rid=st.sampled_from(["", A_ID, "ww1"]))
def test_open_seal_round_trip(key: str, message: bytes, rid: str) -> None:
    crypto = make(key=key, rid=rid)
    sealed = crypto.seal(message)
    assert crypto.open(sealed.signature, sealed.timestamp, sealed.nonce, sealed.encrypt) == message


@given(
    message=st.binary(max_size=200),
    target=st.sampled_from(["ciphertext", "base64", "signature", "timestamp", "nonce"]),
    data=st.data(),
)
def test_any_single_change_is_rejected(message: bytes, target: str, data: st.DataObject) -> None:
    crypto = make()
    s = crypto.seal(message)
    fields = {"sig": s.signature, "ts": s.timestamp, "nonce": s.nonce, "enc": s.encrypt}
    if target == "ciphertext":
        raw = bytearray(base64.b64decode(s.encrypt))
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] ^= data.draw(st.integers(1, 255))
        fields["enc"] = base64.b64encode(raw).decode()
    else:
        name = {"base64": "enc", "signature": "sig", "timestamp": "ts", "nonce": "nonce"}[target]
        text = fields[name]
        i = data.draw(st.integers(0, len(text) - 1))
        alphabet = B64_ALPHABET if name == "enc" else string.hexdigits.lower() + string.digits
        ch = data.draw(st.sampled_from(alphabet).filter(lambda c: c != text[i]))
        fields[name] = text[:i] + ch + text[i + 1 :]
    with pytest.raises(CryptoError):
        crypto.open(fields["sig"], fields["ts"], fields["nonce"], fields["enc"])
    if target in {"ciphertext", "base64"}:
        # decrypt() alone is not authenticated (CBC is malleable): it may return a changed
        # message, but it never raises anything else and never yields the original silently.
        with contextlib.suppress(CryptoError):
            assert crypto.decrypt(fields["enc"]) != message


def test_non_canonical_base64_is_rejected() -> None:
    crypto = make()
    enc = crypto.encrypt(
        b"x"
    )  # 64-byte ciphertext: base64 ends in "==", the last char has spare bits
    data = enc.rstrip("=")
    std = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    twin = data[:-1] + std[std.index(data[-1]) ^ 1] + enc[len(data) :]
    assert twin != enc
    assert base64.b64decode(twin) == base64.b64decode(enc)  # the edge case b64decode allows
    with pytest.raises(DecryptError) as exc:
        crypto.decrypt(twin)
    assert exc.value.errcode == -40010


# --- padding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(101))
def test_padding_is_pkcs7_to_32(n: int) -> None:
    crypto = make(rid="")
    plain = raw_plaintext(A_KEY, crypto.encrypt(b"m" * n))
    body_len = 20 + n
    pad = plain[-1]
    assert len(plain) % 32 == 0
    assert 1 <= pad <= 32
    assert plain[-pad:] == bytes([pad]) * pad
    assert len(plain) == body_len + pad
    if body_len % 32 == 0:
        assert pad == 32  # a full block even when aligned (esap/wechat PR#43)


def _body(msg: bytes, rid: str = A_ID, length: int | None = None) -> bytes:
    n = len(msg) if length is None else length
    return b"R" * 16 + struct.pack(">I", n) + msg + rid.encode()


def _pkcs7(data: bytes, block: int = 32) -> bytes:
    p = block - len(data) % block
    return data + bytes([p]) * p


BODY = _body(b"hi")  # 40 bytes: a valid pad would be 24 x 0x18


@pytest.mark.parametrize(
    "plain",
    [
        pytest.param(BODY + b"\x00" * 24, id="pad-0"),
        pytest.param(BODY + b"\x21" * 24, id="pad-33"),
        pytest.param(BODY + b"\x17" + b"\x18" * 23, id="pad-bytes-differ"),
        pytest.param(BODY + b"\x18" * 22 + b"\x17\x18", id="pad-byte-differs-near-end"),
        pytest.param(_pkcs7(_body(b"short", length=1000)), id="length-beyond-buffer"),
        pytest.param(_pkcs7(_body(b"", length=0xFFFFFFFF)), id="length-max"),
        pytest.param(_pkcs7(b"R" * 10), id="shorter-than-header"),
        pytest.param(_pkcs7(BODY, 16), id="16-aligned-not-32"),
    ],
)
def test_crafted_buffers_are_decrypt_errors(plain: bytes) -> None:
    assert len(plain) % 16 == 0
    with pytest.raises(DecryptError) as exc:
        make().decrypt(forge(A_KEY, plain))
    assert exc.value.errcode == -40008


@pytest.mark.parametrize(
    ("encrypt", "errcode"),
    [
        ("", -40007),
        ("not base64!", -40010),
        ("QUJD", -40007),  # 3 bytes: not whole AES blocks
        (base64.b64encode(b"\x00" * 17).decode(), -40007),
        ("A" * 43 + " ", -40010),  # a "+" turned into a space by a second URL decode
    ],
)
def test_bad_ciphertext_shapes(encrypt: str, errcode: int) -> None:
    with pytest.raises(DecryptError) as exc:
        make().decrypt(encrypt)
    assert exc.value.errcode == errcode


# --- identity, signature, key, timestamp --------------------------------------------------------


def test_wrong_receive_id() -> None:
    sealed = make(rid="wwSOMEONEELSE").seal(b"<xml/>")
    with pytest.raises(ReceiveIdError) as exc:
        make().open(sealed.signature, sealed.timestamp, sealed.nonce, sealed.encrypt)
    assert exc.value.errcode == -40005
    assert "wwSOMEONEELSE" not in str(exc.value)


def test_empty_receive_id_for_ai_bots() -> None:
    crypto = make(rid="")
    assert crypto.decrypt(crypto.encrypt(b"{}")) == b"{}"
    with pytest.raises(ReceiveIdError):
        make().decrypt(crypto.encrypt(b"{}"))


@pytest.mark.parametrize(
    "signature", ["0" * 40, "", "5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3", "签名"]
)
def test_bad_signature(signature: str) -> None:
    with pytest.raises(SignatureError) as exc:
        make(B_TOKEN, B_KEY, B_ID).verify_url(signature, *B_GET[1:])
    assert exc.value.errcode == -40001


def test_echostr_decoded_twice_fails_signature() -> None:
    # aiohttp already URL-decoded echostr; a second unquote turns "+" into " " (protocol §1.1).
    sig, ts, nonce, echostr = B_GET
    with pytest.raises(SignatureError):
        make(B_TOKEN, B_KEY, B_ID).verify_url(sig, ts, nonce, echostr.replace("+", " "))


def test_signature_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("wecom_sdk.crypto.hmac.compare_digest", spy)
    make(now=time.time()).verify_url(*A_GET)
    assert calls == [(A_GET[0].encode(), A_GET[0].encode())]


def test_no_decryption_before_the_signature_and_window(monkeypatch: pytest.MonkeyPatch) -> None:
    crypto = make(now=1476422779)

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("AES used before the checks passed")

    monkeypatch.setattr("wecom_sdk.crypto.AES.new", boom)
    with pytest.raises(SignatureError):
        crypto.open("0" * 40, *A_POST_QUERY[1:], A_ENCRYPT)
    with pytest.raises(TimestampError):
        make(now=NOW).open(*A_POST_QUERY, A_ENCRYPT)


def test_signature_is_checked_before_the_timestamp() -> None:
    with pytest.raises(SignatureError):
        make().open("0" * 40, "not-a-number", "1", "x")


@pytest.mark.parametrize(
    "key",
    [
        "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhU",
        A_KEY + "A",
        "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhU+",
        "",
    ],
)
def test_invalid_aes_key(key: str) -> None:
    with pytest.raises(InvalidAESKeyError) as exc:
        MsgCrypto(A_TOKEN, key, A_ID)
    assert exc.value.errcode == -40004


@pytest.mark.parametrize(
    "ts", ["", "abc", "-1", "+1476422779", "1476422779.0", " 1476422779", "٣", "01"]
)
def test_non_integer_timestamp(ts: str) -> None:
    crypto = make(now=1476422779)
    enc = crypto.encrypt(b"x")
    with pytest.raises(TimestampError):
        crypto.open(crypto.sign(ts, "n", enc), ts, "n", enc)


@pytest.mark.parametrize(
    ("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)]
)
def test_timestamp_window(offset: int, ok: bool) -> None:
    crypto = make(now=NOW)
    sealed = crypto.seal(b"x", timestamp=str(int(NOW) + offset))
    args = (sealed.signature, sealed.timestamp, sealed.nonce, sealed.encrypt)
    if ok:
        assert crypto.open(*args) == b"x"
    else:
        with pytest.raises(TimestampError):
            crypto.open(*args)


def test_get_verification_has_no_time_window() -> None:
    assert make(now=NOW).verify_url(*A_GET) == "1288432023552776189"


# --- envelopes and sealing -----------------------------------------------------------------------


A_ENCRYPT_FIELD = f"<Encrypt><![CDATA[{A['post']['encrypt']}]]></Encrypt>".encode()


@pytest.mark.parametrize(
    "body",
    [
        b"not xml",
        b"<xml><ToUserName>x</ToUserName></xml>",
        b"<xml><Encrypt></Encrypt></xml>",
        b'<!DOCTYPE xml [<!ENTITY e "x">]><xml><Encrypt>&e;</Encrypt></xml>',
        b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
        # The signed Encrypt of Set A inside what is no longer WeCom's flat envelope: refused
        # before the signature is even computed.
        b"<xml>" + A_ENCRYPT_FIELD * 2 + b"</xml>",
        b"<xml>" + b"<a>" * 5_000 + A_ENCRYPT_FIELD + b"</a>" * 5_000 + b"</xml>",
        b"<xml>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</xml>",
        b"<xml "
        + b" ".join(b'a%d="1"' % i for i in range(5_000))
        + b">"
        + A_ENCRYPT_FIELD
        + b"</xml>",
        b"<xml><!-- c -->" + A_ENCRYPT_FIELD + b"</xml>",
        b"<xml><Wrap>" + A_ENCRYPT_FIELD + b"</Wrap></xml>",
    ],
    ids=[
        "not-xml",
        "no-encrypt",
        "empty-encrypt",
        "dtd",
        "two-encrypt",
        "signed-encrypt-twice",
        "deep-nesting-around-encrypt",
        "deep-nesting",
        "5000-attributes",
        "comment",
        "nested-encrypt",
    ],
)
def test_bad_envelopes_are_xml_errors(body: bytes) -> None:
    with pytest.raises(XmlError) as exc:
        make(now=1476422779).open_envelope(*A_POST_QUERY, body)
    assert not isinstance(exc.value, CryptoError)


def test_envelope_signature_before_decryption() -> None:
    crypto = make(now=NOW)
    ts, nonce = str(int(NOW)), "1"
    garbage = "!!not base64!!"
    body = f"<xml><Encrypt>{garbage}</Encrypt></xml>".encode()
    with pytest.raises(SignatureError):  # unsigned: never decrypted
        crypto.open_envelope("0" * 40, ts, nonce, body)
    with pytest.raises(DecryptError):  # signed: decrypted, and refused there
        crypto.open_envelope(crypto.sign(ts, nonce, garbage), ts, nonce, body)


def test_seal_defaults_use_the_injected_clock_and_random() -> None:
    a, b = make(now=1234567890.9).seal(b"x"), make(now=1234567890.9).seal(b"x")
    assert a == b
    assert a.timestamp == "1234567890"
    assert len(a.nonce) == 10 and a.nonce.isdigit()
    assert a.query() == {"msg_signature": a.signature, "timestamp": a.timestamp, "nonce": a.nonce}


def test_sealed_envelopes() -> None:
    crypto = make(now=NOW)
    sealed = crypto.seal(b"<xml/>", nonce="x]]>y")
    assert parse_xml(sealed.reply_xml()) == {
        "Encrypt": sealed.encrypt,
        "MsgSignature": sealed.signature,
        "TimeStamp": sealed.timestamp,
        "Nonce": "x]]>y",
    }
    assert b"<TimeStamp>1700000000</TimeStamp>" in sealed.reply_xml()
    callback = sealed.callback_xml(A_ID, "1000002")
    assert parse_xml(callback) == {
        "ToUserName": A_ID,
        "Encrypt": sealed.encrypt,
        "AgentID": "1000002",
    }
    assert b"AgentID" not in sealed.callback_xml(A_ID, None)
    assert (
        crypto.open_envelope(sealed.signature, sealed.timestamp, sealed.nonce, callback)
        == b"<xml/>"
    )


def test_sealed_message_requires_a_canonical_timestamp() -> None:
    with pytest.raises(ValueError, match="timestamp"):
        SealedMessage("e", "s", "01", "n")


# --- the error tree ------------------------------------------------------------------------------


def test_error_tree() -> None:
    from wecom_sdk import (
        ApiError,
        EncryptError,
        PermissionDenied,
        RateLimited,
        TokenInvalid,
        TransportError,
        WeComError,
        api_error,
    )

    codes = {
        SignatureError: -40001,
        TimestampError: -40001,
        InvalidAESKeyError: -40004,
        ReceiveIdError: -40005,
        EncryptError: -40006,
        DecryptError: -40007,
        XmlError: -40002,
    }
    for cls, code in codes.items():
        assert cls().errcode == code
        assert issubclass(cls, WeComError)
        assert issubclass(cls, CryptoError) is (cls is not XmlError)
    assert DecryptError("x", errcode=-40010).errcode == -40010
    assert str(DecryptError("bad", errcode=-40008)) == "[-40008] bad"
    assert TransportError("timeout", path="/cgi-bin/gettoken").errcode is None

    mapped = {40014: TokenInvalid, 42001: TokenInvalid, 45009: RateLimited, 48002: PermissionDenied}
    for errcode, api_cls in mapped.items():
        err = api_error(errcode, "msg", "/cgi-bin/message/send")
        assert type(err) is api_cls
        assert (err.errcode, err.errmsg, err.path) == (errcode, "msg", "/cgi-bin/message/send")
    assert type(api_error(81013, "all invalid", "/p")) is ApiError


def test_errors_pickle_with_their_data() -> None:
    import pickle

    from wecom_sdk import ApiError, TransportError

    api = pickle.loads(pickle.dumps(ApiError(45009, "freq", "/cgi-bin/x")))
    assert (api.errcode, api.errmsg, api.path) == (45009, "freq", "/cgi-bin/x")
    dec = pickle.loads(pickle.dumps(DecryptError("b64", errcode=-40010)))
    assert (dec.errcode, dec.message) == (-40010, "b64")
    assert pickle.loads(pickle.dumps(TransportError("t", path="/p"))).path == "/p"
