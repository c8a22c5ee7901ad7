"""A throw-away PostgreSQL schema for one benchmark run (shared by the alerts and kf benches)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

__all__ = ["fresh_schema"]


def _libpq(url: str) -> str:
    # psycopg wants a plain libpq URL: drop SQLAlchemy's "+driver" part of the scheme.
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}://{rest}" if sep else url


@contextmanager
def fresh_schema(url: str, prefix: str) -> Iterator[str]:
    """``url`` with ``search_path`` set to a new schema named ``<prefix>_<random>``; dropped after."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
