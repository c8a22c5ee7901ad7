"""Message models built from WeCom's official callback samples (tests/data/wecom)."""

from __future__ import annotations

import dataclasses

import pytest

from wecom_sdk import (
    ChangeExternalContactEvent,
    EnterAgentEvent,
    Event,
    ImageMessage,
    KfMsgOrEvent,
    LinkMessage,
    LocationEvent,
    LocationMessage,
    Message,
    MsgAuditNotifyEvent,
    SelectedItem,
    SubscribeEvent,
    TemplateCardEvent,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    VideoMessage,
    VoiceMessage,
    XmlError,
    from_mapping,
    parse,
    parse_xml,
)

# Official samples: doc 90239 (messages), 90240 (events), 92130 (external contacts), 94670 (kf),
# quoted in shared/wecom-protocol.md §3, §4.1, §5.3. template_card_event keeps the official
# misspelling OpitonIds/OpitonId.
SAMPLES: dict[str, str] = {
    "change_external_contact": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[sys]]>"
        "</FromUserName>\n"
        "<CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[change_external_contact]]></Event><ChangeType>"
        "<![CDATA[add_external_contact]]></ChangeType>\n"
        "<UserID><![CDATA[zhangsan]]></UserID><ExternalUserID>"
        "<![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></ExternalUserID>\n"
        "<State><![CDATA[teststate]]></State><WelcomeCode><![CDATA[WELCOMECODE]]>"
        "</WelcomeCode></xml>\n"
    ),
    "enter_agent": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[FromUser]]></FromUserName>\n"
        "<CreateTime>1408091189</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>"
        "<AgentID>1</AgentID></xml>\n"
    ),
    "image": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[fromUser]]></FromUserName>\n"
        "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[image]]></MsgType>\n"
        "<PicUrl><![CDATA[this is a url]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId>\n"
        "<MsgId>1234567890123456</MsgId><AgentID>1</AgentID></xml>\n"
    ),
    "kf_msg_or_event": (
        "<xml><ToUserName><![CDATA[ww12345678910]]></ToUserName>"
        "<CreateTime>1348831860</CreateTime>\n"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]></Event>\n"
        "<Token><![CDATA[ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR]]></Token>\n"
        "<OpenKfId><![CDATA[wkxxxxxxx]]></OpenKfId></xml>\n"
    ),
    "link": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[fromUser]]></FromUserName>\n"
        "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[link]]></MsgType>\n"
        "<Title><![CDATA[this is a title！]]></Title><Description>"
        "<![CDATA[this is a description！]]></Description>\n"
        "<Url><![CDATA[URL]]></Url><PicUrl><![CDATA[this is a url]]></PicUrl>\n"
        "<MsgId>1234567890123456</MsgId><AgentID>1</AgentID></xml>\n"
    ),
    "location": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[fromUser]]></FromUserName>\n"
        "<CreateTime>1351776360</CreateTime><MsgType><![CDATA[location]]></MsgType>\n"
        "<Location_X>23.134</Location_X><Location_Y>113.358</Location_Y><Scale>20</Scale>\n"
        "<Label><![CDATA[位置信息]]></Label><MsgId>1234567890123456</MsgId><AgentID>1</AgentID>\n"
        "<AppType><![CDATA[wxwork]]></AppType></xml>\n"
    ),
    "location_event": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[FromUser]]></FromUserName>\n"
        "<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[LOCATION]]></Event><Latitude>23.104</Latitude>"
        "<Longitude>113.320</Longitude>\n"
        "<Precision>65.000</Precision><AgentID>1</AgentID><AppType><![CDATA[wxwork]]>"
        "</AppType></xml>\n"
    ),
    "msgaudit_notify": (
        "<xml><ToUserName><![CDATA[wwxxxxxxxxxxxxxx]]></ToUserName><FromUserName>"
        "<![CDATA[sys]]></FromUserName>\n"
        "<CreateTime>1587370730</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[msgaudit_notify]]></Event><AgentID>2000003</AgentID></xml>\n"
    ),
    "subscribe": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[UserID]]>"
        "</FromUserName>\n"
        "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[subscribe]]></Event><AgentID>1</AgentID></xml>\n"
    ),
    "template_card_event": (
        "<xml><ToUserName><![CDATA[corpid]]></ToUserName><FromUserName><![CDATA[userid]]>"
        "</FromUserName>\n"
        "<CreateTime>123456789</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[key111]]></EventKey>\n"
        "<TaskId><![CDATA[taskid111]]></TaskId><CardType><![CDATA[button_interaction]]>"
        "</CardType>\n"
        "<ResponseCode><![CDATA[ResponseCode]]></ResponseCode><AgentID>1</AgentID>\n"
        "<SelectedItems><SelectedItem><QuestionKey><![CDATA[q1]]></QuestionKey>\n"
        "  <OpitonIds><OpitonId><![CDATA[o1]]></OpitonId></OpitonIds></SelectedItem>"
        "</SelectedItems></xml>\n"
    ),
    "text": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[fromUser]]></FromUserName>\n"
        "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>\n"
        "<Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId>"
        "<AgentID>1</AgentID></xml>\n"
    ),
    "video": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[fromUser]]></FromUserName>\n"
        "<CreateTime>1357290913</CreateTime><MsgType><![CDATA[video]]></MsgType>\n"
        "<MediaId><![CDATA[media_id]]></MediaId><ThumbMediaId><![CDATA[thumb_media_id]]>"
        "</ThumbMediaId>\n"
        "<MsgId>1234567890123456</MsgId><AgentID>1</AgentID></xml>\n"
    ),
    "voice": (
        "<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName>"
        "<![CDATA[fromUser]]></FromUserName>\n"
        "<CreateTime>1357290913</CreateTime><MsgType><![CDATA[voice]]></MsgType>\n"
        "<MediaId><![CDATA[media_id]]></MediaId><Format><![CDATA[Format]]></Format>\n"
        "<MsgId>1234567890123456</MsgId><AgentID>1</AgentID></xml>\n"
    ),
}


