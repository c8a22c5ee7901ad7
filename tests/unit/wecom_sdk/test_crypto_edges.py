"""Edges of the callback crypto that mutation testing found unguarded: the default timestamp
window's exact bound, a zero window, and the errcode of an echostr that is not UTF-8."""

from __future__ import annotations

import pytest

from tests.support.app import AES_KEY, CORP_ID, TOKEN
from wecom_sdk.crypto import MsgCrypto
from wecom_sdk.errors import DecryptError, TimestampError

NOW = 1_700_000_000


def _open_at(crypto: MsgCrypto, timestamp: int) -> bytes:
    encrypt = crypto.encrypt(b"<xml><MsgId>1</MsgId></xml>")
    signature = crypto.sign(str(timestamp), "nonce", encrypt)
    return crypto.open(signature, str(timestamp), "nonce", encrypt)


@pytest.mark.parametrize("offset", [-300, 300])
def test_default_window_accepts_exactly_300_seconds(offset: int) -> None:
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID, clock=lambda: NOW)
    assert _open_at(crypto, NOW + offset).startswith(b"<xml>")


@pytest.mark.parametrize("offset", [-301, 301])
def test_default_window_refuses_301_seconds(offset: int) -> None:
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID, clock=lambda: NOW)
    with pytest.raises(TimestampError):
        _open_at(crypto, NOW + offset)


def test_a_zero_window_is_allowed_and_exact() -> None:
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID, max_skew_s=0, clock=lambda: NOW)
    assert _open_at(crypto, NOW).startswith(b"<xml>")
    with pytest.raises(TimestampError):
        _open_at(crypto, NOW + 1)
    with pytest.raises(ValueError, match="max_skew_s"):
        MsgCrypto(TOKEN, AES_KEY, CORP_ID, max_skew_s=-1)


def test_echostr_that_is_not_utf8_is_decrypt_error_40008() -> None:
    crypto = MsgCrypto(TOKEN, AES_KEY, CORP_ID)
    echostr = crypto.encrypt(b"\xff\xfe not utf-8")
    signature = crypto.sign("1409659589", "263014780", echostr)
    with pytest.raises(DecryptError) as info:
        crypto.verify_url(signature, "1409659589", "263014780", echostr)
    assert info.value.errcode == -40008
