"""Masking of phone, ID-card and bank-card numbers in alert text (monitor.alerts.masking)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.alerts.masking import mask_sensitive

POSITIVES = [
    ("我的电话13812345678，快点联系", "我的电话138****5678，快点联系"),
    ("电话：138 1234 5678。", "电话：138 **** 5678。"),
    ("手机138-1234-5678吧", "手机138-****-5678吧"),
    ("+86 13912345678", "+86 139****5678"),
    ("＋86-15912345678", "＋86-159****5678"),
    ("8613812345678", "86138****5678"),
    ("全角１３８１２３４５６７８号码", "全角１３８****５６７８号码"),
    ("(13812345678)", "(138****5678)"),
    ("身份证11010519491231002X给你", "身份证110*************2X给你"),
    ("身份证号：11010519491231002x", "身份证号：110*************2x"),
    ("老身份证110105491231002", "老身份证110**********02"),
    ("卡号 6222021234567890128 转账", "卡号 6222***********0128 转账"),
    ("两个号码13812345678和13912345678", "两个号码138****5678和139****5678"),
]

NEGATIVES = [
    "订单号202611231381234567请查收",  # 18 digits, bad ID check digit, fails Luhn
    "单号SO13812345678已发货",  # glued to letters: an order number, not a phone
    "快递TB13812345678A",
    "编号138123456789",  # 12 digits
    "1381234567",  # 10 digits
    "12345678901",  # 11 digits but 12… is no mobile prefix
    "2026-11-23 10:30 订单金额 1388 元",
    "工号123456，分机 8001",
    "身份证110105194912310021",  # 18 digits with a wrong check digit
    "会员号 123456789012345",  # 15 digits, no valid birth date (month 90)
    "没有数字的句子：维权、投诉、12315",
]


@pytest.mark.parametrize(("text", "expected"), POSITIVES)
def test_masks_positives(text: str, expected: str) -> None:
    assert mask_sensitive(text) == expected


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_negatives(text: str) -> None:
    assert mask_sensitive(text) == text


def test_length_preserving_keeps_spans() -> None:
    text = "客户13812345678说要维权"
    masked = mask_sensitive(text)
    start = text.index("维权")
    assert masked[start : start + 2] == "维权"


_DIGITS = re.compile("[0-9\uff10-\uff19]")
_alphabet = st.sampled_from(list("维权投诉 -+＋Xx86１３０1357924680abc，。\n"))
_texts = st.lists(_alphabet, max_size=60).map("".join)
_no_digits = st.text(max_size=80).filter(lambda s: not _DIGITS.search(s))


@given(_no_digits)
def test_text_without_digits_unchanged(text: str) -> None:
    assert mask_sensitive(text) == text


@given(_texts)
def test_idempotent_and_length_preserving(text: str) -> None:
    once = mask_sensitive(text)
    assert mask_sensitive(once) == once
    assert len(once) == len(text)


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), _no_digits, _no_digits)
def test_any_mobile_between_non_digits_is_masked(phone: str, before: str, after: str) -> None:
    # A letter next to the number makes it an identifier (documented trade-off); keep edges non-ASCII.
    before, after = before.rstrip("+＋") + "，", "。" + after
    masked = mask_sensitive(before + phone + after)
    assert phone not in masked
    assert phone[:3] + "****" + phone[-4:] in masked