def sample(name: str) -> bytes:
    return SAMPLES[name].encode()


def event_xml(event: str, extra: str = "", *, from_user: str = "u1", ts: int = 1700000000) -> str:
    return (
        f"<xml><ToUserName><![CDATA[ww1]]></ToUserName><FromUserName><![CDATA[{from_user}]]>"
        f"</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{event}]]></Event>{extra}</xml>"
    )


def test_text() -> None:
    msg = parse(sample("text"))
    assert msg == TextMessage(
        to_user="toUser",
        from_user="fromUser",
        create_time=1348831860,
        msg_type="text",
        agent_id="1",
        content="this is a test",
        msg_id="1234567890123456",
        raw=parse_xml(sample("text")),
    )
    assert msg.text == "this is a test"
    assert msg.dedupe_key == "msg:1234567890123456"


def test_image() -> None:
    msg = parse(sample("image"))
    assert isinstance(msg, ImageMessage)
    assert (msg.pic_url, msg.media_id, msg.msg_id) == (
        "this is a url",
        "media_id",
        "1234567890123456",
    )
    assert msg.text is None


def test_voice() -> None:
    msg = parse(sample("voice"))
    assert isinstance(msg, VoiceMessage)
    assert (msg.media_id, msg.format, msg.create_time) == ("media_id", "Format", 1357290913)


def test_video() -> None:
    msg = parse(sample("video"))
    assert isinstance(msg, VideoMessage)
    assert (msg.media_id, msg.thumb_media_id) == ("media_id", "thumb_media_id")


def test_location() -> None:
    msg = parse(sample("location"))
    assert isinstance(msg, LocationMessage)
    assert (msg.location_x, msg.location_y, msg.scale) == (23.134, 113.358, 20)
    assert msg.label == "位置信息"
    assert msg.raw["AppType"] == "wxwork"  # unmodelled fields stay in raw


def test_link() -> None:
    msg = parse(sample("link"))
    assert isinstance(msg, LinkMessage)
    assert (msg.title, msg.description, msg.url, msg.pic_url) == (
        "this is a title！",
        "this is a description！",
        "URL",
        "this is a url",
    )


def test_subscribe() -> None:
    msg = parse(sample("subscribe"))
    assert isinstance(msg, SubscribeEvent)
    assert (msg.event, msg.from_user, msg.agent_id) == ("subscribe", "UserID", "1")
    assert msg.dedupe_key.startswith("evt:")


