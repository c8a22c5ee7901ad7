"""The filter forms' query values: lenient parsing, and links that keep the filters."""

from __future__ import annotations

from datetime import date

from monitor.review.audit_log import AuditFilter
from monitor.review.params import date_param, int_param, link_query, text_param
from monitor.review.queue import QueueFilter


def test_bad_values_are_as_if_absent() -> None:
    assert (
        int_param("x", 1, 4) is None and int_param("9", 1, 4) is None and int_param("3", 1, 4) == 3
    )
    assert date_param("2026-13-01") is None and date_param("") is None
    assert date_param("2026-12-01") == date(2026, 12, 1)
    assert text_param("  维权 ", 1) == "维"
    assert text_param(None) == ""


def test_links_keep_the_filters_and_drop_the_first_page() -> None:
    wanted = AuditFilter.from_query({"actor": "1", "page": "1", "since": "2026-12-01"})
    assert wanted.query() == {"actor": "1", "since": "2026-12-01"}
    assert wanted.query(page=2) == {"actor": "1", "since": "2026-12-01", "page": "2"}
    queue = QueueFilter.from_query({"word": "维权", "page": "3"})
    assert queue.query(page=4) == {"state": "active", "word": "维权", "page": "4"}
    assert link_query({"a": "", "b": "x"}, {"c": 1}) == {"b": "x", "c": "1"}
