"""Words split over several messages of one sender (维 / 权): pure, the caller holds the window.

A message is matched on its own, and also joined to the sender's previous few messages (the
window: ``SPLIT_WINDOW`` messages in all; the live pipeline also bounds it in time). Messages are
joined with a space, which normalisation removes like any separator, so a word may run across
the join as it may across a space: clause punctuation at the end of a message still ends the
clause, and the word-boundary veto still applies. Only a hit that starts in an earlier message
and ends in the newest one is a split hit: each evasion is found once, when the message that
completes it arrives. Its parts name each message and span.

People send one clause per message, so the end of one message and the start of the next make
words by chance (今天放假 / 货到了吗): a split hit also needs one of its messages to hold nothing
but its piece of the word (维 / 权, 我要维 / 权), which is what splitting a word to dodge a filter
looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rules.matcher import Matcher
from rules.models import Audience, Hit, Severity
from rules.normalize import normalize

__all__ = [
    "SPLIT_WINDOW",
    "ConversationHit",
    "Part",
    "scan_conversation",
    "split_hits",
]

#: Messages of one sender matched as one text (the newest and the ones before it).
SPLIT_WINDOW = 3
_JOIN = " "


@dataclass(frozen=True, slots=True)
class Part:
    """``messages[message]["text"][start:end]`` is one piece of a hit."""

    message: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ConversationHit:
    """A hit within one message (one part) or spread over several (``via = "split"``)."""

    word: str
    group: str
    severity: Severity
    parts: tuple[Part, ...]
    via: str | None = None

    @classmethod
    def single(cls, message: int, hit: Hit) -> ConversationHit:
        """The hit of one message."""
        part = Part(message, hit.start, hit.end)
        return cls(hit.word, hit.group, hit.severity, (part,), hit.via)


def split_hits(
    matcher: Matcher, fragments: Sequence[tuple[int, str]], author: Audience = Audience.ANY
) -> list[ConversationHit]:
    """Hits that run from an earlier fragment into the last one.

    Args:
        matcher: the compiled rules.
        fragments: ``(message index, text)`` of one sender, oldest first, the newest last.
        author: who wrote them (selects the groups by audience).
    """
    if len(fragments) < 2:
        return []
    offsets = []
    pos = 0
    for _, text in fragments:
        offsets.append(pos)
        pos += len(text) + len(_JOIN)
    joined = _JOIN.join(text for _, text in fragments)
    last = offsets[-1]
    found = []
    for hit in matcher.scan(joined, author):
        if not (hit.start < last - len(_JOIN) and hit.end > last):
            continue
        parts = []
        fragmentary = False
        for (message, text), off in zip(fragments, offsets, strict=True):
            piece = _piece(text, hit.start - off, hit.end - off)
            if piece is not None:
                parts.append(Part(message, *piece))
                fragmentary = fragmentary or _only_piece(text, *piece)
        if fragmentary:
            found.append(ConversationHit(hit.word, hit.group, hit.severity, tuple(parts), "split"))
    return found


def _piece(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The span of the characters normalisation keeps of ``text`` within ``[start, end)`` (the
    hit's share of this message, without separators at its edges), or None."""
    norm = normalize(text)
    kept = [(s, e) for s, e in zip(norm.starts, norm.ends, strict=True) if start <= s and e <= end]
    return (kept[0][0], kept[-1][1]) if kept else None


def _only_piece(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` holds every character of ``text`` that normalisation keeps."""
    norm = normalize(text)
    return bool(norm.text) and start <= norm.starts[0] and norm.ends[-1] <= end


def scan_conversation(
    matcher: Matcher,
    messages: Sequence[tuple[Audience, str]],
    *,
    window: int = SPLIT_WINDOW,
) -> list[ConversationHit]:
    """Every hit of a conversation (``(author, text)`` in time order): each message's own, and
    the split hits over each sender's last ``window`` messages, sorted by their first part."""
    found: list[ConversationHit] = []
    history: dict[Audience, list[tuple[int, str]]] = {}
    for i, (author, text) in enumerate(messages):
        found.extend(ConversationHit.single(i, h) for h in matcher.scan(text, author))
        previous = history.setdefault(author, [])
        recent = previous[max(0, len(previous) - window + 1) :] if window > 1 else []
        found.extend(split_hits(matcher, [*recent, (i, text)], author))
        previous.append((i, text))
    return sorted(found, key=lambda h: (h.parts[0].message, h.parts[0].start, h.word))
