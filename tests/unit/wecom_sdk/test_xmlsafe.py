"""parse_xml refuses hostile XML within its depth and size limits; envelope_fields reads only
WeCom's flat callback envelope, in linear time; render_xml round-trips any text."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wecom_sdk import XmlError, parse_xml, render_xml
from wecom_sdk.xmlsafe import _ENVELOPE_MAX_FIELDS, MAX_BYTES, MAX_DEPTH, envelope_fields

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<xml><Content>&lol3;</Content></xml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><Content>&xxe;</Content></xml>"""


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, id="external-entity"),
        pytest.param(b"<!DOCTYPE xml><xml><a>b</a></xml>", id="bare-doctype"),
        pytest.param(
            b'<!DOCTYPE xml SYSTEM "http://example.invalid/x.dtd"><xml/>', id="external-dtd"
        ),
        pytest.param(b"<xml><a>b</xml>", id="malformed"),
        pytest.param(b"<xml><a>&undefined;</a></xml>", id="undefined-entity"),
        pytest.param(b"", id="empty"),
        pytest.param("plain text", id="not-xml"),
        pytest.param(b"<root><a>b</a></root>", id="wrong-root"),
        pytest.param(b"<xml/><xml/>", id="two-roots"),
        pytest.param(b'<?xml version="1.0" encoding="bogus"?><xml/>', id="unknown-encoding"),
    ],
)
def test_refused(data: bytes | str) -> None:
    with pytest.raises(XmlError) as exc:
        parse_xml(data)
    assert exc.value.errcode == -40002


def test_shapes() -> None:
    doc = b"""<xml>
      <Leaf><![CDATA[  spaced  ]]></Leaf><Bare>42</Bare><Empty></Empty><SelfClosed/>
      <Nested a="ignored"><Inner>x</Inner><Deeper><Deepest>y</Deepest></Deeper></Nested>
      <Item>1</Item><Item>2</Item><Item><K>v</K></Item>
    </xml>"""
    assert parse_xml(doc) == {
        "Leaf": "  spaced  ",
        "Bare": "42",
        "Empty": "",
        "SelfClosed": "",
        "Nested": {"Inner": "x", "Deeper": {"Deepest": "y"}},
        "Item": ["1", "2", {"K": "v"}],
    }


def test_character_references_are_not_entities() -> None:
    assert parse_xml(b"<xml><a>&lt;&#13;&#x4e2d;</a></xml>") == {"a": "<\r中"}


def test_str_and_declared_encodings() -> None:
    assert parse_xml("<xml><a>中文</a></xml>") == {"a": "中文"}
    assert parse_xml('<?xml version="1.0" encoding="UTF-8"?><xml><a>中文</a></xml>'.encode()) == {
        "a": "中文"
    }
    # WeCom only sends UTF-8; expat refuses multi-byte legacy encodings, and so do we.
    with pytest.raises(XmlError):
        parse_xml('<?xml version="1.0" encoding="gbk"?><xml><a>中文</a></xml>'.encode("gbk"))


@pytest.mark.parametrize(
    "text",
    ["]]>", "a]]>b]]>c", "]]]]>>", "<![CDATA[x]]>", "中文 维权 12315", "\r\n\r", "&amp;<>\"'"],
)
def test_text_round_trips(text: str) -> None:
    assert parse_xml(render_xml({"Content": text})) == {"Content": text}


def test_render_shapes() -> None:
    out = render_xml(
        {
            "S": "x",
            "I": 7,
            "B": True,
            "F": 1.5,
            "None": None,
            "M": {"A": "1", "B": 2},
            "L": [{"K": "a"}, {"K": "b"}],
        }
    )
    assert out == (
        b"<xml><S><![CDATA[x]]></S><I>7</I><B>1</B><F>1.5</F><M><A><![CDATA[1]]></A><B>2</B></M>"
        b"<L><K><![CDATA[a]]></K></L><L><K><![CDATA[b]]></K></L></xml>"
    )
    assert not out.startswith(b"<?xml")
    assert render_xml({}, root="root") == b"<root></root>"


@pytest.mark.parametrize(
    "fields",
    [
        {"bad tag": "x"},
        {"a><b": "x"},
        {"ns:tag": "x"},
        {"": "x"},
        {"T": b"bytes"},
        {"T": object()},
        {"T": [["nested"]]},
        {"T": "nul\x00"},
        {"T": "\ufffe"},
    ],
)
def test_render_refuses(fields: dict[str, Any]) -> None:
    with pytest.raises(XmlError) as exc:
        render_xml(fields)
    assert exc.value.errcode == -40011


