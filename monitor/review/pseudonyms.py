"""Pseudonymised review: customers shown as stable pseudonyms (``客户-K7Q2M9XA``) until revealed.

With ``[review] pseudonymise`` on, every review page shows a customer's id and name as one
pseudonym: the first 40 bits of HMAC-SHA256(key, customer id) in Crockford base32. The same key
gives the same pseudonym in every worker and every request; another key gives others. The key is
``[review] pseudonym_key`` (env ``REVIEW_PSEUDONYM_KEY``), else a random one generated once and
kept in the ``review_secret`` table (``monitor.review.review_secrets``), so every worker agrees. It is never
logged. Message *text* is never rewritten: a customer who types their own phone number shows it.

A reviewer reveals one customer by giving a reason (``monitor.review.reveal_pages``); the reveal
is an audit row (action ``reveal``, target the customer id) and lasts ``reveal_minutes`` for that
reviewer (every worker reads the audit trail). Admins see pseudonyms too until they reveal.

The API other pages call (search results, exports)::

    privacy = await pseudonymiser_for(request)       # once per request, reveals loaded
    privacy.customer(customer_id)                     # "客户-K7Q2M9XA", or the id when shown
    privacy.name(customer_id, name)                   # the pseudonym, or the name when shown
    privacy.label(customer_id, name)                  # "id（name）" or the pseudonym
    privacy.conversation(conversation_id)             # "kf:wk1:客户-K7Q2M9XA"
    privacy.author(direction, from_user)              # a message author (customers only)
    privacy.text_of(text, customer_ids)               # those ids replaced inside a string
    privacy.seal(value) / privacy.unseal(token)       # an opaque reference for forms
    await revealed(request, customer_id)              # whether this reviewer may see it

Off (the default), every method returns what it is given, so a page renders as before.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, select

from monitor.archive.audit import AUDIT
from monitor.archive.export import ExportRow
from monitor.archive.upsert import insert_ignore
from monitor.review.auth import current_reviewer, services_of
from monitor.review.review_secrets import PSEUDONYM_KEY, SECRETS
from wecom_sdk.messages.msgaudit import is_external_id

__all__ = [
    "KEY_CACHE",
    "PREFIX",
    "REVEAL_ACTION",
    "HiddenCustomer",
    "KeyCache",
    "Pseudonymiser",
    "load_secret",
    "pseudonym",
    "pseudonymiser_for",
    "revealed",
    "revealed_customers",
]

PREFIX = "客户-"
"""What every customer pseudonym starts with."""
REVEAL_ACTION = "reveal"
"""The audit action of a reveal (target: the customer id; detail: reason and pseudonym)."""

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def load_secret(conn: Connection, name: str, now: datetime) -> bytes:
    """The key ``name``, made (32 random bytes) if there is none yet.

    Insert-if-absent, then read back: two workers racing both read the one that won.
    """
    fresh = base64.urlsafe_b64encode(os.urandom(32)).decode()
    conn.execute(
        insert_ignore(conn.dialect, SECRETS, ["name"]),
        {"name": name, "value": fresh, "created_at": now},
    )
    stored = conn.execute(select(SECRETS.c.value).where(SECRETS.c.name == name)).scalar_one()
    return base64.urlsafe_b64decode(stored)


def pseudonym(key: bytes, customer_id: str) -> str:
    """The stable pseudonym of ``customer_id`` under ``key``: ``客户-`` and 8 base32 characters."""
    digest = hmac.new(key, b"customer\x00" + customer_id.encode("utf-8"), hashlib.sha256).digest()
    bits = int.from_bytes(digest[:5], "big")
    chars = [_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5)]
    return PREFIX + "".join(chars)


@dataclass(frozen=True, slots=True)
class HiddenCustomer:
    """A customer shown as a pseudonym, and the opaque reference that reveals them."""

    pseudonym: str
    ref: str


@dataclass(frozen=True, slots=True)
class Pseudonymiser:
    """How one reviewer sees customers on one request (see the module docstring).

    ``shown`` are the customer ids this reviewer revealed (and may see as they are).
    """

    key: bytes
    enabled: bool = True
    shown: frozenset[str] = field(default_factory=frozenset)
    reveal_minutes: int = 0
    """How long a reveal lasts (what the reveal form tells the reviewer)."""

    def revealed(self, customer_id: str) -> bool:
        """Whether ``customer_id`` is shown as it is (pseudonymising off, or revealed)."""
        return not self.enabled or customer_id in self.shown

    def customer(self, customer_id: str) -> str:
        """The customer id as this reviewer may see it ("" stays "")."""
        if not customer_id or self.revealed(customer_id):
            return customer_id
        return pseudonym(self.key, customer_id)

    def name(self, customer_id: str, name: str) -> str:
        """The customer's display name as this reviewer may see it: hidden, the pseudonym."""
        if not name or self.revealed(customer_id):
            return name
        return pseudonym(self.key, customer_id)

    def label(self, customer_id: str, name: str = "") -> str:
        """``id（name）`` when shown; the pseudonym alone when hidden ("" for no customer)."""
        if not customer_id:
            return name
        if not self.revealed(customer_id):
            return pseudonym(self.key, customer_id)
        return f"{customer_id}（{name}）" if name else customer_id

    def author(self, direction: str, from_user: str) -> str:
        """A message's author: a customer's id pseudonymised, staff and the bot as they are."""
        if direction == "customer" or (direction != "staff" and is_external_id(from_user)):
            return self.customer(from_user)
        return from_user

    def conversation(self, conversation_id: str) -> str:
        """A conversation id with the customer id in it pseudonymised (a title, never a key).

        ``app:<user>`` and ``kf:<kf account>:<customer>`` end with the customer; 会话内容存档
        ids (``ma:<staff>:<customer>``) name customers by their external id (``wm…``/``wo…``);
        group chats (``ma:room:<roomid>``) name none.
        """
        if not self.enabled:
            return conversation_id
        channel, sep, rest = conversation_id.partition(":")
        if not sep:
            return conversation_id
        if channel == "app":
            return f"app:{self.customer(rest)}"
        if channel == "kf":
            account, sep, customer = rest.rpartition(":")
            return f"kf:{account}:{self.customer(customer)}" if sep else conversation_id
        if channel == "ma" and not rest.startswith("room:"):
            parts = rest.split(":")
            return "ma:" + ":".join(self.customer(p) if is_external_id(p) else p for p in parts)
        return conversation_id

    def text_of(self, text: str, customer_ids: Iterable[str]) -> str:
        """``text`` with each of ``customer_ids`` (hidden ones) replaced by its pseudonym.

        For strings built from ids (titles, file names), never for chat text: messages are shown
        as written.
        """
        if not self.enabled:
            return text
        for customer_id in sorted({c for c in customer_ids if c}, key=len, reverse=True):
            if not self.revealed(customer_id):
                text = text.replace(customer_id, pseudonym(self.key, customer_id))
        return text

    def export_row(self, row: ExportRow) -> ExportRow:
        """An exported message as this reviewer may see it: the customer in its conversation id
        and a customer sender pseudonymised; the text as written."""
        if not self.enabled:
            return row
        conversation = self.conversation(row.conversation) if row.conversation else None
        sender = self.author(row.direction or "", row.sender)
        return replace(row, conversation=conversation, sender=sender)

    def hidden(self, *customer_ids: Iterable[str]) -> list[HiddenCustomer]:
        """The customers among ``customer_ids`` this reviewer sees as pseudonyms, each with the
        sealed reference a reveal form posts (``ref``), in pseudonym order."""
        if not self.enabled:
            return []
        ids = {c for group in customer_ids for c in group if c and not self.revealed(c)}
        found = [HiddenCustomer(pseudonym(self.key, c), self.seal(c)) for c in ids]
        return sorted(found, key=lambda h: h.pseudonym)

    def seal(self, value: str) -> str:
        """An opaque, tamper-proof token of ``value`` (AES-GCM under a key derived from ``key``):
        what a form carries instead of a customer id or a URL that names one."""
        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self._seal_key()).encrypt(nonce, value.encode("utf-8"), b"review-ref")
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def unseal(self, token: str) -> str | None:
        """The value :meth:`seal` sealed, or None for a token it did not make."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            plain = AESGCM(self._seal_key()).decrypt(raw[:12], raw[12:], b"review-ref")
        except (ValueError, InvalidTag):
            return None
        return plain.decode("utf-8", "replace")

    def _seal_key(self) -> bytes:
        return hmac.new(self.key, b"seal", hashlib.sha256).digest()


class KeyCache:
    """The pseudonym key of one worker: the configured one, else the database's (read once)."""

    def __init__(self, configured: str = "") -> None:
        self._key: bytes | None = configured.encode("utf-8") if configured else None
        self._lock = asyncio.Lock()

    async def get(self, engine: Engine, now: datetime) -> bytes:
        if self._key is not None:
            return self._key
        async with self._lock:
            if self._key is None:

                def read() -> bytes:
                    with engine.begin() as conn:
                        return load_secret(conn, PSEUDONYM_KEY, now)

                self._key = await asyncio.to_thread(read)
        return self._key


