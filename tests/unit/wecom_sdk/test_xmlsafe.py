"""parse_xml refuses hostile XML; render_xml round-trips any text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wecom_sdk import XmlError, parse_xml, render_xml

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
    assert parse_xml(data) == _children(_parse_defused(data)) == d


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
