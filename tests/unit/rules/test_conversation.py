"""Issue 19: words split over messages (rules/conversation.py) and ``rules scan --conversation``."""

from __future__ import annotations

import io
import json

import pytest

from rules import Audience, Matcher, RuleSet, SensitiveGroup, Severity, Word, compile_rules
from rules.cli import scan_command, scan_conversation_line
from rules.conversation import Part, scan_conversation, split_hits

C, S = Audience.CUSTOMER, Audience.STAFF
RULES = RuleSet(
    (
        SensitiveGroup("c", Severity.HIGH, Audience.CUSTOMER, (Word("维权"), Word("假货"))),
        SensitiveGroup("s", Severity.MEDIUM, Audience.STAFF, (Word("红包"),)),
    ),
    version="conv",
)


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return compile_rules(RULES)


def _split(m: Matcher, messages: list[tuple[Audience, str]]) -> list[tuple[str, tuple[Part, ...]]]:
    return [(h.word, h.parts) for h in scan_conversation(m, messages) if h.via == "split"]


def test_a_word_over_two_messages_names_each_part(matcher: Matcher) -> None:
    messages = [(C, "我要维"), (S, "您好"), (C, "权！")]
    hits = scan_conversation(matcher, messages)
    assert [(h.word, h.parts, h.via, h.group) for h in hits] == [
        ("维权", (Part(0, 2, 3), Part(2, 0, 1)), "split", "c")
    ]


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ([(C, "维"), (C, "权")], [("维权", (Part(0, 0, 1), Part(1, 0, 1)))]),
        ([(C, "wei"), (C, "quan")], [("维权", (Part(0, 0, 3), Part(1, 0, 4)))]),
        ([(C, "维"), (C, "  权")], [("维权", (Part(0, 0, 1), Part(1, 2, 3)))]),
        ([(S, "发个红"), (S, "包")], [("红包", (Part(0, 2, 3), Part(1, 0, 1)))]),
        # hard negatives: another sender, clause ends, chance joins, the window, the audience
        ([(C, "维"), (S, "权")], []),
        ([(C, "维。"), (C, "权")], []),
        ([(C, "今天放假"), (C, "货到了吗")], []),
        ([(C, "思维"), (C, "权衡一下")], []),
        ([(C, "维"), (C, "好"), (C, "的"), (C, "权")], []),
        ([(C, "发个红"), (C, "包")], []),
    ],
)
def test_split_table(
    matcher: Matcher,
    messages: list[tuple[Audience, str]],
    expected: list[tuple[str, tuple[Part, ...]]],
) -> None:
    assert _split(matcher, messages) == expected


def test_each_evasion_is_found_once(matcher: Matcher) -> None:
    # The hit is reported with the message that completes it, not again with the next one.
    messages = [(C, "维"), (C, "权"), (C, "好的")]
    assert len(_split(matcher, messages)) == 1
    assert split_hits(matcher, [(0, "维")], C) == []


def test_single_message_hits_keep_one_part(matcher: Matcher) -> None:
    hits = scan_conversation(matcher, [(C, "我要维权"), (S, "红包拿来")])
    assert [(h.word, h.parts, h.via) for h in hits] == [
        ("维权", (Part(0, 2, 4),), None),
        ("红包", (Part(1, 0, 2),), None),
    ]


def test_conversation_cli(tmp_path: pytest.TempPathFactory) -> None:
    words = tmp_path / "words.txt"  # type: ignore[operator]
    words.write_text("维权\n", encoding="utf-8")
    lines = [
        {"messages": [{"from": "customer", "text": "维"}, {"from": "customer", "text": "权"}]},
        {"messages": [{"from": "customer", "text": "我要维权"}]},
    ]
    stdin = io.StringIO("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    out, err = io.StringIO(), io.StringIO()
    code = scan_command(
        rules=None, words=str(words), allow=None, stdin=stdin, stdout=out, stderr=err,
        conversation=True,
    )  # fmt: skip
    assert code == 0, err.getvalue()
    first, second = (json.loads(x) for x in out.getvalue().splitlines())
    assert first == {
        "hits": [
            {
                "word": "维权",
                "parts": [
                    {"message": 0, "start": 0, "end": 1},
                    {"message": 1, "start": 0, "end": 1},
                ],
                "group": "words",
                "severity": "high",
                "via": "split",
            }
        ]
    }
    assert second["hits"][0]["parts"] == [{"message": 0, "start": 2, "end": 4}]
    assert "via" not in second["hits"][0]


@pytest.mark.parametrize(
    "line",
    ["not json", '{"messages": 3}', '{"messages": [{"from": "boss", "text": "x"}]}'],
)
def test_conversation_line_errors(matcher: Matcher, line: str) -> None:
    answer = scan_conversation_line(matcher, line)
    assert answer["hits"] == [] and answer["error"]
