"""``GET /review/dashboard`` (统计概览): the dashboard's figures as inline SVG charts and tables.

Open to every logged-in reviewer; each view is audited (action ``view``, target ``dashboard``,
the range in its detail), since the figures name words and staff members. The queries
(``monitor.review.dashboard``) run in a thread; the charts (``monitor.review.charts``) are built
here with every bar and table cell linking to the queue filtered to the cases it counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup

from monitor.archive.audit import AuditEvent, record_audit_event
from monitor.review.auth import client_address, current_reviewer, services_of
from monitor.review.charts import (
    Bar,
    Segment,
    Series,
    Stack,
    bar_chart,
    horizontal_bar_chart,
    stacked_bar_chart,
)
from monitor.review.dashboard import (
    RANGE_CHOICES,
    Dashboard,
    DashboardRange,
    ResolveTime,
    day_counts,
    load_dashboard,
    utc_today,
)
from monitor.review.render import render_page
from monitor.review.services import read_in_thread
from rules.models import Severity

__all__ = [
    "SEVERITY_COLORS",
    "DashboardView",
    "DayRow",
    "add_dashboard_routes",
    "build_view",
    "format_duration",
    "queue_link",
]

SEVERITY_COLORS = {
    Severity.LOW: "#8aa4c8",
    Severity.MEDIUM: "#f0a020",
    Severity.HIGH: "#e8590c",
    Severity.CRITICAL: "#c92a2a",
}
FP_MIN_CLOSED = 5
"""Words with fewer closed cases get no false-positive rate (the page says so)."""
TOP = 10


def queue_link(
    base: str,
    wanted: DashboardRange,
    *,
    day: date | None = None,
    state: str = "all",
    **filters: str,
) -> str:
    """The queue in ``state`` filtered by ``filters`` over the range's days (or one ``day``)."""
    params = {
        "state": state,
        **filters,
        "since": (day or wanted.since).isoformat(),
        "until": (day or wanted.until).isoformat(),
    }
    return f"{base}/?{urlencode(params)}"


def format_duration(seconds: float) -> str:
    """A resolve time in Chinese: 45 秒, 12 分钟, 3.5 小时, 2.1 天."""
    if seconds < 60:
        return f"{seconds:.0f} 秒"
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86400:.1f} 天"


@dataclass(frozen=True, slots=True)
class DayCell:
    count: int
    href: str


@dataclass(frozen=True, slots=True)
class DayRow:
    """One day of the table under the per-day chart."""

    day: date
    cells: tuple[DayCell, ...]
    """One per severity, low to critical."""
    total: DayCell


@dataclass(frozen=True, slots=True)
class DashboardView:
    """What the template shows: the figures, their charts and links."""

    data: Dashboard
    day_rows: list[DayRow]
    per_day_chart: Markup
    words_chart: Markup
    word_links: list[str]
    staff_chart: Markup
    staff_links: list[str]
    resolve_chart: Markup
    fp_chart: Markup
    fp_links: list[str]
    all_link: str