# XML 1.0 can carry every character except controls other than \t \n \r, surrogates, U+FFFE/FFFF.
xml_text = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\ufffe\uffff").filter(
        lambda c: c in "\t\n\r" or c >= " "
    )
)
tags = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
leaf = xml_text | st.lists(xml_text, min_size=2, max_size=3)
documents = st.dictionaries(tags, leaf | st.dictionaries(tags, leaf, min_size=1, max_size=3))


@given(documents)
def test_round_trip_property(d: dict[str, Any]) -> None:
    assert parse_xml(render_xml(d)) == d


# The fast path (C parser, no DTD possible) must agree with defusedxml on every document it takes,
# and leave every document that could carry a DTD to defusedxml.
tricky_text = st.lists(
    st.sampled_from(["<!DOCTYPE x>", "<!ENTITY", "]]>", "&", "中", "a", "\r"])
).map("".join)


@given(st.dictionaries(st.sampled_from(["Content", "MsgType", "Title"]), tricky_text, min_size=1))
def test_fast_path_agrees_with_defusedxml(d: dict[str, str]) -> None:
    from wecom_sdk.xmlsafe import _children, _parse_defused

    data = render_xml(d)
    assert parse_xml(data) == _children(_parse_defused(data), MAX_DEPTH) == d


@pytest.mark.parametrize(
    "data",
    [
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><C>&a;</C></xml>'.encode("utf-16"),
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><C>&a;</C></xml>'.encode("utf-16-le"),
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><xml><C>&a;</C></xml>',
        b'\xef\xbb\xbf<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><C>&a;</C></xml>',
    ],
    ids=["utf-16-bom", "utf-16-le-no-bom", "declaration", "utf-8-bom"],
)
def test_dtd_hidden_by_encoding_is_still_refused(data: bytes) -> None:
    with pytest.raises(XmlError):
        parse_xml(data)


# --- limits: depth and size --------------------------------------------------------------------


def nested(depth: int, leaf: bytes = b"x") -> bytes:
    """``<xml>`` holding ``depth`` levels of ``<a>`` around ``leaf``."""
    return b"<xml>" + b"<a>" * depth + leaf + b"</a>" * depth + b"</xml>"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 5_000, 50_000])
def test_deep_nesting_is_an_xml_error_not_a_crash(depth: int) -> None:
    with pytest.raises(XmlError, match="deeper than"):
        parse_xml(nested(depth))


