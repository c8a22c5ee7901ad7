"""Safe XML in and out for WeCom's flat ``<xml>…</xml>`` documents.

Parsing refuses DTDs, entity declarations and external references (defusedxml): the callback
envelope is attacker-controlled until its signature has been checked. Rendering writes text as
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

__all__ = ["parse_xml", "render_xml"]

# XML 1.0 names without colons: WeCom never uses namespaces, and refusing ":" keeps a caller's
# key from smuggling markup or a prefix into the document.
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# Characters XML 1.0 cannot carry at all, not even as character references.
_INVALID_CHAR_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_RENDER_ERRCODE = -40011  # WeCom's "generating reply XML failed"


def parse_xml(data: bytes | str) -> dict[str, Any]:
    """Parse a WeCom XML document into a dict of the root's children.

    A leaf gives its text ('' when empty), an element with children a nested dict, and a tag
    that repeats a list of those values. Attributes, comments and the root's own text are ignored.

    Args:
        data: The document, as str or UTF-8 bytes (WeCom sends nothing else).

    Returns:
        The children of the ``<xml>`` root.

    Raises:
        XmlError: Malformed XML, a DTD, an entity declaration, an external reference, or a root
            other than ``xml``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        root = _parse_plain(raw) if _has_no_dtd(raw) else _parse_defused(raw)
    except DefusedXmlException as exc:
        raise XmlError(f"refused XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError, LookupError, TypeError) as exc:
        # ValueError/LookupError: odd or unknown encodings; TypeError: data of the wrong type.
        raise XmlError(f"malformed XML: {exc}") from exc
    if root.tag != "xml":
        raise XmlError(f"root element is <{root.tag}>, expected <xml>")
    return _children(root)


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


def _children(element: Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in element:
        value: Any = _children(child) if len(child) else (child.text or "")
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