def test_enter_agent() -> None:
    msg = parse(sample("enter_agent"))
    assert isinstance(msg, EnterAgentEvent)
    assert msg.event_key == ""


def test_location_event_matches_case_insensitively_and_keeps_the_name() -> None:
    msg = parse(sample("location_event"))
    assert isinstance(msg, LocationEvent)
    assert msg.event == "LOCATION"
    assert (msg.latitude, msg.longitude, msg.precision) == (23.104, 113.320, 65.0)
    assert isinstance(parse(event_xml("Enter_Agent")), EnterAgentEvent)


def test_kf_msg_or_event() -> None:
    msg = parse(sample("kf_msg_or_event"))
    assert isinstance(msg, KfMsgOrEvent)
    assert msg.token == "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR"
    assert msg.open_kf_id == "wkxxxxxxx"
    assert (msg.from_user, msg.agent_id) == ("", None)  # neither is sent with this event
    assert msg.token not in repr(msg)


def test_template_card_event_official_misspelling() -> None:
    msg = parse(sample("template_card_event"))
    assert isinstance(msg, TemplateCardEvent)
    assert (msg.event_key, msg.task_id, msg.card_type, msg.response_code) == (
        "key111",
        "taskid111",
        "button_interaction",
        "ResponseCode",
    )
    assert msg.selected_items == (SelectedItem("q1", ("o1",)),)


def test_template_card_event_correct_spelling_and_many_items() -> None:
    items = (
        "<SelectedItems>"
        "<SelectedItem><QuestionKey>q1</QuestionKey>"
        "<OptionIds><OptionId>a</OptionId><OptionId>b</OptionId></OptionIds></SelectedItem>"
        "<SelectedItem><QuestionKey>q2</QuestionKey><OptionIds></OptionIds></SelectedItem>"
        "</SelectedItems>"
    )
    msg = parse(event_xml("template_card_event", "<TaskId>t</TaskId>" + items))
    assert isinstance(msg, TemplateCardEvent)
    assert msg.selected_items == (SelectedItem("q1", ("a", "b")), SelectedItem("q2", ()))
    bare = parse(event_xml("template_card_event"))
    assert isinstance(bare, TemplateCardEvent)
    assert bare.selected_items == ()


def test_change_external_contact() -> None:
    msg = parse(sample("change_external_contact"))
    assert isinstance(msg, ChangeExternalContactEvent)
    assert (msg.change_type, msg.user_id, msg.external_user_id, msg.state, msg.welcome_code) == (
        "add_external_contact",
        "zhangsan",
        "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA",
        "teststate",
        "WELCOMECODE",
    )


def test_msgaudit_notify() -> None:
    msg = parse(sample("msgaudit_notify"))
    assert isinstance(msg, MsgAuditNotifyEvent)
    assert msg.agent_id == "2000003"


def test_unknown_msg_type_is_kept_raw() -> None:
    xml = (
        "<xml><ToUserName>ww1</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        "<MsgType>miniprogram</MsgType><AppId>wx1</AppId><Nested><A>b</A></Nested></xml>"
    )
    msg = parse(xml)
    assert type(msg) is UnknownMessage
    assert msg.raw["AppId"] == "wx1"
    assert msg.raw["Nested"] == {"A": "b"}


def test_unknown_event_is_kept_raw() -> None:
    msg = parse(event_xml("sys_approval_change", "<ApprovalInfo><SpNo>1</SpNo></ApprovalInfo>"))
    assert type(msg) is UnknownEvent
    assert isinstance(msg, Event)
    assert msg.event == "sys_approval_change"
    assert msg.raw["ApprovalInfo"] == {"SpNo": "1"}
    assert type(parse(event_xml(""))) is UnknownEvent


def test_dedupe_keys() -> None:
    # Two distinct events from one user in one second: WeCom's FromUserName+CreateTime collides.
    a = parse(event_xml("change_external_contact", "<ExternalUserID>c1</ExternalUserID>"))
    b = parse(event_xml("change_external_contact", "<ExternalUserID>c2</ExternalUserID>"))
    assert (a.from_user, a.create_time) == (b.from_user, b.create_time)
    assert a.dedupe_key != b.dedupe_key
    # A retry delivers the same XML: same key, whatever the whitespace of the document.
    assert parse(sample("subscribe")).dedupe_key == parse(sample("subscribe")).dedupe_key
    assert parse(event_xml("subscribe")).dedupe_key == parse(event_xml("subscribe")).dedupe_key
    assert len(a.dedupe_key) == len("evt:") + 64


