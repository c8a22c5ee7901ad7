"""Typed, frozen models of decrypted conversation-archive (会话内容存档) records, and their parser.

One parser (:func:`parse_archive_record`) and one :class:`~wecom_sdk.messages.base.Registry`,
:data:`ARCHIVE_MODELS`, keyed by ``msgtype`` (``switch`` for the records of ``action`` switch,
which have none), as kf items are in :mod:`wecom_sdk.messages.kf`. Model fields name their JSON
key and reader (:func:`~wecom_sdk.messages.kf_fields.json_field`) and are read from the
msgtype-keyed body (``record["text"]``). Types without a model become :class:`ArchiveUnknown`,
which keeps the record raw and offers the obvious text of a few (todo, vote, red packet...).
Every model keeps the record in ``raw`` for archiving; :func:`media_parts` lists the files a
record refers to. Pure code, no I/O.
Format: https://developer.work.weixin.qq.com/document/path/91774 (获取会话内容).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import KfItemError, archive_error
from .kf_fields import json_field, read_float, read_int, read_object, read_str
from .msgaudit_parts import ArchivePart, MediaRef, read_parts
from .msgaudit_record import (
    ARCHIVE_MODELS,
    SWITCH,
    ArchiveCommon,
    ArchiveRecord,
    ArchiveUnknown,
    body_key,
    is_external_id,
    key_of_msgid,
    read_ids,
)

__all__ = [
    "ARCHIVE_MODELS",
    "ArchiveAgree",
    "ArchiveCard",
    "ArchiveChatRecord",
    "ArchiveLink",
    "ArchiveLocation",
    "ArchiveMarkdown",
    "ArchiveMedia",
    "ArchiveMixed",
    "ArchivePart",
    "ArchiveRecord",
    "ArchiveRevoke",
    "ArchiveSwitch",
    "ArchiveText",
    "ArchiveUnknown",
    "ArchiveWeapp",
    "MediaRef",
    "is_external_id",
    "key_of_msgid",
    "media_parts",
    "parse_archive_record",
]


def _join(sep: str, *parts: str) -> str:
    """Join the non-empty parts, so a missing title or description leaves no stray separator."""
    return sep.join(p for p in parts if p)


def _read_agree_time(d: Mapping[str, Any], key: str, where: str) -> int:
    # agree bodies say agree_time, disagree bodies disagree_time.
    return read_int(d, key, where) or read_int(d, f"dis{key}", where)


def _read_size(d: Mapping[str, Any], key: str, where: str) -> int:
    # Images, videos and files say filesize; voice says voice_size, emotion imagesize.
    return (
        read_int(d, key, where)
        or read_int(d, "voice_size", where)
        or read_int(d, "imagesize", where)
    )


@ARCHIVE_MODELS.register("text")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveText(ArchiveRecord):
    """A text message."""

    content: str = json_field("content")

    @property
    def text(self) -> str:
        return self.content


@ARCHIVE_MODELS.register("markdown")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveMarkdown(ArchiveRecord):
    """A markdown message (from an app or robot); the body is ``info`` (``markdown`` also read)."""

    content: str = json_field("content")

    @property
    def text(self) -> str:
        return self.content


@ARCHIVE_MODELS.register("image")
@ARCHIVE_MODELS.register("voice")
@ARCHIVE_MODELS.register("video")
@ARCHIVE_MODELS.register("file")
@ARCHIVE_MODELS.register("emotion")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveMedia(ArchiveRecord):
    """An image, voice message, video, file or emotion (sticker): one file by ``sdkfileid``.

    Attributes:
        sdkfileid: WeCom's id of the file, for ``GetMediaData``.
        md5sum: The file's md5 hex, to verify the download.
        filesize: Bytes (voice: ``voice_size``, emotion: ``imagesize``); 0 when not sent.
        filename: Files only ("" for the other kinds).
    """

    sdkfileid: str = json_field("sdkfileid")
    md5sum: str = json_field("md5sum")
    filesize: int = json_field("filesize", _read_size, 0)
    filename: str = json_field("filename")

    @property
    def kind(self) -> str:
        """image, voice, video, file or emotion."""
        return self.msgtype

    @property
    def media(self) -> tuple[MediaRef, ...]:
        if not self.sdkfileid:
            return ()
        filename = self.filename if self.kind == "file" else ""
        return (MediaRef(self.kind, self.sdkfileid, self.md5sum, self.filesize, filename),)


@dataclass(frozen=True, slots=True, kw_only=True)
class _TitledRecord(ArchiveRecord):
    """A card with a title and a description; ``text`` is both, on two lines."""

    title: str = json_field("title")
    description: str = json_field("description")

    @property
    def text(self) -> str:
        return _join("\n", self.title, self.description)


@ARCHIVE_MODELS.register("link")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveLink(_TitledRecord):
    """A shared link."""

    link_url: str = json_field("link_url")
    image_url: str = json_field("image_url")


@ARCHIVE_MODELS.register("weapp")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveWeapp(_TitledRecord):
    """A mini-program card (小程序)."""

    username: str = json_field("username")
    displayname: str = json_field("displayname")


@ARCHIVE_MODELS.register("location")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveLocation(ArchiveRecord):
    """A shared location; ``text`` is "title address"."""

    title: str = json_field("title")
    address: str = json_field("address")
    latitude: float = json_field("latitude", read_float, 0.0)
    longitude: float = json_field("longitude", read_float, 0.0)
    zoom: int = json_field("zoom", read_int, 0)

    @property
    def text(self) -> str:
        return _join(" ", self.title, self.address)


@ARCHIVE_MODELS.register("card")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveCard(ArchiveRecord):
    """A business card (名片) of ``userid`` at ``corpname``; no text."""

    corpname: str = json_field("corpname")
    userid: str = json_field("userid")


@ARCHIVE_MODELS.register("revoke")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveRevoke(ArchiveRecord):
    """A recall (``action`` recall): ``pre_msgid`` is the message taken back."""

    pre_msgid: str = json_field("pre_msgid")


@ARCHIVE_MODELS.register("agree")
@ARCHIVE_MODELS.register("disagree")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveAgree(ArchiveRecord):
    """An external contact agreed (``agree``) or refused (``disagree``) to be archived.

    Attributes:
        userid: The external contact.
        agree_time: When (ms; ``disagree_time`` in disagree records).
    """

    userid: str = json_field("userid")
    agree_time: int = json_field("agree_time", _read_agree_time, 0)

    @property
    def agreed(self) -> bool:
        """True for agree, False for disagree."""
        return self.msgtype == "agree"


@ARCHIVE_MODELS.register(SWITCH)
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveSwitch(ArchiveRecord):
    """A member switched companies in the client (``action`` switch): no message, no text.

    Attributes:
        time: When (ms); also given as ``msgtime``.
        user: The member; also given as ``from_user``.
    """

    time: int = json_field("time", read_int, 0)
    user: str = json_field("user")


@ARCHIVE_MODELS.register("mixed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveMixed(ArchiveRecord):
    """Text and images in one message (图文混排); ``text`` is its text parts, one a line."""

    parts: tuple[ArchivePart, ...] = json_field("item", read_parts, ())

    @property
    def text(self) -> str:
        return _join("\n", *(p.text for p in self.parts))

    @property
    def media(self) -> tuple[MediaRef, ...]:
        return tuple(m for p in self.parts for m in p.media)


@ARCHIVE_MODELS.register("chatrecord")
@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveChatRecord(ArchiveRecord):
    """A forwarded chat record (聊天记录); ``text`` is its text messages, one a line."""

    title: str = json_field("title")
    parts: tuple[ArchivePart, ...] = json_field("item", read_parts, ())

    @property
    def text(self) -> str:
        return _join("\n", *(p.text for p in self.parts))

    @property
    def media(self) -> tuple[MediaRef, ...]:
        return tuple(m for p in self.parts for m in p.media)


def media_parts(record: ArchiveRecord) -> tuple[MediaRef, ...]:
    """The files a record refers to: its own (image, voice, video, file, emotion) or those of
    its parts (mixed, chat record, nested ones too), in order; () for the rest."""
    return record.media


_NOT_JSON = object()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_archive_record(text: str | bytes) -> ArchiveRecord:
    """The typed model of one decrypted record (the text ``DecryptData`` returns).

    Raw control characters inside strings are accepted (``strict=False``): WeCom's text holds
    them. Missing or null optional fields take defaults ("" / 0); types without a model are
    kept as :class:`ArchiveUnknown`.

    Raises:
        RecordUndecryptable: 10002 when the text is not a JSON object, has no msgid, or has a
            field of the wrong JSON type (``text.content should be a string``: the message
            names the field, never a value).
    """
    try:
        loaded = json.loads(text, strict=False, parse_constant=_refuse_constant)
    # UnicodeDecodeError is a ValueError; RecursionError: absurdly deep nesting.
    except (ValueError, RecursionError):
        # Raised outside the handler so the error holds no reference to the decoder's error,
        # whose .doc is the whole plaintext.
        loaded = _NOT_JSON
    if loaded is _NOT_JSON:
        raise archive_error(10002, "decrypted message is not JSON")
    if not isinstance(loaded, dict):
        raise archive_error(10002, "decrypted message is not a JSON object")
    try:
        return _build(loaded)
    except KfItemError as exc:
        # The readers' messages name the field and what it should be, never its value.
        detail = exc.message
    raise archive_error(10002, f"decrypted message: {detail}")


def _build(item: dict[str, Any]) -> ArchiveRecord:
    msgid = read_str(item, "msgid")
    if not msgid:
        raise KfItemError("msgid is missing", field="msgid")
    action = read_str(item, "action")
    msgtype = read_str(item, "msgtype")
    from_user = read_str(item, "from")
    msgtime = read_int(item, "msgtime")
    if action == SWITCH:
        # Switch records say who and when as "user" and "time", and have no body.
        model: type[ArchiveRecord] = ARCHIVE_MODELS.lookup(SWITCH)
        msgtype = msgtype or SWITCH
        from_user = from_user or read_str(item, "user")
        msgtime = msgtime or read_int(item, "time")
        body: Mapping[str, Any] = item
        where = ""
    else:
        model = ARCHIVE_MODELS.lookup(msgtype)
        where = body_key(item, msgtype)
        # An unknown msgtype's body may have any shape: it is kept raw, not read.
        body = {} if model is ArchiveUnknown else read_object(item, where)
    common = ArchiveCommon(
        msgid=msgid,
        action=action,
        from_user=from_user,
        tolist=read_ids(item, "tolist"),
        roomid=read_str(item, "roomid"),
        msgtime=msgtime,
        msgtype=msgtype,
        raw=item,
    )
    return model._build(common, body, where)
