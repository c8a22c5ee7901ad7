"""The full-text search index of archived messages: character unigrams and bigrams.

A message's ``content`` is folded (ASCII letters to lower case, nothing else changed) and cut into
every character (unigram) and every pair of adjacent characters (bigram), each spelled as a safe
ASCII token: ``x`` and the lower-case hex code point per character (``维`` is ``x7ef4``, ``维权``
is ``x7ef4x6743``). A query of one character needs its unigram, a longer one all of its bigrams:
a message holding the query holds those grams, so the index never misses a message, and a recheck
on the real text (:mod:`monitor.archive.search`) drops the few that hold the grams apart.

Storage, one row per message with non-empty ``content`` (keyed by ``message.id``):

- PostgreSQL: table ``message_search(message_id bigint primary key, grams tsvector)`` with a GIN
  index; the tokens go in through ``array_to_tsvector`` (no parser, no stemming, no quoting).
- SQLite: a contentless FTS5 table ``message_search(grams)`` (``content=''``, ``detail=none``,
  ``tokenize=ascii``) whose rowid is the message id. SQLite 3.40 has no ``contentless_delete``:
  a row is deleted with FTS5's ``'delete'`` command, which needs the very tokens it was indexed
  with. They are recomputed from the message's stored text, which never changes, so
  :func:`delete_from_index` must run BEFORE the message rows are deleted, in the same transaction.

The index rows are written by the archive's store in the transaction that inserts the messages
(:class:`SearchIndexWriter`), and for messages stored before revision 0006 by its backfill
(:func:`backfill`). These objects are made by migration 0006, not from the models (an FTS5 table
is not a SQLAlchemy table): :data:`SEARCH_TABLES` names what they add to the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect, text

__all__ = [
    "INDEX_TABLE",
    "SEARCH_TABLES",
    "SearchIndexWriter",
    "backfill",
    "create_index_objects",
    "delete_from_index",
    "drop_index_objects",
    "fold",
    "gram_tokens",
    "query_tokens",
]

INDEX_TABLE = "message_search"
"""The index's table (a virtual FTS5 table on SQLite)."""

SEARCH_TABLES = frozenset(
    {
        INDEX_TABLE,
        # FTS5's shadow tables (SQLite); a contentless, detail=none, columnsize=0 table has these.
        f"{INDEX_TABLE}_data",
        f"{INDEX_TABLE}_idx",
        f"{INDEX_TABLE}_config",
        f"{INDEX_TABLE}_docsize",
        f"{INDEX_TABLE}_content",
    }
)
"""Every table name the search index may add, for tools that compare the schema with the models."""

_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}

BACKFILL_BATCH = 2000
"""Messages read and indexed per step of :func:`backfill`."""


def fold(value: str) -> str:
    """``value`` with the ASCII letters A-Z lower-cased; every other character as it is."""
    return value.translate(_ASCII_LOWER)


def gram_tokens(content: str) -> list[str]:
    """The index tokens of a message's text: its folded unigrams and bigrams, each once, sorted."""
    hexes = [f"x{ord(char):x}" for char in fold(content)]
    grams = set(hexes)
    grams.update(map(str.__add__, hexes, hexes[1:]))
    return sorted(grams)


def query_tokens(query: str) -> list[str]:
    """The tokens a message must hold to contain ``query`` (folded): its unigram when it is one
    character, else its bigrams; each once, in query order. Empty for an empty query."""
    hexes = [f"x{ord(char):x}" for char in fold(query)]
    if len(hexes) == 1:
        return hexes
    seen: dict[str, None] = {}
    for pair in map(str.__add__, hexes, hexes[1:]):
        seen.setdefault(pair, None)
    return list(seen)


def _nonempty(rows: Iterable[tuple[int, str | None]]) -> list[tuple[int, str]]:
    return [(message_id, content) for message_id, content in rows if content]