def test_msg_id_is_a_64_bit_string() -> None:
    xml = sample("text").replace(b"1234567890123456", b"18446744073709551615")
    msg = parse(xml)
    assert isinstance(msg, TextMessage)
    assert msg.msg_id == "18446744073709551615"
    assert msg.dedupe_key == "msg:18446744073709551615"


def test_agent_id_as_cdata_or_bare_int() -> None:
    cdata = parse(
        sample("text").replace(b"<AgentID>1</AgentID>", b"<AgentID><![CDATA[1]]></AgentID>")
    )
    assert cdata.agent_id == parse(sample("text")).agent_id == "1"


def test_missing_optional_fields_get_defaults() -> None:
    msg = parse("<xml><MsgType>location</MsgType><CreateTime>5</CreateTime></xml>")
    assert isinstance(msg, LocationMessage)
    assert (msg.to_user, msg.from_user, msg.agent_id) == ("", "", None)
    assert (msg.location_x, msg.scale, msg.label, msg.msg_id) == (0.0, 0, "", "")


T, L = "<MsgType>text</MsgType>", "<MsgType>location</MsgType><CreateTime>1</CreateTime>"
INVALID = {
    "no-msgtype": "<xml><CreateTime>1</CreateTime><Content>x</Content></xml>",
    "empty-msgtype": "<xml><MsgType></MsgType><CreateTime>1</CreateTime></xml>",
    "nested-msgtype": "<xml><MsgType><A>text</A></MsgType><CreateTime>1</CreateTime></xml>",
    "no-createtime": f"<xml>{T}</xml>",
    "createtime-word": f"<xml>{T}<CreateTime>soon</CreateTime></xml>",
    "createtime-underscore": f"<xml>{T}<CreateTime>1_000</CreateTime></xml>",
    "createtime-float": f"<xml>{T}<CreateTime>1.5</CreateTime></xml>",
    "createtime-huge": f"<xml>{T}<CreateTime>{'9' * 5000}</CreateTime></xml>",
    "scale-word": f"<xml>{L}<Scale>x</Scale></xml>",
    "latitude-nan": f"<xml>{L}<Location_X>nan</Location_X></xml>",
    "repeated-content": f"<xml>{T}<CreateTime>1</CreateTime><Content/><Content/></xml>",
    "malformed": f"<xml>{T}",
    "doctype": f"<!DOCTYPE xml><xml>{T}<CreateTime>1</CreateTime></xml>",
}


@pytest.mark.parametrize("xml", INVALID.values(), ids=INVALID.keys())
def test_invalid_messages_raise_xml_error(xml: str) -> None:
    with pytest.raises(XmlError):
        parse(xml)


def test_from_mapping_matches_parse() -> None:
    assert from_mapping(parse_xml(sample("image"))) == parse(sample("image"))


def test_models_are_frozen_and_hashable() -> None:
    msg = parse(sample("template_card_event"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.from_user = "x"  # type: ignore[misc]
    assert hash(msg) == hash(parse(sample("template_card_event")))


def test_models_can_be_built_directly() -> None:
    msg: Message = TextMessage(
        to_user="ww1", from_user="u", create_time=1, msg_type="text", content="hi"
    )
    assert msg.text == "hi"
    assert msg.raw == {}


def test_dedupe_key_stays_bounded_for_an_absurd_msg_id() -> None:
    xml = (
        "<xml><ToUserName>c</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>"
        f"<MsgType>text</MsgType><Content>x</Content><MsgId>{'9' * 500}</MsgId></xml>"
    )
    key = parse(xml).dedupe_key
    assert len(key) <= 128  # the archive's key column
    assert key == parse(xml).dedupe_key  # stable, so retries still dedupe
    assert key != parse(xml.replace("9" * 500, "9" * 499 + "8")).dedupe_key