def test_depth_limit_is_exact() -> None:
    value: Any = parse_xml(nested(MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        value = value["a"]
    assert value == {"a": "x"}
    assert parse_xml(nested(2), max_depth=2) == {"a": {"a": "x"}}
    with pytest.raises(XmlError):
        parse_xml(nested(3), max_depth=2)


def test_size_limit() -> None:
    doc = render_xml({"Content": "中" * 1000})
    assert parse_xml(doc, max_bytes=len(doc)) == {"Content": "中" * 1000}
    with pytest.raises(XmlError, match="larger than"):
        parse_xml(doc, max_bytes=len(doc) - 1)
    with pytest.raises(XmlError, match="larger than"):
        parse_xml(b"<xml>" + b" " * MAX_BYTES + b"</xml>")


def test_wecom_shapes_fit_the_default_limits() -> None:
    # template_card_event is WeCom's deepest known message: SelectedItems/SelectedItem/OptionIds/OptionId.
    doc = (
        b"<xml><SelectedItems><SelectedItem><QuestionKey>q</QuestionKey><OptionIds>"
        b"<OptionId>a</OptionId><OptionId>b</OptionId></OptionIds></SelectedItem></SelectedItems></xml>"
    )
    assert parse_xml(doc) == {
        "SelectedItems": {
            "SelectedItem": {"QuestionKey": "q", "OptionIds": {"OptionId": ["a", "b"]}}
        }
    }


# --- the callback envelope: a flat scan, never an XML parse ------------------------------------

ENC = "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAyb+/="


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            f"<xml><ToUserName><![CDATA[ww1]]></ToUserName>\n<Encrypt><![CDATA[{ENC}]]></Encrypt>\n"
            "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>".encode(),
            id="wecom-sample-layout",
        ),
        pytest.param(
            render_xml({"ToUserName": "ww1", "Encrypt": ENC, "AgentID": "1000002"}), id="rendered"
        ),
        pytest.param(
            f'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\r\n <xml>\t<Encrypt>{ENC}</Encrypt>'
            "<AgentID/><Empty></Empty></xml>\n".encode("latin-1"),
            id="bom-declaration-bare-text-self-closed",
        ),
        pytest.param(
            f"<xml><ToUserName><![CDATA[a]]]]><![CDATA[>b]]></ToUserName><Encrypt>{ENC}</Encrypt></xml>".encode(),
            id="split-cdata-elsewhere",
        ),
    ],
)
def test_envelope_fields_reads_flat_envelopes(data: bytes) -> None:
    fields = envelope_fields(data)
    assert fields["Encrypt"] == ENC
    assert parse_xml(data).get("Encrypt") == ENC  # the same value an XML parser sees


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"not xml", id="not-xml"),
        pytest.param(b"<root><Encrypt>a</Encrypt></root>", id="wrong-root"),
        pytest.param(b"<xml><Encrypt>a</Encrypt>", id="unclosed-root"),
        pytest.param(b"<xml><Encrypt>a</Encrypt></xml><xml/>", id="two-roots"),
        pytest.param(b"<xml><Encrypt>a</Encrypt></xml>junk", id="trailing-junk"),
        pytest.param(b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>", id="two-encrypt"),
        pytest.param(b"<xml><W><Encrypt>a</Encrypt></W></xml>", id="nested-encrypt"),
        pytest.param(nested(5_000, b"<Encrypt>a</Encrypt>"), id="deep-nesting"),
        pytest.param(b'<xml a="1"><Encrypt>a</Encrypt></xml>', id="root-attribute"),
        pytest.param(b'<xml><Encrypt n="1">a</Encrypt></xml>', id="field-attribute"),
        pytest.param(b"<xml><!-- c --><Encrypt>a</Encrypt></xml>", id="comment"),
        pytest.param(b"<xml><?pi x?><Encrypt>a</Encrypt></xml>", id="processing-instruction"),
        pytest.param(BILLION_LAUGHS, id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, id="external-entity"),
        pytest.param(b"<xml><Encrypt>&#65;bc</Encrypt></xml>", id="character-reference"),
        pytest.param(b"<xml><Encrypt>a&amp;b</Encrypt></xml>", id="entity-reference"),
        pytest.param(b"<xml><Encrypt><![CDATA[abc</Encrypt></xml>", id="unterminated-cdata"),
        pytest.param(b"<xml><Encrypt>a</Encrypted></xml>", id="mismatched-close"),
        pytest.param(b"<xml><Encrypt>\xff\xfe</Encrypt></xml>", id="not-utf-8"),
        pytest.param(b"<xml><Encrypt>a\x00b</Encrypt></xml>", id="nul"),
        pytest.param(
            b"<xml>" + b"<A>1</A>" * 1_000 + b"<Encrypt>a</Encrypt></xml>", id="too-many-fields"
        ),
        pytest.param(
            b"<xml><" + b"N" * 100 + b">a</" + b"N" * 100 + b"><Encrypt>a</Encrypt></xml>",
            id="long-name",
        ),
        pytest.param(b"<xml>text<Encrypt>a</Encrypt></xml>", id="text-in-root"),
    ],
)
def test_envelope_fields_refuses_everything_else(data: bytes) -> None:
    with pytest.raises(XmlError) as exc:
        envelope_fields(data)
    assert exc.value.errcode == -40002


@pytest.mark.parametrize(
    "data",
    [
        b"<xml><Encrypt>" + b"<![CDATA[a]]>" * 20_000 + b"</Encrypt>",
        b"<xml><Encrypt><![CDATA[" + b"]]" * 300_000,
        b"<xml>" + b"<a>" * 300_000,
        b"<xml><Encrypt>" + b"a" * 1_000_000,
        b"<xml><Encrypt>" + b"]]><![CDATA[" * 50_000 + b"</Encrypt></xml>",
    ],
    ids=["many-cdata", "cdata-brackets", "open-tags", "long-text", "cdata-ends"],
)
def test_envelope_scan_is_linear(data: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(XmlError):
        envelope_fields(data)
    assert time.perf_counter() - started < 0.5  # about 1 ms each; quadratic would take minutes


# render_xml writes "\r" as a character reference, which the envelope scan refuses like any other.
flat_text = xml_text.filter(lambda t: "\r" not in t) | tricky_text.filter(lambda t: "\r" not in t)


@given(st.dictionaries(tags, flat_text, max_size=_ENVELOPE_MAX_FIELDS))
def test_envelope_fields_agree_with_the_parser(d: dict[str, str]) -> None:
    data = render_xml(d)
    assert envelope_fields(data) == parse_xml(data) == d
