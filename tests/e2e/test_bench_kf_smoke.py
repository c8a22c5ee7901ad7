"""Smoke test of the kf benchmark (``python -m bench kf --quick``): 300 queued messages, one
callback, the real app and the fake WeCom over loopback HTTP; the invariants, not the timing."""

from __future__ import annotations

import argparse
import json

import pytest

from bench import kf_bench
from bench.kf_measure import measure


@pytest.mark.parametrize("backend", ["sqlite", "postgresql+redis"])
async def test_kf_bench_quick_archives_everything_once_and_keeps_the_budget(
    backend: str, request: pytest.FixtureRequest
) -> None:
    parser = argparse.ArgumentParser()
    kf_bench.add_arguments(parser)
    argv = ["--quick"]
    if backend != "sqlite":
        argv += ["--database-url", str(request.getfixturevalue("pg_url"))]
        argv += ["--redis-url", str(request.getfixturevalue("redis_url"))]
    settings = kf_bench.settings_from(parser.parse_args(argv))
    assert settings.messages == 300 and (settings.redis_url is None) == (backend == "sqlite")

    report = await measure(settings)
    assert report.ok, report.failures
    assert sum(report.kinds.values()) == 300 and report.archived_s is not None
    assert [n for _at, n in report.pages] == [300] == [report.calls["kf/sync_msg"] * 300]
    # Every customer message decided once; the mix makes every path of the decision happen.
    questions = 300 - report.kinds["staff"]
    assert sum(report.decisions.values()) == questions
    assert {"replied", "unanswered", "with_human", "handoff:rule", "handoff:risk"} <= set(
        report.decisions
    )
    assert report.decisions["budget"] > 0  # the customer writing 10 ran out of slots...
    assert report.most_to_one == 5  # ...and got exactly WeCom's five, the last a hand-off
    assert report.sent["reply"] > 0 and report.sent["handoff"] > 0
    assert report.calls["kf/service_state/trans"] == report.sent["handoff"]
    assert report.alerts > 0
    assert not report.refused and report.duplicates == 0
    assert set(report.actions) == {"sent"}
    assert report.first_reply_s is not None and report.last_reply_s is not None
    assert 0 < report.first_reply_s <= report.last_reply_s

    printed: list[str] = []
    kf_bench.print_report(report, printed.append)
    assert printed[-1].endswith("OK")
    json_report = kf_bench.report_json(report)
    assert json_report["ok"] and json_report["settings"]["messages"] == 300
    assert json.loads(json.dumps(json_report))["msgs_per_s"] > 0
