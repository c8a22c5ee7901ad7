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
from dataclasses import dataclass, field
from typing import NamedTuple

import ahocorasick_rs

from rules.hit_filters import (
    ascii_edges_ok,
    clause_span,
    crosses_clause,
    crosses_token,
    initials_ok,
    inside_any,
    occurrences,
    replaced_in_word,
    span_bounds,
    tight_ok,
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
    has_traditional,
    has_wide,
    lookalike_chars,
    normalize,
    normalize_folded,
    raw_patterns,
    strip_separators,
)
from rules.variants import (
    NUMERALS,
    homophone_spellings,
    initials_spelling,
    numeral_prefixes,
    ordinary,
    pinyin_spellings,
)

__all__ = ["DEFAULT_BOUNDARY", "Matcher", "compile_rules"]

#: Boundary of words whose ``Word.boundary`` is None, whatever their length. Measured on
#: tests/corpus (docs/benchmarks.md, "Boundary default"): ``word`` keeps every hit of the
#: plain and evasion kinds and removes the hard-negative false positives ``substring`` lets in
#: (小费 in 减小费用, and for longer words 加微信 in 增加微信支付).
DEFAULT_BOUNDARY = Boundary.WORD
# Chinese numerals (and only those) of the numeral view, for the regex that finds them.
_NUMERAL_CHARS = re.compile("[" + "".join(chr(c) for c in NUMERALS) + "]")
#: Spellings generated per word that must be written as one run (rules/hit_filters ``tight_ok``).
_TIGHT = frozenset(("pinyin", "homophone", "initials"))


@dataclass(frozen=True, slots=True)
class _Target:
    """What one normalised pattern means for one group word."""

    word: str  # canonical, as written in the rule file
    group: int
    runs: tuple[int, ...]  # minimum repeat per character; () when the word repeats nothing
    ascii_edges: bool
    word_boundary: bool
    #: How the spelling differs from the word: None (the word itself) or a ``Spelling.via``.
    via: str | None = None
    breaks: tuple[int, ...] = ()  # pinyin: offsets where whitespace may stand
    replaced: int = -1  # homophone: offset of the replaced character


@dataclass(slots=True)
class _Build:
    """What compiling collects: spellings -> targets for the main automaton and the numeral
    view; what the fast path must see, as ``fast`` (broken and repeated like words) and
    ``tight`` (generated spellings written as one run; value: offsets where a space may stand).
    """

    targets: dict[str, list[_Target]] = field(default_factory=dict)
    numerals: dict[str, list[_Target]] = field(default_factory=dict)
    fast: set[str] = field(default_factory=set)
    tight: dict[str, tuple[int, ...]] = field(default_factory=dict)
    homophones: set[str] = field(default_factory=set)

    def drop_ordinary(self) -> None:
        """Drop the homophone spellings that are ordinary text (rules/variants ``ordinary``),
        unless they spell some word in another way too (the word itself, pinyin...)."""
        for spelling in ordinary(self.homophones):
            kept = [t for t in self.targets[spelling] if t.via != "homophone"]
            if kept:
                self.targets[spelling] = kept
            else:
                del self.targets[spelling]
                del self.tight[spelling]


_Matches = list[tuple[int, int, int]] | tuple[()]
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


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