KEY_CACHE = web.AppKey("review_pseudonym_keys", KeyCache)
"""Set on the review sub-app by ``monitor.review.reveal_pages.add_privacy_routes``."""
_PSEUDONYMISER = web.RequestKey("review_pseudonymiser", Pseudonymiser)


def revealed_customers(conn: Connection, actor: str, since: datetime) -> frozenset[str]:
    """Customer ids ``actor`` revealed at or after ``since`` (from the audit trail)."""
    rows = conn.execute(
        select(AUDIT.c.target).where(
            AUDIT.c.action == REVEAL_ACTION, AUDIT.c.actor == actor, AUDIT.c.at >= since
        )
    )
    return frozenset(row.target for row in rows)


async def pseudonymiser_for(request: web.Request) -> Pseudonymiser:
    """The request's :class:`Pseudonymiser` (its reviewer's live reveals), made once a request."""
    if _PSEUDONYMISER in request:
        return request[_PSEUDONYMISER]
    services = services_of(request)
    settings = services.settings
    made: Pseudonymiser
    if not settings.pseudonymise:
        made = Pseudonymiser(b"", enabled=False)
    else:
        now = services.clock()
        key = await request.config_dict[KEY_CACHE].get(services.engine, now)
        actor = current_reviewer(request).username
        since = now - timedelta(minutes=settings.reveal_minutes)

        def read() -> frozenset[str]:
            with services.engine.connect() as conn:
                return revealed_customers(conn, actor, since)

        shown = await asyncio.to_thread(read)
        made = Pseudonymiser(key, shown=shown, reveal_minutes=settings.reveal_minutes)
    request[_PSEUDONYMISER] = made
    return made


async def revealed(request: web.Request, customer_id: str) -> bool:
    """Whether the request's reviewer may see ``customer_id`` as it is."""
    return (await pseudonymiser_for(request)).revealed(customer_id)
