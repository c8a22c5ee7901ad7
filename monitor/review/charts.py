"""Hand-written SVG charts for the review dashboard: pure functions from data to markup.

The review pages run under a Content-Security-Policy without scripts or inline styles, so every
chart is plain SVG with presentation attributes (``fill=``, ``stroke=``, ``font-family=``), never a
``style`` attribute or element, and is inlined in the page: each bar is an ``<a>`` to the queue
filtered to its cases, with a ``<title>`` a screen reader (and a mouse hover) announces; the
``svg`` is a ``group`` (an ``img`` would hide its links from assistive technology). Every
label and link is escaped, so hostile words or names stay text. The page puts a data table under
each chart for those who cannot use it.

Three shapes: :func:`bar_chart` (vertical bars), :func:`stacked_bar_chart` (vertical bars split
into coloured series, e.g. alerts per day by severity) and :func:`horizontal_bar_chart` (ranked
labels, e.g. the top words). Bar lengths are proportional to the values on an axis from 0 to a
round maximum (:func:`nice_max`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = [
    "FONT_FAMILY",
    "Bar",
    "Segment",
    "Series",
    "Stack",
    "bar_chart",
    "horizontal_bar_chart",
    "nice_max",
    "stacked_bar_chart",
]

FONT_FAMILY = (
    "PingFang SC, Hiragino Sans GB, Microsoft YaHei, Noto Sans CJK SC, Source Han Sans SC, "
    "WenQuanYi Micro Hei, sans-serif"
)
"""Fonts able to show Chinese labels, the style sheet's list."""

_TEXT = "#1f2329"
_MUTED = "#646a73"
_GRID = "#dee0e3"
_DEFAULT_FILL = "#1456f0"
_LABEL_MAX = 14
"""Characters of a horizontal bar's label shown before it is cut (the title keeps it whole)."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: its label on the axis, its value, the page it links to (none: ""), its tooltip."""

    label: str
    value: float
    href: str = ""
    title: str = ""
    value_text: str = ""
    """How the value is written at the bar's end (horizontal bars); default: the number."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a stacked chart: its key, its legend label and its colour."""

    key: str
    label: str
    color: str


@dataclass(frozen=True, slots=True)
class Segment:
    """One series' part of a stacked bar."""

    series: str
    value: float
    href: str = ""
    title: str = ""


@dataclass(frozen=True, slots=True)
class Stack:
    """One stacked bar: its label and its segments, bottom first."""

    label: str
    segments: tuple[Segment, ...]

    @property
    def total(self) -> float:
        return sum(s.value for s in self.segments)


