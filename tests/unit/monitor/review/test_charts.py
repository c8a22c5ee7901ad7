"""The SVG chart module: well-formed XML, escaped labels, proportional bars, links, no styles."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from monitor.review.charts import (
    FONT_FAMILY,
    Bar,
    Segment,
    Series,
    Stack,
    bar_chart,
    horizontal_bar_chart,
    nice_max,
    stacked_bar_chart,
)

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "</text></svg><script>alert('x')</script>&amp;\"维权"


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == f"{NS}svg"
    return root


def rects_in_links(root: ET.Element) -> list[tuple[str, ET.Element]]:
    found = []
    for a in root.iter(f"{NS}a"):
        (rect,) = a.findall(f"{NS}rect")
        found.append((a.get("href", ""), rect))
    return found


def no_styles_or_scripts(markup: str) -> None:
    assert "style" not in markup.replace("font-family", "")
    assert "<script" not in markup


@pytest.mark.parametrize(
    ("value", "top"),
    [
        (0, 1),
        (1, 1),
        (3, 5),
        (7, 10),
        (10, 10),
        (11, 20),
        (21, 50),
        (0.37, 0.5),
        (0.19, 0.2),
        (260, 500),
    ],
)
def test_nice_max(value: float, top: float) -> None:
    assert nice_max(value) == pytest.approx(top)


def test_bar_chart_heights_are_proportional_and_bars_link() -> None:
    bars = [Bar("低", 2, "/review/?a=1&b=2"), Bar("中", 8, "/q2"), Bar("高", 5, "/q3")]
    markup = bar_chart(bars, title="处理时长", height=300)
    no_styles_or_scripts(markup)
    root = parse(markup)
    assert root.find(f"{NS}title").text == "处理时长"  # type: ignore[union-attr]
    assert root.get("font-family") == FONT_FAMILY
    linked = rects_in_links(root)
    assert [href for href, _ in linked] == ["/review/?a=1&b=2", "/q2", "/q3"]
    heights = [float(rect.get("height", "")) for _, rect in linked]
    assert heights[1] / heights[0] == pytest.approx(4)
    assert heights[2] / heights[0] == pytest.approx(2.5)
    # All bars stand on one baseline.
    bottoms = {float(r.get("y", "")) + float(r.get("height", "")) for _, r in linked}
    assert len(bottoms) == 1
    assert [r.find(f"{NS}title").text for _, r in linked] == ["低：2", "中：8", "高：5"]  # type: ignore[union-attr]
    assert "&amp;b=2" in markup  # the link's & is escaped in the attribute
    y_labels = [t.text for t in root.iter(f"{NS}text") if t.get("text-anchor") == "end"]
    assert y_labels == ["0", "2.5", "5", "7.5", "10"]
    fifths = parse(bar_chart([Bar("a", 4)], title="t"))
    assert [t.text for t in fifths.iter(f"{NS}text") if t.get("text-anchor") == "end"] == [
        "0",
        "1",
        "2",
        "3",
        "4",
        "5",
    ]


def test_stacked_bars_split_by_series_in_order_with_legend() -> None:
    series = [Series("1", "低", "#111111"), Series("4", "严重", "#444444")]
    stacks = [
        Stack("11-20", (Segment("4", 3, "/d1s4"), Segment("1", 1, "/d1s1"))),
        Stack("11-21", ()),
        Stack("11-22", (Segment("1", 4, "/d3s1"),)),
    ]
    markup = stacked_bar_chart(stacks, series, title="每日告警")
    no_styles_or_scripts(markup)
    root = parse(markup)
    linked = dict(rects_in_links(root))
    assert set(linked) == {"/d1s4", "/d1s1", "/d3s1"}
    h = {href: float(rect.get("height", "")) for href, rect in linked.items()}
    assert h["/d1s4"] / h["/d1s1"] == pytest.approx(3)
    assert h["/d3s1"] == pytest.approx(h["/d1s1"] + h["/d1s4"])
    assert linked["/d1s1"].get("fill") == "#111111"
    assert linked["/d1s4"].get("fill") == "#444444"
    # Series order is bottom first: 低 sits below 严重 (a larger y is lower on the page).
    assert float(linked["/d1s1"].get("y", "")) > float(linked["/d1s4"].get("y", ""))
    assert float(linked["/d1s4"].get("y", "")) + h["/d1s4"] == pytest.approx(
        float(linked["/d1s1"].get("y", ""))
    )
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert {"低", "严重", "11-20", "11-21", "11-22"} <= set(texts)


def test_many_days_get_thinned_axis_labels() -> None:
    stacks = [Stack(f"d{i}", (Segment("1", 1),)) for i in range(90)]
    root = parse(stacked_bar_chart(stacks, [Series("1", "低", "#111")], title="t"))
    day_labels = [t.text for t in root.iter(f"{NS}text") if (t.text or "").startswith("d")]
    assert 6 <= len(day_labels) <= 12
    assert len(root.findall(f".//{NS}rect")) == 90 + 1  # the bars and the legend's swatch


def test_horizontal_bars_widths_fixed_axis_and_value_text() -> None:
    bars = [
        Bar("维权", 0.5, "/w1", value_text="50%"),
        Bar("一个非常非常非常非常长的敏感词标签", 0.25, "/w2"),
    ]
    root = parse(horizontal_bar_chart(bars, title="误报率", axis_max=1.0, width=600))
    linked = rects_in_links(root)
    widths = [float(r.get("width", "")) for _, r in linked]
    assert widths[0] / widths[1] == pytest.approx(2)
    assert widths[0] == pytest.approx((600 - 120 - 56) * 0.5)  # half of the plot: the axis is 1
    texts = [t.text or "" for t in root.iter(f"{NS}text")]
    assert "50%" in texts and "0.25" in texts
    cut = next(t for t in texts if t.startswith("一个"))
    assert cut.endswith("…") and len(cut) == 14
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert "一个非常非常非常非常长的敏感词标签：0.25" in titles  # the whole label in the tooltip


@pytest.mark.parametrize("make", ["bar", "stacked", "horizontal"])
def test_hostile_labels_links_and_titles_stay_text(make: str) -> None:
    href = 'javascript:alert(1)"><script>x</script>'
    if make == "bar":
        markup = bar_chart([Bar(HOSTILE, 1, href, HOSTILE)], title=HOSTILE, desc=HOSTILE)
    elif make == "stacked":
        markup = stacked_bar_chart(
            [Stack(HOSTILE, (Segment("s", 1, href, HOSTILE),))],
            [Series("s", HOSTILE, '#fff" onload="x')],
            title=HOSTILE,
            desc=HOSTILE,
        )
    else:
        markup = horizontal_bar_chart([Bar(HOSTILE[:10], 1, href, HOSTILE)], title=HOSTILE)
    no_styles_or_scripts(markup)
    assert "onload=" not in markup.replace("onload=&#34;", "")
    root = parse(markup)  # well-formed although every string tried to break out
    assert root.find(f"{NS}title").text == HOSTILE  # type: ignore[union-attr]
    assert all(el.tag != f"{NS}script" for el in root.iter())
    assert [a.get("href") for a in root.iter(f"{NS}a")] == [href]
    strings = [el.text for el in root.iter() if el.text]
    assert HOSTILE in strings or HOSTILE[:10] in strings


def test_empty_charts_are_still_valid_svg() -> None:
    for markup in (
        bar_chart([], title="空"),
        stacked_bar_chart([], [], title="空"),
        horizontal_bar_chart([], title="空"),
    ):
        root = parse(markup)
        assert root.findall(f".//{NS}a") == []


def test_zero_values_draw_no_bar_height() -> None:
    root = parse(bar_chart([Bar("a", 0, "/a"), Bar("b", 3, "/b")], title="t"))
    heights = [float(r.get("height", "")) for _, r in rects_in_links(root)]
    assert heights[0] == 0 and heights[1] > 0
