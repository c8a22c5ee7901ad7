"""Pieces of the conversation page (pure): marked segments and context windows."""

from __future__ import annotations

from monitor.review.thread import Segment, segments, windows


def test_segments_mark_each_span_of_the_original_text() -> None:
    text = "我要去12315投诉你们"
    out = segments(text, [(3, 8, "12315"), (8, 10, "投诉")])
    assert "".join(s.text for s in out) == text
    # Touching spans stay two marks: every matched word is its own <mark>.
    assert out == (
        Segment("我要去"),
        Segment("12315", True, "12315"),
        Segment("投诉", True, "投诉"),
        Segment("你们"),
    )


def test_segments_merge_overlaps_and_clip_bad_spans() -> None:
    out = segments("abcdefgh", [(2, 4, "x"), (3, 5, "y"), (9, 12, "z"), (-3, 1, "w")])
    assert out == (
        Segment("a", True, "w"),
        Segment("b"),
        Segment("cde", True, "x、y"),
        Segment("fgh"),
    )
    assert segments("abc", []) == (Segment("abc"),)


def test_windows_merge_and_stay_inside_the_conversation() -> None:
    assert windows(100, [50], 5) == [(45, 56)]
    assert windows(100, [0, 99], 3) == [(0, 4), (96, 100)]
    assert windows(20, [5, 9], 2) == [(3, 12)]  # windows that touch merge
    assert windows(10, [3], 50) == [(0, 10)]
