"""Full-text search of the archive: grams, the SQL builder, the index kept with the store, deletes,
the migration's backfill, and a property test against a plain LIKE scan on both databases."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert, select, text

from monitor.alerts.models import AlertMessageLink, AlertRecord
from monitor.archive import Archive, GroupCommitWriter, create_schema, make_engine
from monitor.archive.models import ArchivedHit, HitRecord, InboundRecord, MessageRecord
from monitor.archive.schema import alembic_config
from monitor.archive.search import (
    COUNT_CAP,
    SearchFilter,
    export_chunks,
    id_bounds,
    search_messages,
    search_statement,
    snippet,
)
from monitor.archive.search_index import (
    SearchIndexWriter,
    delete_from_index,
    fold,
    gram_tokens,
    query_tokens,
)

MESSAGE = MessageRecord.__table__
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def row(msg_id: int, content: str | None, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": msg_id,
        "dedupe_key": f"k{msg_id}",
        "channel": "msgaudit",
        "msg_type": "text",
        "from_user": "zhangsan",
        "to_user": "wm_cust",
        "create_time": 1_700_000_000 + msg_id,
        "content": content,
        "raw": "{}",
        "received_at": T0 + timedelta(minutes=msg_id),
        "conversation_id": "ma:zhangsan:wm_cust",
        "direction": "staff",
    }
    return {**base, **values}


def put(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(MESSAGE), rows)
    SearchIndexWriter(conn.dialect).add(conn, [(r["id"], r["content"]) for r in rows])


def found(conn: Connection, wanted: SearchFilter) -> list[int]:
    stmt = search_statement(conn.dialect.name, wanted, limit=None, bounds=id_bounds(conn, wanted))
    return [r.id for r in conn.execute(stmt)]


# -- pure parts ---------------------------------------------------------------------------------


def test_fold_lowers_ascii_letters_only() -> None:
    assert fold("AbC维Ｑ ÄÖ") == "abc维Ｑ ÄÖ"


def test_gram_tokens_are_unigrams_and_bigrams_as_hex() -> None:
    assert gram_tokens("维权A") == sorted({"x7ef4", "x6743", "x61", "x7ef4x6743", "x6743x61"})
    assert gram_tokens("aa") == ["x61", "x61x61"]
    assert gram_tokens("") == []


def test_query_tokens_one_char_is_its_unigram_longer_its_bigrams() -> None:
    assert query_tokens("维") == ["x7ef4"]
    assert query_tokens("维权了") == ["x7ef4x6743", "x6743x4e86"]
    assert query_tokens("aaa") == ["x61x61"]
    assert query_tokens("") == []
    assert all(t.isalnum() and t.isascii() for t in query_tokens("%_\\ '\"&|!:*"))


def test_snippet_marks_the_first_occurrence_and_escapes_the_rest() -> None:
    html = snippet("<script>x</script>我要维权了，维权！", "维权", before=5, after=3)
    assert str(html) == "…pt&gt;我要<mark>维权</mark>了，维…"
    assert "<script>" not in str(snippet("<script>alert(1)</script>", "ALERT"))
    assert str(snippet("<b>AbC</b>", "abc")) == "&lt;b&gt;<mark>AbC</mark>&lt;/b&gt;"
    assert str(snippet("x<y", "zz")) == "x&lt;y"


def test_filter_query_round_trip_and_audit_detail() -> None:
    wanted = SearchFilter(text="维权", staff="zs", since=date(2026, 1, 2), severity=3, page=2)
    assert wanted.query() == {
        "q": "维权",
        "staff": "zs",
        "since": "2026-01-02",
        "severity": "3",
        "page": "2",
    }
    assert "page" not in wanted.audit_detail()
    assert SearchFilter().empty and not SearchFilter(word="x").empty


# -- on both databases ----------------------------------------------------------------------------


def test_query_finds_substrings_however_words_are_segmented(engine: Engine) -> None:
    with engine.begin() as conn:
        put(
            conn,
            [
                row(1, "我要维权了"),
                row(2, "维 权"),
                row(3, "权维"),
                row(4, "Call ME at 110"),
                row(5, None, msg_type="image"),
                row(6, "100%_done\\"),
            ],
        )
        assert found(conn, SearchFilter(text="维权")) == [1]
        assert found(conn, SearchFilter(text="维")) == [3, 2, 1]
        assert found(conn, SearchFilter(text="call me")) == [4]
        assert found(conn, SearchFilter(text="1")) == [6, 4]
        assert found(conn, SearchFilter(text="%_")) == [6]
        assert found(conn, SearchFilter(text="_d")) == [6]
        assert found(conn, SearchFilter(text="\\")) == [6]
        assert found(conn, SearchFilter(text="维权了吗")) == []


def test_filters_combine_with_the_query(engine: Engine) -> None:
    with engine.begin() as conn:
        put(
            conn,
            [
                row(1, "我要维权", from_user="wm_a", direction="customer", conversation_id="c1"),
                row(2, "维权找我", from_user="lisi", conversation_id="c2"),
                row(3, "维权热线", from_user="lisi", conversation_id="c2"),
                row(4, "没什么", from_user="lisi", conversation_id="c2"),
            ],
        )
        conn.execute(
            insert(HitRecord.__table__),
            [
                {
                    "message_id": 3,
                    "word": "维权",
                    "rule_group": "g",
                    "severity": 3,
                    "span_start": 0,
                    "span_end": 2,
                    "rules_version": "v",
                }
            ],
        )
        conn.execute(
            insert(AlertRecord.__table__),
            [
                {
                    "alert_id": "a1",
                    "conversation_id": "c2",
                    "kind": "customer_risk",
                    "severity": 3,
                    "words": "[]",
                    "count": 1,
                    "first_at": T0,
                    "last_at": T0,
                    "latest_text": "",
                    "recipients": "[]",
                    "status": "claimed",
                    "notified_severity": 3,
                }
            ],
        )
        conn.execute(insert(AlertMessageLink.__table__), [{"alert_id": "a1", "message_id": 2}])
        q = "维权"
        assert found(conn, SearchFilter(text=q, staff="lisi")) == [3, 2]
        assert found(conn, SearchFilter(text=q, customer="wm_a")) == [1]
        assert found(conn, SearchFilter(text=q, staff="wm_a")) == []
        assert found(conn, SearchFilter(text=q, conversation="c2")) == [3, 2]
        assert found(conn, SearchFilter(conversation="c2")) == [4, 3, 2]
        assert found(conn, SearchFilter(text=q, word="维权")) == [3]
        assert found(conn, SearchFilter(text=q, severity=3)) == [3]
        assert found(conn, SearchFilter(text=q, severity=4)) == []
        assert found(conn, SearchFilter(text=q, state="claimed")) == [2]
        assert found(conn, SearchFilter(text=q, state="active")) == [2]
        assert found(conn, SearchFilter(text=q, state="resolved")) == []
        day = (T0 + timedelta(minutes=2)).date()
        assert found(conn, SearchFilter(text=q, since=day, until=day)) == [3, 2, 1]
        assert found(conn, SearchFilter(text=q, since=day + timedelta(days=1))) == []


def test_pages_and_a_capped_count(engine: Engine) -> None:
    with engine.begin() as conn:
        put(conn, [row(i, f"第{i}条 的") for i in range(1, COUNT_CAP + 21)])
        first = search_messages(conn, SearchFilter(text="的"), page_size=50)
        assert first.capped and first.total_label == f"{COUNT_CAP:,}+"
        assert [r.id for r in first.results] == list(range(COUNT_CAP + 20, COUNT_CAP - 30, -1))
        third = search_messages(conn, SearchFilter(text="的", page=3), page_size=50)
        assert third.results[0].id == COUNT_CAP + 20 - 100
        exact = search_messages(conn, SearchFilter(text="第1条"), page_size=50)
        assert (exact.total, exact.capped, [r.id for r in exact.results]) == (1, False, [1])
        assert search_messages(conn, SearchFilter()).results == []
        chunks = list(export_chunks(conn, SearchFilter(text="9条"), size=7))
        ids = [r.id for chunk in chunks for r in chunk]
        assert ids == sorted(
            (i for i in range(1, COUNT_CAP + 21) if "9条" in f"第{i}条"), reverse=True
        )
        assert all(len(chunk) <= 7 for chunk in chunks)


async def test_the_store_indexes_each_new_message_in_its_transaction(engine: Engine) -> None:
    async with GroupCommitWriter(engine) as writer:
        archive = Archive(writer)
        record = InboundRecord(
            dedupe_key="d1",
            channel="app",
            msg_type="text",
            from_user="u1",
            to_user="agent",
            create_time=1,
            raw="<xml/>",
            content="我要维权了",
            rules_version="v1",
            conversation_id="app:u1",
            hits=(ArchivedHit("维权", "g", 3, 2, 4),),
        )
        first = await archive.store_inbound(record)
        again = await archive.store_inbound(record)  # a WeCom retry: no second index row
        await archive.store_inbound(
            InboundRecord(
                dedupe_key="d2",
                channel="app",
                msg_type="event",
                from_user="u1",
                to_user="agent",
                create_time=2,
                raw="<xml/>",
            )
        )
    assert again.message_id == first.message_id and not again.inserted
    with engine.connect() as conn:
        assert found(conn, SearchFilter(text="维权")) == [first.message_id]
        assert found(conn, SearchFilter(text="要")) == [first.message_id]


def test_delete_from_index_removes_only_the_given_messages(engine: Engine) -> None:
    with engine.begin() as conn:
        put(conn, [row(1, "维权一"), row(2, "维权二"), row(3, None), row(4, "维权四")])
        assert delete_from_index(conn, [2, 3, 99]) == 1
        conn.execute(MESSAGE.delete().where(MESSAGE.c.id.in_([2, 3])))
        assert found(conn, SearchFilter(text="维权")) == [4, 1]
        assert found(conn, SearchFilter(text="二")) == []
        put(conn, [row(2, "又一条维权")])  # the id may come back with other text
        assert found(conn, SearchFilter(text="维权")) == [4, 2, 1]
        assert found(conn, SearchFilter(text="又")) == [2]


def test_migration_0006_backfills_messages_stored_before(empty_database_url: str) -> None:
    eng = make_engine(empty_database_url)
    try:
        config = alembic_config(empty_database_url)
        command.upgrade(config, "0005")
        with eng.begin() as conn:
            conn.execute(
                insert(MESSAGE),
                [row(i, f"旧消息#{i}# 维权" if i % 3 else None) for i in range(1, 4502)],
            )
        create_schema(eng)  # 0005 -> head: creates the index and backfills it
        with eng.connect() as conn:
            expected = [i for i in range(4501, 0, -1) if i % 3]
            assert found(conn, SearchFilter(text="维权")) == expected
            assert found(conn, SearchFilter(text="#4501#")) == [4501]
            assert found(conn, SearchFilter(text="#45#")) == []  # i % 3 == 0: no text
            assert conn.execute(select(MESSAGE.c.id).order_by(MESSAGE.c.id.desc())).first() == (
                4501,
            )
    finally:
        eng.dispose()


# -- the property: search == a LIKE scan ----------------------------------------------------------

ALPHABET = "我要维权了的人aAbB01%_\\ "
texts = st.one_of(st.none(), st.text(alphabet=ALPHABET, max_size=12))
queries = st.text(alphabet=ALPHABET, min_size=1, max_size=4).filter(lambda q: q.strip() == q)


def _like_scan(conn: Connection, query: str) -> list[int]:
    escaped = fold(query).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    folded = (
        "translate(content, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
        if conn.dialect.name == "postgresql"
        else "lower(content)"
    )
    sql = (
        f"SELECT id FROM message WHERE {folded} LIKE '%' || :q || '%' ESCAPE '\\' ORDER BY id DESC"
    )
    return [r.id for r in conn.execute(text(sql), {"q": escaped})]


@pytest.fixture
def prop_engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def test_search_finds_exactly_what_a_like_scan_finds(prop_engine: Engine) -> None:
    counter = itertools.count(1)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        corpus=st.lists(texts, min_size=1, max_size=25),
        probes=st.lists(queries, min_size=1, max_size=6),
        gone=st.sets(st.integers(0, 24), max_size=5),
    )
    def check(corpus: list[str | None], probes: list[str], gone: set[int]) -> None:
        base = next(counter) * 100
        rows = [row(base + i, content) for i, content in enumerate(corpus)]
        with prop_engine.connect() as conn:
            tx = conn.begin()
            try:
                put(conn, rows)
                dropped = [base + i for i in gone if i < len(rows)]
                delete_from_index(conn, dropped)
                conn.execute(MESSAGE.delete().where(MESSAGE.c.id.in_(dropped)))
                kept = [r for r in rows if r["id"] not in dropped]
                for query in probes:
                    like = _like_scan(conn, query)
                    assert found(conn, SearchFilter(text=query)) == like, query
                    reference = [
                        r["id"]
                        for r in reversed(kept)
                        if r["content"] is not None and fold(query) in fold(r["content"])
                    ]
                    assert like == reference, query
                    narrowed = SearchFilter(text=query, conversation="ma:zhangsan:wm_cust")
                    assert found(conn, narrowed) == like, query
            finally:
                tx.rollback()

    check()
