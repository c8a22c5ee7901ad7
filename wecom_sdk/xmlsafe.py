"""Safe XML in and out for WeCom's ``<xml>…</xml>`` documents.

Two readers. :func:`envelope_fields` reads a callback's envelope, which is attacker-controlled until
its signature has been checked, with a flat scan that is not an XML parser: WeCom's envelope is
three text fields under ``<xml>``, so anything else (nesting, attributes, comments, a DTD, entity
references) is refused in time linear in the body, before any signature, decryption or parse work.
:func:`parse_xml` reads the decrypted inner message: DTDs, entity declarations and external
references are refused (defusedxml), and documents deeper than ``max_depth`` or larger than
``max_bytes`` are refused, so no input reaches Python's recursion limit. Rendering writes text as
CDATA so any string round-trips. Named ``xmlsafe`` because ``xml`` would shadow the stdlib.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.etree.ElementTree import Element, ParseError, XMLParser

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .errors import XmlError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "envelope_fields", "parse_xml", "render_xml"]

#: Deepest element nesting parse_xml accepts below the root. WeCom's deepest known message
#: (template_card_event: SelectedItems/SelectedItem/OptionIds/OptionId) uses 4 levels; 32 leaves
#: room for types not modelled yet and stays far below Python's recursion limit.
MAX_DEPTH = 32
#: Largest document parse_xml accepts, in bytes. A callback's inner message is at most 3/4 of its
#: body (base64), and bodies are bounded by ``[server].max_body_bytes`` (64 KiB by default).
MAX_BYTES = 1024 * 1024

# XML 1.0 names without colons: WeCom never uses namespaces, and refusing ":" keeps a caller's
# key from smuggling markup or a prefix into the document.
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Characters XML 1.0 cannot carry at all, not even as character references.
_INVALID_CHAR_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_RENDER_ERRCODE = -40011  # WeCom's "generating reply XML failed"

#: Most fields an envelope may hold (WeCom sends ToUserName, Encrypt and AgentID).
_ENVELOPE_MAX_FIELDS = 16
# An optional UTF-8 BOM and XML declaration, then the root's start tag.
_ENVELOPE_START_RE = re.compile(rb"(?:\xef\xbb\xbf)?(?:<\?xml[^<>?]{0,200}\?>)?[ \t\r\n]*<xml>")
_FIELD_NAME = rb"([A-Za-z_][A-Za-z0-9_.\-]{0,63})"
# A whole field in one step, as WeCom writes them: one CDATA section (group 2) or plain text
# (group 3). Possessive repeats: no backtracking, so linear whatever the input.
_SIMPLE_FIELD_RE = re.compile(
    rb"[ \t\r\n]*<" + _FIELD_NAME + rb"[ \t\r\n]*>"
    rb"(?:<!\[CDATA\[((?:[^\]]++|\](?!\]>))*+)\]\]>|([^<&\]]*+))</\1>"
)
# Any other field's start tag (group 2 is "/" for an empty element); _field_text reads the rest.
_FIELD_TAG_RE = re.compile(rb"[ \t\r\n]*<" + _FIELD_NAME + rb"[ \t\r\n]*(/?)>")
_ENVELOPE_END_RE = re.compile(rb"[ \t\r\n]*</xml>[ \t\r\n]*")
# What XML 1.0 forbids, as UTF-8: C0 controls but tab, LF and CR (U+FFFE/U+FFFF are checked as
# their byte sequences; the strict UTF-8 decoder refuses surrogates).
_FORBIDDEN_CONTROLS = bytes(c for c in range(0x20) if c not in b"\t\n\r")
_CDATA_OPEN = b"<![CDATA["
_CDATA_CLOSE = b"]]>"


def parse_xml(
    data: bytes | str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> dict[str, Any]:
    """Parse a WeCom XML document into a dict of the root's children.

    A leaf gives its text ('' when empty), an element with children a nested dict, and a tag
    that repeats a list of those values. Attributes, comments and the root's own text are ignored.

    Args:
        data: The document, as str or UTF-8 bytes (WeCom sends nothing else).
        max_depth: Deepest nesting accepted below the root (its children are at depth 1).
        max_bytes: Largest accepted document, in (UTF-8) bytes.

    Returns:
        The children of the ``<xml>`` root.

    Raises:
        XmlError: Malformed XML, a DTD, an entity declaration, an external reference, a root
            other than ``xml``, nesting deeper than ``max_depth`` or more than ``max_bytes``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise XmlError(f"document larger than {max_bytes} bytes")
    try:
        root = _parse_plain(raw) if _has_no_dtd(raw) else _parse_defused(raw)
    except DefusedXmlException as exc:
        raise XmlError(f"refused XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError, LookupError, TypeError) as exc:
        # ValueError/LookupError: odd or unknown encodings; TypeError: data of the wrong type.
        raise XmlError(f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise XmlError(f"root element is <{root.tag}>, expected <xml>")
    return _children(root, max_depth)


def envelope_fields(data: bytes) -> dict[str, str]:
    """Read the fields of a callback envelope with a flat scan, never an XML parse.

    WeCom POSTs ``<xml><ToUserName>…</ToUserName><Encrypt>…</Encrypt><AgentID>…</AgentID></xml>``
    (protocol doc §1.2), and only ``Encrypt`` is signed, so this reads exactly that shape: an
    optional UTF-8 BOM and XML declaration, then ``<xml>`` holding at most 16 distinct fields, each
    ``<Name>text</Name>`` or ``<Name/>``, with whitespace between them. A field's text is CDATA
    sections and plain text; a value is what an XML parser would give for it. Every step moves
    forward through ``data``, so the scan is linear in its length whatever it holds.

    Raises:
        XmlError: Anything else: nesting, attributes, comments, processing instructions, a DTD,
            entity or character references, a repeated field, text that is not UTF-8 or holds
            characters XML 1.0 forbids, or anything after ``</xml>``.
    """
    if len(data.translate(None, _FORBIDDEN_CONTROLS)) != len(data) or (
        b"\xef\xbf\xbe" in data or b"\xef\xbf\xbf" in data
    ):
        raise XmlError("envelope holds characters XML 1.0 does not allow")
    start = _ENVELOPE_START_RE.match(data)
    if start is None:
        raise XmlError("callback body is not an <xml> envelope")
    pos = start.end()
    fields: dict[str, str] = {}
    while True:
        field = _SIMPLE_FIELD_RE.match(data, pos)
        if field is not None:
            name, raw, pos = field[1], field[2] if field[2] is not None else field[3], field.end()
        elif (tag := _FIELD_TAG_RE.match(data, pos)) is not None:
            name = tag[1]
            if tag[2]:
                raw, pos = b"", tag.end()
            else:
                raw, pos = _field_text(data, tag.end(), b"</" + name + b">")
        else:
            break
        _add_field(fields, name.decode("ascii"), raw)
    if _ENVELOPE_END_RE.fullmatch(data, pos) is None:
        raise XmlError("envelope holds something other than flat text fields")
    return fields


def _add_field(fields: dict[str, str], name: str, raw: bytes) -> None:
    if name in fields:
        raise XmlError(f"envelope repeats <{name}>")
    if len(fields) == _ENVELOPE_MAX_FIELDS:
        raise XmlError(f"envelope has more than {_ENVELOPE_MAX_FIELDS} fields")
    if b"\r" in raw:  # XML end-of-line handling, as a parser applies it
        raw = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    try:
        fields[name] = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise XmlError("envelope field is not UTF-8") from None


def _field_text(data: bytes, pos: int, end_tag: bytes) -> tuple[bytes, int]:
    """The raw text of the field starting at ``pos`` (CDATA sections and plain text, in any
    order), and the position after ``end_tag``."""
    parts: list[bytes] = []
    while not data.startswith(end_tag, pos):
        if data.startswith(_CDATA_OPEN, pos):
            end = data.find(_CDATA_CLOSE, pos + len(_CDATA_OPEN))
            if end < 0:
                raise XmlError("unterminated CDATA section in the envelope")
            parts.append(data[pos + len(_CDATA_OPEN) : end])
            pos = end + len(_CDATA_CLOSE)
            continue
        end = data.find(b"<", pos)
        if end < 0:
            raise XmlError("unterminated field in the envelope")
        if end == pos:  # markup that is neither CDATA nor this field's end tag
            raise XmlError("envelope field holds markup")
        text = data[pos:end]
        if b"&" in text or _CDATA_CLOSE in text:
            raise XmlError("envelope field holds a reference or a stray ']]>'")
        parts.append(text)
        pos = end
    return b"".join(parts), pos + len(end_tag)


def _has_no_dtd(data: bytes) -> bool:
    """True when ``data`` provably has no DTD, so no entity can be declared or expanded in it.

    Entities (and external references) can only be declared inside a ``<!DOCTYPE`` declaration;
    without one expat rejects every entity reference but the five predefined ones. The byte search
    is exact because such documents are parsed as UTF-8 only (``_parse_plain``); NUL bytes, which
    XML forbids, are what UTF-16/32 (expat detects those on its own) would contain, so they are
    left to defusedxml, as is any document with an XML declaration (WeCom sends none), so a
    declared encoding keeps its full handling there.
    """
    return (
        not data.startswith((b"<?", b"\xef\xbb\xbf<?"))
        and b"\x00" not in data
        and b"<!DOCTYPE" not in data
        and b"<!ENTITY" not in data
    )


def _parse_plain(data: bytes) -> Element:
    # The C-accelerated parser, with the encoding pinned to UTF-8 so no declaration can change how
    # the bytes checked by _has_no_dtd are read. About 2x faster than defusedxml's pure-Python
    # parser, which matters twice per callback on the hot path.
    parser = XMLParser(encoding="utf-8")
    parser.feed(data)
    return parser.close()


def _parse_defused(data: bytes) -> Element:
    return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def _children(element: Element, depth_left: int) -> dict[str, Any]:
    # The tree is built by expat and the C TreeBuilder, which nest without recursion; this walk is
    # the only recursion, so bounding it here bounds the stack for any input within max_bytes.
    if depth_left <= 0:
        raise XmlError("elements nest deeper than the allowed depth")
    out: dict[str, Any] = {}
    for child in element:
        value: Any = _children(child, depth_left - 1) if len(child) else (child.text or "")
        previous = out.get(child.tag)
        if previous is None:
            out[child.tag] = value
        elif isinstance(previous, list):  # values are str or dict, so a list means "repeated"
            previous.append(value)
        else:
            out[child.tag] = [previous, value]
    return out


def render_xml(fields: Mapping[str, object], root: str = "xml") -> bytes:
    """Render a mapping as a WeCom XML document (UTF-8, no XML declaration).

    ``int`` (and ``bool`` as 0/1) and ``float`` render bare, ``str`` as CDATA, a nested mapping as
    child elements, a list or tuple as the tag repeated once per item, and ``None`` omits the tag.
    For str values ``parse_xml(render_xml(d)) == d``.

    Args:
        fields: Tag name to value, in document order.
        root: Name of the root element.

    Returns:
        The encoded document.

    Raises:
        XmlError: A tag name is not a plain XML name, a value has an unsupported type, or text
            holds characters XML 1.0 cannot represent (errcode -40011).
    """
    out: list[str] = []
    _element(out, root, fields)
    return "".join(out).encode("utf-8")


def _element(out: list[str], tag: str, value: object) -> None:
    # Appends to one list rather than chaining generators: this renders every passive reply.
    if not _NAME_RE.fullmatch(tag):
        raise XmlError(f"invalid XML tag name {tag!r}", errcode=_RENDER_ERRCODE)
    if value is None:
        return
    if isinstance(value, str):
        out.append(f"<{tag}>{_text(value)}</{tag}>")
    elif isinstance(value, list | tuple):
        for item in value:
            if isinstance(item, list | tuple):
                raise XmlError(f"nested list under <{tag}>", errcode=_RENDER_ERRCODE)
            _element(out, tag, item)
    elif isinstance(value, Mapping):
        out.append(f"<{tag}>")
        for key, child in value.items():
            _element(out, str(key), child)
        out.append(f"</{tag}>")
    elif isinstance(value, bool):
        out.append(f"<{tag}>{int(value)}</{tag}>")
    elif isinstance(value, int | float):
        out.append(f"<{tag}>{value!r}</{tag}>")
    else:
        raise XmlError(f"cannot render {type(value).__name__} in <{tag}>", errcode=_RENDER_ERRCODE)


def _text(value: str) -> str:
    """CDATA that parses back to exactly ``value``.

    "]]>" would close the section, so it is split across two sections; "\\r" would be folded into
    "\\n" by the parser's end-of-line handling, so it goes out as a character reference.
    """
    if _INVALID_CHAR_RE.search(value):
        raise XmlError("text holds characters XML 1.0 cannot represent", errcode=_RENDER_ERRCODE)
    parts = value.replace("]]>", "]]]]><![CDATA[>").split("\r")
    return "&#13;".join(f"<![CDATA[{part}]]>" for part in parts)