def nice_max(value: float) -> float:
    """The axis maximum: the smallest 1, 2 or 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power + 1e-9 * power:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop's last step always fits


def _num(value: float) -> str:
    """A coordinate or value without needless decimals."""
    rounded = round(value, 2)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:g}"


def _open(title: str, desc: str, width: int, height: int, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css_class)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="group" '
        f'preserveAspectRatio="xMinYMin meet" font-family="{escape(FONT_FAMILY)}" '
        f'font-size="12" fill="{_TEXT}">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
    ]


def _linked(href: str, inner: str) -> str:
    return f'<a href="{escape(href)}">{inner}</a>' if href else inner


def _rect(x: float, y: float, w: float, h: float, *, fill: str, title: str) -> str:
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
        f'fill="{escape(fill)}"><title>{escape(title)}</title></rect>'
    )


def _y_axis(top: float, left: float, plot_w: float, plot_h: float, axis_max: float) -> list[str]:
    """Grid lines and labels at round steps: fifths of a 5 x 10^k axis, else quarters."""
    leading = axis_max / 10 ** math.floor(math.log10(axis_max))
    steps = 5 if round(leading) == 5 else 4
    parts = []
    for i in range(steps + 1):
        value = axis_max * i / steps
        y = top + plot_h - plot_h * i / steps
        parts.append(
            f'<line x1="{_num(left)}" y1="{_num(y)}" x2="{_num(left + plot_w)}" y2="{_num(y)}" '
            f'stroke="{_GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_num(left - 6)}" y="{_num(y + 4)}" text-anchor="end" '
            f'fill="{_MUTED}">{_num(value)}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], left: float, slot: float, y: float) -> list[str]:
    """Every label when they fit, else every n-th one (at most about 12)."""
    every = max(1, math.ceil(len(labels) / 12))
    parts = []
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = left + slot * (i + 0.5)
        parts.append(
            f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="middle" '
            f'fill="{_MUTED}">{escape(label)}</text>'
        )
    return parts


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    desc: str = "",
    width: int = 480,
    height: int = 240,
    fill: str = _DEFAULT_FILL,
) -> Markup:
    """Vertical bars, one per item, on a shared axis from 0."""
    top, bottom, left, right = 12.0, 28.0, 48.0, 12.0
    plot_w, plot_h = width - left - right, height - top - bottom
    axis_max = nice_max(max((b.value for b in bars), default=0))
    parts = _open(title, desc, width, height, "bar-chart")
    parts += _y_axis(top, left, plot_w, plot_h, axis_max)
    slot = plot_w / max(1, len(bars))
    bar_w = slot * 0.6
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / axis_max
        x = left + slot * i + (slot - bar_w) / 2
        tip = bar.title or f"{bar.label}：{bar.value:g}"
        rect = _rect(x, top + plot_h - h, bar_w, h, fill=fill, title=tip)
        parts.append(_linked(bar.href, rect))
    parts += _x_labels([b.label for b in bars], left, slot, height - 8)
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_bar_chart(
    stacks: Sequence[Stack],
    series: Sequence[Series],
    *,
    title: str,
    desc: str = "",
    width: int = 960,
    height: int = 280,
) -> Markup:
    """Vertical bars split into ``series`` (bottom first in ``series`` order), with a legend."""
    top, bottom, left, right = 30.0, 28.0, 48.0, 12.0
    plot_w, plot_h = width - left - right, height - top - bottom
    colors = {s.key: s.color for s in series}
    order = {s.key: i for i, s in enumerate(series)}
    axis_max = nice_max(max((s.total for s in stacks), default=0))
    parts = _open(title, desc, width, height, "stacked-bar-chart")
    legend_x = left
    for s in series:
        parts.append(
            f'<rect x="{_num(legend_x)}" y="6" width="12" height="12" fill="{escape(s.color)}"/>'
            f'<text x="{_num(legend_x + 16)}" y="16">{escape(s.label)}</text>'
        )
        legend_x += 28 + 13 * len(s.label)
    parts += _y_axis(top, left, plot_w, plot_h, axis_max)
    slot = plot_w / max(1, len(stacks))
    bar_w = max(1.0, slot * 0.7)
    for i, stack in enumerate(stacks):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for seg in sorted(stack.segments, key=lambda s: order.get(s.series, len(order))):
            if seg.value <= 0:
                continue
            h = plot_h * seg.value / axis_max
            y -= h
            fill = colors.get(seg.series, _DEFAULT_FILL)
            rect = _rect(
                x, y, bar_w, h, fill=fill, title=seg.title or f"{stack.label}：{seg.value:g}"
            )
            parts.append(_linked(seg.href, rect))
    parts += _x_labels([s.label for s in stacks], left, slot, height - 8)
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    desc: str = "",
    width: int = 480,
    row_height: int = 26,
    fill: str = _DEFAULT_FILL,
    axis_max: float | None = None,
) -> Markup:
    """One labelled row per item, bars from a shared 0 (``axis_max``: fixed, e.g. 1 for rates)."""
    top, left, right = 8.0, 120.0, 56.0
    plot_w = width - left - right
    height = int(top * 2 + row_height * max(1, len(bars)))
    top_value = axis_max if axis_max else nice_max(max((b.value for b in bars), default=0))
    parts = _open(title, desc, width, height, "horizontal-bar-chart")
    bar_h = row_height * 0.65
    for i, bar in enumerate(bars):
        y = top + row_height * i
        w = plot_w * bar.value / top_value
        label = bar.label if len(bar.label) <= _LABEL_MAX else bar.label[: _LABEL_MAX - 1] + "…"
        parts.append(
            f'<text x="{_num(left - 8)}" y="{_num(y + bar_h * 0.75)}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        tip = bar.title or f"{bar.label}：{bar.value:g}"
        parts.append(_linked(bar.href, _rect(left, y, w, bar_h, fill=fill, title=tip)))
        parts.append(
            f'<text x="{_num(left + w + 6)}" y="{_num(y + bar_h * 0.75)}" '
            f'fill="{_MUTED}">{escape(bar.value_text or f"{bar.value:g}")}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