class Matcher:
    """A compiled rule set; every method is a pure function of its arguments."""

    def __init__(self, rules: RuleSet, default_boundary: Boundary) -> None:
        self.version = rules.version
        self._groups = rules.groups
        build = _Build()
        for gi, group in enumerate(rules.groups):
            for word in group.words:
                self._add_word(build, gi, group, word, default_boundary)
        build.drop_ordinary()
        targets, numerals, fast, tight = build.targets, build.numerals, build.fast, build.tight
        self._patterns = list(targets)
        self._targets = [tuple(targets[p]) for p in self._patterns]
        self._numeral_patterns = list(numerals)
        self._numeral_targets = [tuple(numerals[p]) for p in self._numeral_patterns]
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
        keywords = {k for _, kws in self._replies for k in kws}
        # Bound ``find_matches_as_indexes`` methods, looked up once: every message calls the first.
        raw = raw_patterns(fast, tight, keywords)
        fast |= keywords
        self._fast_find = _finder(raw.patterns)
        self._changing = raw.changing
        self._folded_find = _finder(folded_patterns(fast, tight))
        self._main_find = _finder(self._patterns)
        self._numeral_find = _finder(self._numeral_patterns)

    @staticmethod
    def _add_word(
        build: _Build, gi: int, group: SensitiveGroup, word: Word, default_boundary: Boundary
    ) -> None:
        """Add ``word``'s spellings and fast-path sources to ``build``."""
        targets, numerals, fast, tight = build.targets, build.numerals, build.fast, build.tight
        norm = normalize(word.text)
        if not norm.text:
            _norm(word.text, group.source)  # raises, naming the word and its source
        text = norm.text
        boundary = word.boundary or default_boundary
        runs = norm.runs if any(r > 1 for r in norm.runs) else ()
        edges = _ascii_alnum(text[0]) or _ascii_alnum(text[-1])
        # An all-ASCII word's boundary is the ASCII-edge rule; jieba adds nothing there.
        by_jieba = boundary is Boundary.WORD and not text.isascii()
        literal = _Target(word.text, gi, runs, edges, by_jieba)
        variants = [(text, literal)]
        if word.pinyin:
            for sp in pinyin_spellings(text):
                # Latin edges are word edges (hongbaoshi is no 红包); a hanzi edge of a mixed
                # spelling is held to segmentation like the word (思wei权衡).
                mixed = by_jieba and not sp.text.isascii()
                variants.append(
                    (sp.text, _Target(word.text, gi, (), True, mixed, "pinyin", sp.breaks))
                )
        if word.homophones:
            for sp in homophone_spellings(text):
                target = _Target(word.text, gi, (), False, True, "homophone", (), sp.replaced)
                variants.append((sp.text, target))
                build.homophones.add(sp.text)
        initials = initials_spelling(text) if word.initials else None
        if initials is not None:
            variants.append((initials.text, _Target(word.text, gi, (), True, False, "initials")))
        for pattern, target in variants:
            bucket = targets.setdefault(pattern, [])
            if target not in bucket:
                bucket.append(target)
        for pattern, target in variants[1:]:
            tight.setdefault(pattern, target.breaks)
        # 谢谢 is matched as 谢 with a run of 2, so the raw text must hold 谢 twice.
        fast.add("".join(c * r for c, r in zip(text, norm.runs, strict=True)))
        prefixes = numeral_prefixes(text)
        if prefixes:
            target = _Target(word.text, gi, (), True, False, "numerals")
            bucket = numerals.setdefault(text, [])
            if target not in bucket:
                bucket.append(target)
            fast.update(prefixes)

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
        256k entries. Texts with a character from ``FOLD_LIMIT`` up, or a traditional one (its
        phrases are converted whole), take ``normalize`` instead (``_Folded.norm``). ``screen``: let the folded automaton
        clear the text before its runs are collapsed (None when it does).
        """
        changing = self._changing
        if not any(pid < changing for pid, _, _ in fast):
            folded = _Folded(*strip_separators(text))
        elif has_wide(text) is None and not has_traditional(text):
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
        matches, numerals = self._candidates(prepared.text)
        if not (matches or numerals):
            return ()
        return self._hits(self._normalized(text, prepared), matches, author, text, numerals)

    def _candidates(self, normalized: str) -> tuple[_Matches, _Matches]:
        """Candidate matches of the main automaton and of the numeral view (一二三 -> 123)."""
        matches = self._main_find(normalized, overlapping=True)
        if self._numeral_patterns and _NUMERAL_CHARS.search(normalized):
            view = normalized.translate(NUMERALS)
            return matches, self._numeral_find(view, overlapping=True)
        return matches, []

    def scan_normalized(
        self, norm: Normalized, author: Audience = Audience.ANY, *, source: str | None = None
    ) -> tuple[Hit, ...]:
        """``scan`` on an already normalised text, without the fast path.

        ``source`` is the original text: clause punctuation, model-number joiners and the
        whitespace allowed inside pinyin are read there, and word boundaries are checked by
        segmenting only the clause around a hit. Without it those checks are stricter (no
        whitespace in pinyin, no initials) or skipped (clauses, joiners).
        """
        matches, numerals = self._candidates(norm.text)
        return self._hits(norm, matches, author, source, numerals) if matches or numerals else ()

    def _hits(
        self,
        norm: Normalized,
        matches: _Matches,
        author: Audience,
        source: str | None,
        numerals: _Matches = (),
    ) -> tuple[Hit, ...]:
        """The candidate ``matches`` (pattern id, start, end in ``norm.text``) and ``numerals``
        (the same, of the numeral view) that pass the filters, as hits in the original's
        coordinates."""
        text = norm.text
        # Segmentation is the costly step of this path: once per clause (or once for the whole
        # text when the original is unknown), however many hits share it.
        segmented: dict[tuple[int, int], frozenset[int]] = {}
        blocked: dict[int, bool] = {}
        found: dict[tuple[int, int, int, str], Hit] = {}
        candidates = [(self._targets[pid], a, b) for pid, a, b in matches]
        candidates += [(self._numeral_targets[pid], a, b) for pid, a, b in numerals]
        for targets, a, b in candidates:
            if source is not None and crosses_clause(norm, source, a, b):
                continue
            for t in targets:
                group = self._groups[t.group]
                if not group.audience.covers(author):
                    continue
                if not _shape_ok(t, norm, source, a, b):
                    continue
                if t.word_boundary:
                    window = (0, len(text)) if source is None else clause_span(norm, source, a, b)
                    bounds = segmented.get(window)
                    if bounds is None:
                        bounds = segmented[window] = span_bounds(text, *window)
                    if crosses_token(bounds, a, b):
                        continue
                    if t.replaced >= 0 and replaced_in_word(bounds, a, b, t.replaced):
                        continue
                if not self._group_allows(t.group, text, a, b, blocked):
                    continue
                start, end = norm.span(a, b)
                key = (start, end, t.group, t.word)
                if key not in found:
                    via = t.via
                    if via is None and source is not None and lookalike_chars(source, start, end):
                        via = "lookalike"
                    found[key] = Hit(t.word, start, end, group.name, group.severity, via)
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
        matches, numerals = self._candidates(normalized)
        hits = (
            self._hits(self._normalized(text, prepared), matches, author, text, numerals)
            if matches or numerals
            else ()
        )
        wants_reply = author in (Audience.CUSTOMER, Audience.ANY)
        reply = self._reply_for(normalized) if wants_reply else None
        hit_groups = {h.group for h in hits}
        recipients: dict[str, None] = {}
        for group in self._groups:
            if group.name in hit_groups:
                recipients.update(dict.fromkeys(group.recipients))
        return Inspection(hits, reply, self.version, tuple(recipients))


def _shape_ok(t: _Target, norm: Normalized, source: str | None, a: int, b: int) -> bool:
    """Checks that need only the hit and its neighbours: repeats, ASCII edges, one-run
    spellings, standalone initials, numerals."""
    if t.runs and any(norm.runs[a + i] < r for i, r in enumerate(t.runs)):
        return False
    via = t.via
    if via in _TIGHT and not tight_ok(norm, source, a, b, t.breaks):
        return False
    if via == "initials":
        return initials_ok(norm, source, a, b)
    if via == "numerals":
        return _numerals_ok(norm, a, b)
    return not t.ascii_edges or ascii_edges_ok(norm, a, b, source)


def _numerals_ok(norm: Normalized, a: int, b: int) -> bool:
    """A numeral-view hit holds a Chinese numeral (else it is the main automaton's), no
    collapsed repeat (幺幺二 is 112), and no digit or numeral glued to either edge."""
    text = norm.text
    if _NUMERAL_CHARS.search(text, a, b) is None or any(norm.runs[i] != 1 for i in range(a, b)):
        return False
    if a > 0 and norm.ends[a - 1] == norm.starts[a] and _is_digit(text[a - 1]):
        return False
    return not (b < len(text) and norm.ends[b - 1] == norm.starts[b] and _is_digit(text[b]))


def _is_digit(c: str) -> bool:
    return (c.isascii() and c.isdigit()) or _NUMERAL_CHARS.fullmatch(c) is not None


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
        default_boundary: boundary of words whose ``boundary`` is None.

    Raises:
        ValueError: a word, allow phrase or keyword is empty after normalisation.
    """
    return Matcher(rules, default_boundary)
