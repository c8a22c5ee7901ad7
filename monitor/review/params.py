"""Query-string values of the review pages' filter forms: parsed leniently (a bad value is as if
absent, never an error page), and the date-range condition they share."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import ColumnElement

__all__ = ["date_param", "day_range", "int_param", "link_query", "text_param"]


def text_param(raw: object, limit: int = 200) -> str:
    """A filter text, stripped and cut to ``limit`` characters."""
    return str(raw if raw is not None else "").strip()[:limit]


def int_param(raw: object, low: int, high: int) -> int | None:
    """An integer in ``low..high``, else None."""
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if low <= value <= high else None


def date_param(raw: object) -> date | None:
    """An ISO date (``2026-12-01``), else None."""
    try:
        return date.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def day_range(
    column: ColumnElement[datetime], since: date | None, until: date | None
) -> list[ColumnElement[bool]]:
    """``column`` on or after the UTC day ``since`` and on or before the UTC day ``until``."""
    parts: list[ColumnElement[bool]] = []
    if since is not None:
        parts.append(column >= datetime.combine(since, time(), UTC))
    if until is not None:
        parts.append(column < datetime.combine(until, time(), UTC) + timedelta(days=1))
    return parts


def link_query(values: dict[str, str], changes: dict[str, object]) -> dict[str, str]:
    """A filter form's values with ``changes`` applied, empty ones left out (for the pages' links,
    e.g. the next page with the same filters)."""
    merged = {**values, **{key: str(value) for key, value in changes.items()}}
    return {key: value for key, value in merged.items() if value}
