"""``media_file`` rows on both backends: recording, claiming, outcomes, the review page's reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, select, text

from monitor.archive import GroupCommitWriter, create_schema, make_engine
from monitor.archive.media_rows import (
    MEDIA,
    claim_media,
    fileid_hash,
    mark_failed,
    mark_stored,
    media_by_sha256,
    media_of_messages,
    pending_media,
    record_media,
    release_media,
    size_label,
)
from monitor.archive.msgaudit_models import MediaStatus
from tests.support.waiting import wait_until
from wecom_sdk.messages import MediaRef

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SHA_A = "a" * 64
SHA_B = "b" * 64


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def refs(*names: str) -> list[MediaRef]:
    return [
        MediaRef("file", f"fileid-{n}", md5sum="ABCDEF", size=10, filename=f"{n}.pdf")
        for n in names
    ]


def rows(engine: Engine) -> dict[int, dict]:
    with engine.connect() as conn:
        return {r["id"]: dict(r) for r in conn.execute(select(MEDIA)).mappings()}


async def test_record_media_is_idempotent_per_message_and_file(writer: GroupCommitWriter) -> None:
    assert await writer.run(lambda c: record_media(c, refs("a", "b"), "msg1", T0)) == 2
    assert await writer.run(lambda c: record_media(c, refs("a", "b"), "msg1", T0)) == 0
    assert await writer.run(lambda c: record_media(c, refs("b", "c"), "msg1", T0)) == 1
    # The same file in another message is another row (each message shows its own).
    assert await writer.run(lambda c: record_media(c, refs("a"), "msg2", T0)) == 1
    assert await writer.run(lambda c: record_media(c, [], "msg3", T0)) == 0
    stored = rows(writer.engine)
    assert len(stored) == 4
    first = stored[min(stored)]
    assert first["fileid_hash"] == fileid_hash("fileid-a") and len(first["fileid_hash"]) == 64
    assert (first["status"], first["attempts"], first["md5"]) == ("pending", 0, "abcdef")
    assert (first["announced_size"], first["filename"], first["created_at"]) == (10, "a.pdf", T0)


async def test_claims_raise_attempts_and_skip_what_is_done(writer: GroupCommitWriter) -> None:
    await writer.run(lambda c: record_media(c, refs("a", "b", "c"), "msg1", T0))
    ids = sorted(rows(writer.engine))

    def claim(after: int = 0, limit: int = 1):  # type: ignore[no-untyped-def]
        return writer.run(lambda c: claim_media(c, limit=limit, max_attempts=2, after_id=after))

    (job,) = await claim()
    assert (job.id, job.attempts, job.sdkfileid, job.md5) == (ids[0], 1, "fileid-a", "abcdef")
    # Still claimable (a later pass may take it again), but a pass moves on with after_id.
    assert [j.id for j in await claim(after=job.id, limit=5)] == ids[1:]
    await writer.run(
        lambda c: mark_stored(c, ids[0], sha256=SHA_A, size=10, mime="application/pdf", now=T0)
    )
    await writer.run(
        lambda c: mark_failed(c, ids[1], status=MediaStatus.MD5_MISMATCH, error="md5", size=9)
    )
    await writer.run(lambda c: mark_failed(c, ids[2], status=MediaStatus.TOO_LARGE, error="big"))
    # md5_mismatch is retried while attempts are left; stored and too_large are done.
    assert [j.id for j in await writer.run(lambda c: pending_media(c, 10, 2))] == [ids[1]]
    (again,) = await claim()
    assert (again.id, again.attempts, again.status) == (ids[1], 2, "md5_mismatch")
    assert await claim() == []  # its attempts are used up now
    assert await writer.run(lambda c: pending_media(c, 10, 2)) == []


async def test_a_pending_row_whose_attempts_are_used_up_fails(writer: GroupCommitWriter) -> None:
    """Claims that never finished (a crash mid-download) count: the row ends failed."""
    await writer.run(lambda c: record_media(c, refs("a"), "msg1", T0))
    for _ in range(3):
        assert len(await writer.run(lambda c: claim_media(c, limit=1, max_attempts=3))) == 1
    assert await writer.run(lambda c: claim_media(c, limit=1, max_attempts=3)) == []
    (row,) = rows(writer.engine).values()
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 3, "attempts used up")


async def test_release_gives_the_attempt_back_or_keeps_it(writer: GroupCommitWriter) -> None:
    await writer.run(lambda c: record_media(c, refs("a"), "msg1", T0))
    (job,) = await writer.run(lambda c: claim_media(c, limit=1, max_attempts=3))
    await writer.run(lambda c: release_media(c, job.id, error="[10001] network"))
    row = rows(writer.engine)[job.id]
    assert (row["status"], row["attempts"], row["error"]) == ("pending", 0, "[10001] network")
    await writer.run(lambda c: release_media(c, job.id, error="again"))  # never below 0
    assert rows(writer.engine)[job.id]["attempts"] == 0
    await writer.run(lambda c: claim_media(c, limit=1, max_attempts=3))
    await writer.run(lambda c: release_media(c, job.id, error="odd", give_back=False))
    assert rows(writer.engine)[job.id]["attempts"] == 1


async def test_outcomes_never_undo_a_stored_file(writer: GroupCommitWriter) -> None:
    await writer.run(lambda c: record_media(c, refs("a"), "msg1", T0))
    (media_id,) = rows(writer.engine)
    store = lambda c: mark_stored(c, media_id, sha256=SHA_A, size=10, mime="image/png", now=T0)  # noqa: E731
    await writer.run(store)
    await writer.run(store)  # a second worker's download of the same file: idempotent
    await writer.run(lambda c: mark_failed(c, media_id, status=MediaStatus.FAILED, error="late"))
    await writer.run(lambda c: release_media(c, media_id, error="late"))
    row = rows(writer.engine)[media_id]
    assert (row["status"], row["sha256"], row["size"], row["mime"]) == (
        "stored",
        SHA_A,
        10,
        "image/png",
    )
    assert (row["stored_at"], row["error"], row["attempts"]) == (T0, "", 0)
    with pytest.raises(ValueError, match="not a failure status"):
        await writer.run(lambda c: mark_failed(c, media_id, status="stored", error=""))


async def test_media_of_messages_and_by_sha256(writer: GroupCommitWriter) -> None:
    await writer.run(lambda c: record_media(c, refs("a", "b"), "msg1", T0))
    await writer.run(lambda c: record_media(c, [MediaRef("image", "img", size=2048)], "msg2", T0))
    await writer.run(lambda c: record_media(c, refs("a"), "msg3", T0))
    ids = sorted(rows(writer.engine))
    for media_id in (ids[0], ids[3]):  # the same bytes in two messages
        await writer.run(
            lambda c, m=media_id: mark_stored(
                c, m, sha256=SHA_A, size=5, mime="application/pdf", now=T0 + timedelta(seconds=m)
            )
        )
    with writer.engine.connect() as conn:
        found = media_of_messages(conn, ["msg2", "msg1", "nope", "msg1"])
        assert media_of_messages(conn, []) == {}
        by_sha = media_by_sha256(conn, SHA_A)
        assert media_by_sha256(conn, SHA_B) is None
    assert sorted(found) == ["msg1", "msg2"]
    assert [(v.filename, v.status) for v in found["msg1"]] == [
        ("a.pdf", "stored"),
        ("b.pdf", "pending"),
    ]
    (image,) = found["msg2"]
    assert (image.kind_label, image.state_label, image.size_label) == (
        "图片",
        "媒体文件下载中",
        "2.0 KB",
    )
    assert not image.inline_image
    stored = found["msg1"][0]
    assert (stored.kind_label, stored.size_label, stored.state_label) == ("文件", "5 B", "")
    assert not stored.inline_image  # a pdf is never inline
    assert by_sha is not None and by_sha.id == ids[0]  # the first row holding the content


def test_size_labels() -> None:
    assert [size_label(n) for n in (0, 1023, 1024, 1536, 5 * 1024**2, 3 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KB",
        "1.5 KB",
        "5.0 MB",
        "3.0 GB",
    ]


@pytest.fixture
def pg_engine(pg_schema_url: str) -> Iterator[Engine]:
    eng = make_engine(pg_schema_url)
    create_schema(eng)
    yield eng
    eng.dispose()


def test_two_claims_of_one_snapshot_cannot_both_win(pg_engine: Engine) -> None:
    """PostgreSQL, two workers' transactions: the second read the row before the first
    committed its claim; its compare-and-set then finds attempts changed and takes nothing."""
    with pg_engine.begin() as conn:
        record_media(conn, refs("a"), "msg1", T0)
    first = pg_engine.connect()
    first.begin()
    assert len(claim_media(first, limit=1, max_attempts=5)) == 1
    second_result: list[object] = []
    second_pid: list[int] = []

    def second() -> None:
        with pg_engine.begin() as conn:
            second_pid.append(int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()))
            second_result.append(claim_media(conn, limit=1, max_attempts=5))

    thread = threading.Thread(target=second)
    thread.start()

    def waiting_on_the_row(conn: Connection) -> bool:
        if not second_pid:
            return False
        wait = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
            {"pid": second_pid[0]},
        ).scalar()
        conn.rollback()  # a fresh snapshot of pg_stat_activity for the next poll
        return wait == "Lock"

    with pg_engine.connect() as probe:
        wait_until(lambda: waiting_on_the_row(probe), "the second claim to wait for the row lock")
    first.commit()
    first.close()
    thread.join(10)
    assert second_result == [[]]
    (row,) = rows(pg_engine).values()
    assert row["attempts"] == 1
