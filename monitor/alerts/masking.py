"""Mask mainland phone, ID-card and bank-card numbers in alert text (pure).

Alerts go to managers' phones and to team rooms; the full numbers stay in the archive, where the review
UI shows them to reviewers only. Masking is deliberately conservative about what counts as a number:

* A **phone** is ``1[3-9]`` + 9 digits, optionally written ``138 1234 5678`` / ``138-1234-5678`` and
  optionally prefixed ``+86`` / ``86``; it becomes ``138****5678`` (``138-****-5678``).
* An **ID card** is 17 digits + a digit or ``X`` whose GB 11643 check digit is right, or 15 digits whose
  birth date (YYMMDD at 7..12) is a real date; it keeps its first 3 and last 2 characters.
* A **bank card** is a run of 16-19 digits that passes the Luhn check; it keeps its first 4 and last 4.

Trade-off: a number is only recognised when it is not glued to other ASCII letters or digits. An
11-digit run inside ``SO2026138123456789`` or ``TB13812345678A`` is an order or tracking number, and
mangling those makes alerts useless to the manager who has to look the order up; a phone written that
way is rare, and the reviewer still sees the original. Chinese text, punctuation and spaces around a
number are boundaries (``电话13812345678``). The check-digit rules keep ordinary 15-19 digit order numbers
intact (roughly 1 in 10 random runs passes Luhn; such a masked order number is the accepted cost).

Full-width digits (``１３８…``) are recognised too. Masking is **length-preserving** (each hidden digit
becomes one ``*``, separators stay), so a hit's ``start:end`` span still points at the same place in the
masked text; the alert cards rely on this to mark matched words after masking.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = ["mask_sensitive"]

_D = "[0-9\uff10-\uff19]"  # ASCII and full-width digits; not \d, which also matches e.g. Arabic-Indic
_SEP = "[ \\-\u3000\uff0d]"  # space, dash, ideographic space, full-width dash
_EDGE = "0-9A-Za-z\uff10-\uff19"

_PATTERN = re.compile(
    # A long unbroken run first: ID cards and bank cards.
    rf"(?<![{_EDGE}])(?P<run>{_D}{{15,19}}[Xx]?)(?![{_EDGE}])"
    # Then a phone, optionally +86 and with 3-4-4 separators.
    rf"|(?<![{_EDGE}+\uff0b])(?P<cc>[+\uff0b]?86{_SEP}?)?"
    rf"(?P<phone>[1\uff11][3-9\uff13-\uff19]{_D}{_SEP}?{_D}{{4}}{_SEP}?{_D}{{4}})(?![{_EDGE}])"
)

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def _ascii(digits: str) -> str:
    """Full-width digits -> ASCII, for the arithmetic checks only."""
    return digits.translate({0xFF10 + i: ord("0") + i for i in range(10)})


def _real_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _is_id18(s: str) -> bool:
    if len(s) != 18 or not s[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != s[17].upper():
        return False
    return _real_date(int(s[6:10]), int(s[10:12]), int(s[12:14]))


def _is_id15(s: str) -> bool:
    # Old IDs have no check digit: the birth date is the only signal that it is not an order number.
    return (
        len(s) == 15 and s.isdigit() and _real_date(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12]))
    )


def _luhn(s: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(s)):
        n = int(c) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def _keep(s: str, head: int, tail: int) -> str:
    return s[:head] + "*" * (len(s) - head - tail) + s[-tail:]


def _replace(m: re.Match[str]) -> str:
    run = m.group("run")
    if run is not None:
        plain = _ascii(run)
        if _is_id18(plain) or _is_id15(plain):
            return _keep(run, 3, 2)
        if plain.isdigit() and 16 <= len(plain) <= 19 and _luhn(plain):
            return _keep(run, 4, 4)
        return run
    phone = m.group("phone")
    out, seen = [], 0
    for c in phone:
        if re.fullmatch(_D, c):
            seen += 1
            out.append("*" if 4 <= seen <= 7 else c)
        else:
            out.append(c)
    return (m.group("cc") or "") + "".join(out)


def mask_sensitive(text: str) -> str:
    """Return ``text`` with phone, ID-card and bank-card numbers masked; idempotent.

    Example: ``"电话 138-1234-5678"`` -> ``"电话 138****5678"``.
    """
    return _PATTERN.sub(_replace, text)
