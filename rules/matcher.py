"""Pure matcher: every group word and reply keyword compiled into ahocorasick-rs automata.

Three automata, because most messages hit nothing and normalising in Python (then segmenting)
costs tens of automaton passes. The prefilter spellings are built in ``rules.normalize``
(``raw_patterns``, ``folded_patterns``):

- ``fast`` runs over the RAW text and is conservative: when it finds nothing, no hit and no reply
  is possible, so ``scan`` returns at the cost of one automaton call (97 % of the benchmark's
  chat). Its patterns are every character normalisation changes other than the common
  separators (traditional, full-width, upper case, emoji, zero-width, rare punctuation...) and
  two common separators in a row; then each normalised word and the first way it can be broken
  after an intact prefix ``w[:k]``: ``w[:k] + sep + w[k]``, ``w[:k] + sep + w[k-1]``, or a
  repeat ``w[:k] + w[k-1]`` spelled with what follows it. Without the former, a word in the
  normalised text is its raw spelling with common separators and repeats inserted, so one of
  the latter matches (``tests/test_matcher.py`` checks this with hypothesis against the exact
  path, on adversarial spellings of the words).
- What passes is folded: when none of ``fast``'s matches is a changing character, by removing
  the common separators (a regex), else by ``fold_chars`` (``str.translate``); texts with a
  character from ``FOLD_LIMIT`` up take ``normalize``.
- ``main`` runs over the normalised text (overlapping matches) and yields candidate hits; only
  then is the offset map built (``normalize_folded``) and the filters in ``rules.hit_filters``
  keep or drop each candidate.
- ``folded`` serves reply matching (``match_reply``, ``inspect``): over the folded text, before
  runs are collapsed, it clears what ``fast`` passed without the collapsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import ahocorasick_rs

from rules.hit_filters import (
    ascii_edges_ok,
    clause_span,
    crosses_token,
    inside_any,
    occurrences,
    pinyin_edges_ok,
    span_bounds,
)
from rules.models import (
    Audience,
    Boundary,
    Hit,
    Inspection,
    ReplyRule,
    RuleSet,
    SensitiveGroup,
    Word,
)
from rules.normalize import (
    Normalized,
    collapse_runs,
    fold_chars,
    folded_patterns,
    has_wide,
    normalize,
    normalize_folded,
    raw_patterns,
    strip_separators,
)

__all__ = ["DEFAULT_BOUNDARY", "Matcher", "compile_rules"]

#: Boundary of one- and two-character words whose ``Word.boundary`` is None. Measured on
#: tests/corpus (docs/benchmarks.md, "Boundary default"): ``word`` keeps every hit of the
#: plain and evasion kinds and removes the hard-negative false positives ``substring`` lets in.
DEFAULT_BOUNDARY = Boundary.WORD
# Mixed pinyin variants are 2**n - 1 per word; beyond this length only the full pinyin is added.
_MAX_MIXED_PINYIN = 6


@dataclass(frozen=True, slots=True)
class _Target:
    """What one normalised pattern means for one group word."""

    word: str  # canonical, as written in the rule file
    group: int
    runs: tuple[int, ...]  # minimum repeat per character; () when the word repeats nothing
    ascii_edges: bool
    word_boundary: bool
    # Pinyin variants: the syllable at each edge ("" where the edge is a hanzi).
    first_syllable: str = ""
    last_syllable: str = ""


_Find = Callable[..., list[tuple[int, int, int]]]


def _no_match(text: str, overlapping: bool = False) -> list[tuple[int, int, int]]:
    return []


class _Folded(NamedTuple):
    """A text that passed the fast automaton, folded (``fold_chars``)."""

    text: str
    odd: list[int] | None  # positions of the characters folding removed, when known
    norm: Normalized | None = None  # the whole normalisation, for texts with wide characters


class _Prepared(NamedTuple):
    """``folded`` with its runs collapsed: the normalised text, without the offset map."""

    text: str
    folded: _Folded


def _finder(patterns: list[str]) -> _Find:
    """``find_matches_as_indexes`` of an automaton of ``patterns`` (none: never matches).

    The default implementation (a contiguous NFA at these sizes): a DFA steps about a third
    faster in a tight loop, but for the fast automaton of a 10,000-word list it takes ~4 GB and
    its cache misses cost more than that in a real message's mix of work.
    """
    if not patterns:
        return _no_match
    return ahocorasick_rs.AhoCorasick(patterns).find_matches_as_indexes


def _pinyin_variants(word: str) -> list[tuple[str, str, str]]:
    """``(spelling, first syllable, last syllable)``: full pinyin and, for short words, every
    hanzi/pinyin mix (``weiquan``, ``wei权``); a syllable is "" where that edge stays hanzi."""
    from pypinyin import lazy_pinyin  # noqa: PLC0415 - only rule sets that ask for pinyin pay

    if not word or not all("\u4e00" <= c <= "\u9fff" for c in word):
        return []
    syllables = lazy_pinyin(word)
    if len(syllables) != len(word):
        return []
    n = len(word)
    masks = range(1, 2**n) if n <= _MAX_MIXED_PINYIN else [2**n - 1]
    return [
        (
            "".join(syllables[i] if mask >> i & 1 else word[i] for i in range(n)),
            syllables[0] if mask & 1 else "",
            syllables[-1] if mask >> (n - 1) & 1 else "",
        )
        for mask in masks
    ]


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


class Matcher:
    """A compiled rule set; every method is a pure function of its arguments."""

    def __init__(self, rules: RuleSet, default_boundary: Boundary) -> None:
        self.version = rules.version
        self._groups = rules.groups
        targets: dict[str, list[_Target]] = {}
        fast: set[str] = set()  # raw spellings the fast path must see: words with their repeats
        for gi, group in enumerate(rules.groups):
            for word in group.words:
                fast.update(self._add_word(targets, gi, group, word, default_boundary))
        self._patterns = list(targets)
        self._targets = [tuple(targets[p]) for p in self._patterns]
        self._must_not = [tuple(_norm(w, g.source) for w in g.must_not) for g in rules.groups]
        self._allow = [tuple(_norm(w, g.source) for w in g.allow) for g in rules.groups]
        order = sorted(range(len(rules.replies)), key=lambda i: -rules.replies[i].priority)
        self._replies = [
            (
                rules.replies[i],
                tuple(_norm(k, rules.replies[i].source) for k in rules.replies[i].keywords),
            )
            for i in order
        ]
        # "contains" rules test all their keywords in one C-level regex search.
        self._contains = [
            re.compile("|".join(map(re.escape, kws))).search if kws else None
            for _, kws in self._replies
        ]
        self._reply_must_not = [
            tuple(n for n in (_norm(w, rule.source) for w in rule.must_not) if n)
            for rule, _ in self._replies
        ]
        fast.update(k for _, kws in self._replies for k in kws)
        # Bound ``find_matches_as_indexes`` methods, looked up once: every message calls the first.
        raw = raw_patterns(fast)
        self._fast_find = _finder(raw.patterns)
        self._changing = raw.changing
        self._folded_find = _finder(folded_patterns(fast))
        self._main_find = _finder(self._patterns)

    @staticmethod
    def _add_word(
        targets: dict[str, list[_Target]],
        gi: int,
        group: SensitiveGroup,
        word: Word,
        default_boundary: Boundary,
    ) -> list[str]:
        """Add ``word``'s patterns to ``targets``; return its spellings for the fast path."""
        norm = normalize(word.text)
        if not norm.text:
            _norm(word.text, group.source)  # raises, naming the word and its source
        boundary = word.boundary
        if boundary is None:
            boundary = default_boundary if len(norm.text) <= 2 else Boundary.SUBSTRING
        runs = norm.runs if any(r > 1 for r in norm.runs) else ()
        edges = _ascii_alnum(norm.text[0]) or _ascii_alnum(norm.text[-1])
        # An all-ASCII word's boundary is the ASCII-edge rule; jieba adds nothing there.
        by_jieba = boundary is Boundary.WORD and not norm.text.isascii()
        variants = [(norm.text, _Target(word.text, gi, runs, edges, by_jieba))]
        if word.pinyin:
            # A pinyin spelling is an evasion in itself: neither segmentation nor ASCII edges
            # apply to it (jieba glues a pinyin run and its neighbours into one token).
            for spelled, first, last in _pinyin_variants(norm.text):
                target = _Target(word.text, gi, (), False, False, first, last)
                variants.append((normalize(spelled).text, target))
        for pattern, target in variants:
            bucket = targets.setdefault(pattern, [])
            if target not in bucket:
                bucket.append(target)
        # 谢谢 is matched as 谢 with a run of 2, so the raw text must hold 谢 twice.
        expanded = "".join(c * r for c, r in zip(norm.text, norm.runs, strict=True))
        return [expanded, *(p for p, _ in variants[1:])]

    def may_hit(self, text: str) -> bool:
        """Conservative: False proves that ``text`` has no hit and no reply keyword."""
        return self._prepared(text) is not None

    def _prepared(self, text: str) -> _Prepared | None:
        """``None`` when ``text`` provably holds no word or keyword, else its folded and
        normalised forms (``normalize(text).text`` without the offset map)."""
        fast = self._fast_find(text)
        return self._prepare(text, fast, screen=True) if fast else None

    def _prepare(
        self, text: str, fast: list[tuple[int, int, int]], *, screen: bool
    ) -> _Prepared | None:
        """Fold and normalise ``text``, which the fast automaton matched (``fast``).

        When none of those matches is a changing character, the only characters to fold away
        are common separators: a regex removes them and yields their positions (which
        ``normalize_folded`` needs) at a fraction of ``str.translate``'s cost over a table of
        256k entries. Texts with a character from ``FOLD_LIMIT`` up are normalised one
        character at a time instead (``_Folded.norm``). ``screen``: let the folded automaton
        clear the text before its runs are collapsed (None when it does).
        """
        changing = self._changing
        if not any(pid < changing for pid, _, _ in fast):
            folded = _Folded(*strip_separators(text))
        elif has_wide(text) is None:
            folded = _Folded(fold_chars(text), None)
        else:
            norm = normalize(text)
            return _Prepared(norm.text, _Folded(norm.text, None, norm))
        if screen and not self._folded_find(folded.text):
            return None
        return _Prepared(collapse_runs(folded.text), folded)

    @staticmethod
    def _normalized(source: str, prepared: _Prepared) -> Normalized:
        folded = prepared.folded
        if folded.norm is not None:
            return folded.norm
        return normalize_folded(source, folded.text, prepared.text, folded.odd)

    def scan(self, text: str, author: Audience = Audience.ANY) -> tuple[Hit, ...]:
        """Hits sorted by start, for groups whose audience covers ``author``.

        Must-not words, allow-list phrases and boundaries are applied; spans are in ``text``.
        """
        # What passes the fast automaton goes straight to the main one: the folded automaton
        # spares reply matching the run collapsing, and here it would clear too few messages
        # to pay for itself.
        fast = self._fast_find(text)
        if not fast:
            return ()
        prepared = self._prepare(text, fast, screen=False)
        if prepared is None:
            return ()
        matches = self._main_find(prepared.text, overlapping=True)
        if not matches:
            return ()
        return self._hits(self._normalized(text, prepared), matches, author, text)

    def scan_normalized(
        self, norm: Normalized, author: Audience = Audience.ANY, *, source: str | None = None
    ) -> tuple[Hit, ...]:
        """``scan`` on an already normalised text, without the fast path.

        With ``source`` (the original text), word boundaries are checked by segmenting only the
        clause around a hit (between sentence punctuation of the original), not the whole message.
        """
        matches = self._main_find(norm.text, overlapping=True)
        return self._hits(norm, matches, author, source) if matches else ()

    def _hits(
        self,
        norm: Normalized,
        matches: list[tuple[int, int, int]],
        author: Audience,
        source: str | None,
    ) -> tuple[Hit, ...]:
        """The candidate ``matches`` (pattern id, start, end in ``norm.text``) that pass the
        filters, as hits in the original's coordinates."""
        text = norm.text
        # Segmentation is the costly step of this path: once per clause (or once for the whole
        # text when the original is unknown), however many hits share it.
        segmented: dict[tuple[int, int], frozenset[int]] = {}
        blocked: dict[int, bool] = {}
        found: dict[tuple[int, int, int, str], Hit] = {}
        for pid, a, b in matches:
            for t in self._targets[pid]:
                group = self._groups[t.group]
                if not group.audience.covers(author):
                    continue
                if not _shape_ok(t, norm, a, b):
                    continue
                if t.word_boundary:
                    window = (0, len(text)) if source is None else clause_span(norm, source, a, b)
                    bounds = segmented.get(window)
                    if bounds is None:
                        bounds = segmented[window] = span_bounds(text, *window)
                    if crosses_token(bounds, a, b):
                        continue
                if not self._group_allows(t.group, text, a, b, blocked):
                    continue
                start, end = norm.span(a, b)
                key = (start, end, t.group, t.word)
                if key not in found:
                    found[key] = Hit(t.word, start, end, group.name, group.severity)
        return tuple(found[k] for k in sorted(found))

    def _group_allows(self, gi: int, text: str, a: int, b: int, blocked: dict[int, bool]) -> bool:
        """False when group ``gi``'s must-not words occur in ``text`` (cached in ``blocked``) or
        an allow-list phrase of it covers ``[a, b)``."""
        must_not = self._must_not[gi]
        if must_not:
            if gi not in blocked:
                blocked[gi] = any(w in text for w in must_not)
            if blocked[gi]:
                return False
        allow = self._allow[gi]
        return not (allow and inside_any(a, b, [o for p in allow for o in occurrences(text, p)]))

    def match_reply(self, text: str) -> ReplyRule | None:
        """The first reply rule (highest priority, then file order) whose keywords match."""
        prepared = self._prepared(text)
        return None if prepared is None else self._reply_for(prepared.text)

    def reply_normalized(self, norm: Normalized) -> ReplyRule | None:
        """``match_reply`` on an already normalised text, without the fast path."""
        return self._reply_for(norm.text)

    def _reply_for(self, text: str) -> ReplyRule | None:
        for (rule, keywords), contains, must_not in zip(
            self._replies, self._contains, self._reply_must_not, strict=True
        ):
            if rule.match == "exact":
                ok = text in keywords
            elif rule.match == "all":
                ok = all(k in text for k in keywords)
            else:
                ok = contains is not None and contains(text) is not None
            if ok and not any(phrase in text for phrase in must_not):
                return rule
        return None

    def inspect(self, text: str, author: Audience) -> Inspection:
        """Hits, the reply (customers and ANY only), the rules version and the recipients."""
        prepared = self._prepared(text)
        if prepared is None:
            return Inspection((), None, self.version)
        normalized = prepared.text
        # Most texts that pass the fast path only hold a reply keyword (价格, 物流 ...): they need
        # no offset map, which is the costly part of normalising.
        matches = self._main_find(normalized, overlapping=True)
        hits = (
            self._hits(self._normalized(text, prepared), matches, author, text) if matches else ()
        )
        wants_reply = author in (Audience.CUSTOMER, Audience.ANY)
        reply = self._reply_for(normalized) if wants_reply else None
        hit_groups = {h.group for h in hits}
        recipients: dict[str, None] = {}
        for group in self._groups:
            if group.name in hit_groups:
                recipients.update(dict.fromkeys(group.recipients))
        return Inspection(hits, reply, self.version, tuple(recipients))


def _shape_ok(t: _Target, norm: Normalized, a: int, b: int) -> bool:
    """Checks that need only the hit and its neighbours: repeats, ASCII and pinyin edges."""
    if t.runs and any(norm.runs[a + i] < r for i, r in enumerate(t.runs)):
        return False
    if t.ascii_edges and not ascii_edges_ok(norm, a, b):
        return False
    if t.first_syllable or t.last_syllable:
        return pinyin_edges_ok(norm, a, b, t.first_syllable, t.last_syllable)
    return True


def _norm(word: str, source: str) -> str:
    norm = normalize(word).text
    if not norm:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}{word!r} is empty after normalisation")
    return norm


def compile_rules(rules: RuleSet, *, default_boundary: Boundary = DEFAULT_BOUNDARY) -> Matcher:
    """Compile ``rules`` into one ``Matcher``.

    Args:
        rules: groups and reply rules as loaded.
        default_boundary: boundary of one- and two-character words whose ``boundary`` is None;
            longer words default to ``substring``.

    Raises:
        ValueError: a word, allow phrase or keyword is empty after normalisation.
    """
    return Matcher(rules, default_boundary)