class SearchIndexWriter:
    """Writes and deletes index rows on a connection of ``dialect`` (one statement per call)."""

    def __init__(self, dialect: Dialect) -> None:
        self._postgres = dialect.name == "postgresql"

    def add(self, conn: Connection, rows: Sequence[tuple[int, str | None]]) -> None:
        """Index ``(message_id, content)`` pairs; a message without text gets no row."""
        indexed = _nonempty(rows)
        if not indexed:
            return
        if self._postgres:
            conn.exec_driver_sql(
                f"INSERT INTO {INDEX_TABLE} (message_id, grams) "
                "SELECT id, array_to_tsvector(string_to_array(g, ' ')) "
                "FROM unnest(%s::bigint[], %s::text[]) AS u(id, g)",
                (
                    [message_id for message_id, _ in indexed],
                    [" ".join(gram_tokens(content)) for _, content in indexed],
                ),
            )
        else:
            conn.exec_driver_sql(
                f"INSERT INTO {INDEX_TABLE} (rowid, grams) VALUES (?, ?)",
                [(message_id, " ".join(gram_tokens(content))) for message_id, content in indexed],
            )

    def delete(self, conn: Connection, message_ids: Sequence[int]) -> int:
        """Remove the index rows of ``message_ids``; see :func:`delete_from_index`."""
        if not message_ids:
            return 0
        if self._postgres:
            result = conn.exec_driver_sql(
                f"DELETE FROM {INDEX_TABLE} WHERE message_id = ANY(%s::bigint[])",
                (list(message_ids),),
            )
            return int(result.rowcount)
        deleted = 0
        for start in range(0, len(message_ids), 500):
            chunk = list(message_ids[start : start + 500])
            marks = ", ".join("?" * len(chunk))
            found = conn.exec_driver_sql(
                f"SELECT id, content FROM message WHERE id IN ({marks})", tuple(chunk)
            ).all()
            rows = _nonempty((row[0], row[1]) for row in found)
            if rows:
                conn.exec_driver_sql(
                    f"INSERT INTO {INDEX_TABLE} ({INDEX_TABLE}, rowid, grams) "
                    "VALUES ('delete', ?, ?)",
                    [(message_id, " ".join(gram_tokens(content))) for message_id, content in rows],
                )
            deleted += len(rows)
        return deleted


def delete_from_index(conn: Connection, message_ids: Sequence[int]) -> int:
    """Remove the search index rows of ``message_ids`` on ``conn``'s transaction.

    Call it BEFORE deleting the messages themselves, in the same transaction: on SQLite the
    index row is removed with the tokens recomputed from the stored text (see the module
    docstring), so a message already gone cannot be removed from the index any more. Ids
    without an index row (no text, or unknown) are skipped. Returns how many rows it removed.
    """
    return SearchIndexWriter(conn.dialect).delete(conn, message_ids)


def create_index_objects(conn: Connection) -> None:
    """Create the index table (and its GIN index on PostgreSQL), empty."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            f"CREATE TABLE {INDEX_TABLE} (message_id BIGINT PRIMARY KEY, grams TSVECTOR NOT NULL)"
        )
        conn.exec_driver_sql(
            f"CREATE INDEX ix_{INDEX_TABLE}_grams ON {INDEX_TABLE} USING gin (grams)"
        )
    else:
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE {INDEX_TABLE} USING fts5(grams, content='', "
            "detail='none', columnsize=0, tokenize='ascii')"
        )


def drop_index_objects(conn: Connection) -> None:
    """Drop the index (its shadow tables and GIN index go with it)."""
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {INDEX_TABLE}")


def backfill(conn: Connection, *, batch: int = BACKFILL_BATCH) -> int:
    """Index every message with text, ``batch`` messages per read (keyset by id); returns the
    number of messages read. For an empty index (migration 0006): it does not skip rows that
    already have one."""
    writer = SearchIndexWriter(conn.dialect)
    after = 0
    seen = 0
    while True:
        rows: Sequence[Any] = conn.execute(
            text("SELECT id, content FROM message WHERE id > :after ORDER BY id LIMIT :batch"),
            {"after": after, "batch": batch},
        ).all()
        if not rows:
            return seen
        writer.add(conn, [(row[0], row[1]) for row in rows])
        seen += len(rows)
        after = rows[-1][0]