def build_view(data: Dashboard, base: str) -> DashboardView:
    """The charts and links of ``data``'s figures (links under ``base``, e.g. ``/review``)."""
    rng = data.range
    series = [Series(str(s.value), s.label, SEVERITY_COLORS[s]) for s in Severity]
    counts = day_counts(data.per_day)
    stacks, rows = [], []
    for day in rng.each_day():
        on_day = counts.get(day, {})
        segments, cells = [], []
        for severity in Severity:
            n = on_day.get(severity, 0)
            href = queue_link(base, rng, day=day, exact_severity=str(severity.value))
            cells.append(DayCell(n, href))
            if n:
                title = f"{day.isoformat()} {severity.label}风险：{n} 个案件"
                segments.append(Segment(str(severity.value), n, href, title))
        stacks.append(Stack(day.strftime("%m-%d"), tuple(segments)))
        total = sum(on_day.values())
        rows.append(DayRow(day, tuple(cells), DayCell(total, queue_link(base, rng, day=day))))

    word_links = [queue_link(base, rng, word=w.word) for w in data.words]
    staff_links = [queue_link(base, rng, audience="staff", staff=s.userid) for s in data.staff]
    fp_links = [
        queue_link(base, rng, state="false_positive", word=r.word) for r in data.false_positives
    ]
    return DashboardView(
        data=data,
        day_rows=rows,
        per_day_chart=stacked_bar_chart(
            stacks,
            series,
            title=f"每日告警案件（按风险等级），{rng.since} 至 {rng.until}",
            desc="每根柱子是一天的案件数，按风险等级分色；点击色块查看对应案件。",
        ),
        words_chart=horizontal_bar_chart(
            [
                Bar(w.word, w.hits, href, f"{w.word}：命中 {w.hits} 次，{w.cases} 个案件")
                for w, href in zip(data.words, word_links, strict=True)
            ],
            title="命中最多的敏感词",
        ),
        word_links=word_links,
        staff_chart=horizontal_bar_chart(
            [
                Bar(
                    _staff_label(s.userid, s.name),
                    s.hits,
                    href,
                    f"{_staff_label(s.userid, s.name)}：命中 {s.hits} 次，{s.cases} 个案件",
                )
                for s, href in zip(data.staff, staff_links, strict=True)
            ],
            title="员工违规命中排行",
            fill="#7048e8",
        ),
        staff_links=staff_links,
        resolve_chart=bar_chart(
            [_resolve_bar(r, base, rng) for r in data.resolve_times],
            title="处理时长中位数（小时），按风险等级",
            fill="#2f9e44",
        ),
        fp_chart=horizontal_bar_chart(
            [
                Bar(
                    r.word,
                    r.rate,
                    href,
                    f"{r.word}：误报 {r.false_positive} / 已结案 {r.closed}",
                    value_text=f"{r.rate:.0%}",
                )
                for r, href in zip(data.false_positives, fp_links, strict=True)
            ],
            title="各敏感词误报率",
            fill="#d9480f",
            axis_max=1.0,
        ),
        fp_links=fp_links,
        all_link=queue_link(base, rng),
    )


def _staff_label(userid: str, name: str) -> str:
    return f"{name}（{userid}）" if name else userid


def _resolve_bar(r: ResolveTime, base: str, rng: DashboardRange) -> Bar:
    label = r.severity.label if r.severity is not None else "全部"
    href = (
        queue_link(base, rng)
        if r.severity is None
        else queue_link(base, rng, exact_severity=str(r.severity.value))
    )
    hours = round(r.median_s / 3600, 2)
    title = f"{label}：中位数 {format_duration(r.median_s)}，P90 {format_duration(r.p90_s)}"
    return Bar(label, hours, href, title)


async def dashboard_page(request: web.Request) -> web.Response:
    """``GET /review/dashboard``: ``?days=7|30|90`` or ``?since=&until=`` (UTC dates)."""
    services = services_of(request)
    reviewer = current_reviewer(request)
    now = services.clock()
    wanted = DashboardRange.from_query(request.query, utc_today(now))

    data = await read_in_thread(
        services.engine,
        lambda conn: load_dashboard(conn, wanted, top=TOP, fp_min_closed=FP_MIN_CLOSED),
    )
    event = AuditEvent(
        at=now,
        actor=reviewer.username,
        source="web",
        action="view",
        target="dashboard",
        detail={"since": wanted.since.isoformat(), "until": wanted.until.isoformat()},
        address=client_address(request),
    )
    await services.writer.run(lambda conn: record_audit_event(conn, event))
    base = services.settings.path
    return render_page(
        request,
        "dashboard.html",
        {
            "view": build_view(data, base),
            "wanted": wanted,
            "choices": RANGE_CHOICES,
            "severities": list(Severity),
            "colors": SEVERITY_COLORS,
            "format_duration": format_duration,
            "staff_label": _staff_label,
        },
    )


def add_dashboard_routes(app: web.Application) -> None:
    """Register ``GET /dashboard`` on the review sub-app."""
    app.router.add_get("/dashboard", dashboard_page, name="dashboard")
