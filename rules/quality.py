"""Detection quality on a labelled set (issue 19: ``tests/data/detection``): pure, the caller
reads the files (``make bench`` and tests/unit/rules/test_detection.py).

Line format (as tests/data/corpus): ``kind<TAB>words<TAB>text``; ``words`` lists the canonical
words expected, in order, separated by ``|`` (``-`` for none), and each expected hit is marked in
``text`` with «» (removed before scanning). Kind ``innocent`` holds look-alike lines that must not
be flagged. ``measure`` gives recall per kind (a hit counts when word and span are exact),
precision over every hit, and the innocent lines flagged; ``report`` prints them.

Conversations (``split.jsonl``), one JSON object a line: ``{"kind": "split" | "innocent",
"messages": [...], "expected": [{"word": ..., "parts": [[message, start, end], ...]}]}`` (split
hits only), measured by ``measure_split``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TextIO

from rules.conversation import scan_conversation
from rules.matcher import Matcher
from rules.models import Audience

__all__ = [
    "TARGETS",
    "Case",
    "Quality",
    "measure",
    "measure_split",
    "parse_case",
    "parse_cases",
    "report",
]

#: The issue's targets: recall per kind.
TARGETS = {
    "plain": 1.0, "evasion": 0.95, "pinyin": 0.90, "homophone": 0.80, "lookalike": 0.80,
    "initials": 0.60, "numerals": 0.80, "several": 0.80,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled line: ``expected`` holds (word, start, end) in ``text``."""

    kind: str
    text: str
    expected: tuple[tuple[str, int, int], ...]
    where: str


@dataclass(frozen=True, slots=True)
class Quality:
    """Per kind: expected hits, found (exact), reported, reported-and-expected; innocent lines."""

    per_kind: dict[str, tuple[int, int, int, int]]
    innocent_flagged: list[str]
    innocent_total: int

    def recall(self, kind: str) -> float:
        """Share of the kind's expected hits found with the exact span."""
        expected, found, _, _ = self.per_kind[kind]
        return found / expected if expected else 1.0

    @property
    def precision(self) -> float:
        """Share of all reported hits (innocent lines included) that were expected."""
        reported = sum(v[2] for v in self.per_kind.values())
        correct = sum(v[3] for v in self.per_kind.values())
        return correct / reported if reported else 1.0


def parse_case(line: str, where: str) -> Case:
    """One labelled line (see the module docstring); ``where`` names it in errors."""
    kind, words, marked = line.split("\t")
    expected_words = [] if words == "-" else words.split("|")
    text, spans, open_at = "", [], -1
    for ch in marked:
        if ch == "«":
            open_at = len(text)
        elif ch == "»":
            spans.append((open_at, len(text)))
        else:
            text += ch
    if len(spans) != len(expected_words):
        raise ValueError(f"{where}: {len(spans)} marked spans for {len(expected_words)} words")
    expected = tuple((w, s, e) for w, (s, e) in zip(expected_words, spans, strict=True))
    return Case(kind, text, expected, where)


def parse_cases(text: str, name: str) -> list[Case]:
    """The labelled cases of a file's ``text`` (blank and ``#`` lines skipped)."""
    cases = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            cases.append(parse_case(line, f"{name}:{n}"))
    return cases


def measure(matcher: Matcher, cases: list[Case]) -> Quality:
    """Scan every case and count (see ``Quality``)."""
    stats: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    flagged: list[str] = []
    innocent = 0
    for case in cases:
        got = {(h.word, h.start, h.end) for h in matcher.scan(case.text)}
        want = set(case.expected)
        s = stats[case.kind]
        s[0] += len(want)
        s[1] += len(got & want)
        s[2] += len(got)
        s[3] += len(got & want)
        if case.kind == "innocent":
            innocent += 1
            if got:
                flagged.append(case.where + " " + case.text)
    per_kind = {k: (a, b, c, d) for k, (a, b, c, d) in stats.items()}
    return Quality(per_kind, flagged, innocent)


def measure_split(matcher: Matcher, text: str) -> tuple[int, int, int, int]:
    """(expected split hits, found exact, innocent conversations, innocent ones flagged) of the
    conversations in ``text`` (JSON lines)."""
    expected = found = innocent = flagged = 0
    for line in text.splitlines():
        case = json.loads(line)
        messages = [(Audience(m["from"]), m["text"]) for m in case["messages"]]
        got = {
            (h.word, tuple((p.message, p.start, p.end) for p in h.parts))
            for h in scan_conversation(matcher, messages)
            if h.via == "split"
        }
        want = {(e["word"], tuple(map(tuple, e["parts"]))) for e in case["expected"]}
        expected += len(want)
        found += len(got & want)
        if case["kind"] == "innocent":
            innocent += 1
            flagged += bool(got)
    return expected, found, innocent, flagged


def report(quality: Quality, split: tuple[int, int, int, int], out: TextIO) -> None:
    """Print recall per kind, false positives, precision and the split figures."""
    for kind, (expected, found, _, _) in sorted(quality.per_kind.items()):
        if kind == "innocent":
            continue
        target = TARGETS.get(kind)
        aim = f"(>= {target:.2f})" if target is not None else ""
        print(
            f"  {kind:<12} recall {found / expected:5.2f}  {found:>3}/{expected:<3} {aim}", file=out
        )
    flagged = len(quality.innocent_flagged)
    print(
        f"  innocent look-alike lines flagged: {flagged} of {quality.innocent_total} (<= 2 per 120)",
        file=out,
    )
    for line in quality.innocent_flagged:
        print(f"    {line}", file=out)
    print(f"  precision {quality.precision:.3f} (>= 0.98)", file=out)
    expected, found, innocent, flagged = split
    print(
        f"  split over messages: recall {found / expected:.2f} {found}/{expected} (>= 0.80); "
        f"innocent conversations flagged {flagged} of {innocent}",
        file=out,
    )
