"""Retention on both backends: what a purge deletes and keeps (holds, open cases, mixed blocks),
that the hash chains verify afterwards, and that tampering after a purge is still found."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from monitor.alerts.models import AlertRecord
from monitor.archive.audit import AUDIT
from monitor.archive.chain import (
    Chain,
    Checkpoint,
    Entry,
    block_hash,
    decode_checkpoint,
    encode_checkpoint,
    is_checkpoint,
)
from monitor.archive.chain_scan import message_digests
from monitor.archive.chain_store import read_heads
from monitor.archive.holds import HoldError, load_hold_set, release_hold
from monitor.archive.media_store import MediaStore
from monitor.archive.models import HitRecord, MessageRecord
from monitor.archive.retention import PurgeCounts, PurgeOptions, cutoff_for, purge
from monitor.archive.verify import ChainReport, verify_database
from tests.support.retention import DAYS, DELETED, KEPT, Seeded, message_ids, seed


@pytest.fixture
def engine(schema_engine: Engine) -> Engine:
    return schema_engine


@pytest.fixture
async def seeded(engine: Engine, tmp_path: Path) -> Seeded:
    return await seed(engine, tmp_path / "media")


def options(seeded: Seeded, tmp_path: Path, **kwargs: object) -> PurgeOptions:
    return PurgeOptions(
        cutoff=seeded.cutoff,
        retention_days=DAYS,
        media_store=MediaStore(tmp_path / "media"),
        batch_size=2,  # several batches, so several checkpoints
        clock=lambda: seeded.now,
        **kwargs,  # type: ignore[arg-type]
    )


def reports(engine: Engine) -> dict[Chain, ChainReport]:
    return {r.chain: r for r in verify_database(engine)}


def problems(engine: Engine) -> list[str]:
    return [r.problem.describe() for r in verify_database(engine) if r.problem is not None]


def sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def blocks(engine: Engine) -> list[tuple[int, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT seq, entries FROM chain_block WHERE chain = 'archive' ORDER BY seq")
        )
        return [(int(seq), str(entries)) for seq, entries in rows]


# -- pure parts -----------------------------------------------------------------------------------


def test_cutoff_is_none_when_kept_forever() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert cutoff_for(now, 0) is None
    assert cutoff_for(now, 30) == datetime(2026, 5, 2, tzinfo=UTC)
    with pytest.raises(ValueError, match="negative"):
        cutoff_for(now, -1)


def test_checkpoint_text_round_trips_and_refuses_other_spellings() -> None:
    cutoff = datetime(2026, 5, 2, 8, tzinfo=UTC)
    digest = "ab" * 32
    checkpoint = Checkpoint(
        cutoff, (Entry("message_flag", 3, digest), Entry("message", 12, digest))
    )
    text_ = encode_checkpoint(checkpoint)
    assert text_ == f"purge:2026-05-02T08:00:00+00:00 -m12:{digest} -f3:{digest}"
    assert is_checkpoint(text_) and not is_checkpoint(f"m1:{digest}")
    assert decode_checkpoint(text_) == Checkpoint(
        cutoff, (Entry("message", 12, digest), Entry("message_flag", 3, digest))
    )
    for bad in (
        f"purge:2026-05-02T08:00:00+00:00 m12:{digest}",  # no "-"
        f"purge:2026-05-02T10:00:00+02:00 -m12:{digest}",  # not UTC
        f"purge:2026-05-02T08:00:00 -m12:{digest}",  # naive
        f"purge:2026-05-02T08:00:00+00:00 -f3:{digest} -m12:{digest}",  # not sorted
        f"purge:2026-05-02T08:00:00+00:00 -m12:{digest} -m12:{digest}",  # twice
        f"purge:soon -m12:{digest}",
    ):
        with pytest.raises(ValueError):
            decode_checkpoint(bad)


# -- a purge --------------------------------------------------------------------------------------


async def test_purge_deletes_what_is_past_retention_and_keeps_holds_and_open_cases(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    media = MediaStore(tmp_path / "media")
    assert media.exists(seeded.media_sha)
    counts = purge(engine, options(seeded, tmp_path))
    assert counts == PurgeCounts(
        messages=3,
        hits=2,
        flags=1,
        alert_links=1,
        media_rows=1,
        media_files=1,
        kept_by_hold=5,
        alerts=1,
        notes=1,
        checkpoints=2,  # batches of 2: (old_hit, old_staff), (conv_held, staff_*): none, ...
    )
    ids = seeded.ids
    assert message_ids(engine) == {ids[name] for name in KEPT}
    assert not media.exists(seeded.media_sha)
    with engine.connect() as conn:
        alerts = {r[0] for r in conn.execute(select(AlertRecord.__table__.c.alert_id))}
        hits = conn.execute(select(func.count()).select_from(HitRecord.__table__)).scalar_one()
        flags = conn.execute(text("SELECT count(*) FROM message_flag")).scalar_one()
        notes = conn.execute(text("SELECT count(*) FROM case_note")).scalar_one()
        audit = conn.execute(
            select(AUDIT.c.actor, AUDIT.c.source, AUDIT.c.detail).where(
                AUDIT.c.action == "archive_purge"
            )
        ).one()
    assert (alerts, hits, flags, notes) == ({"al-open"}, 0, 0, 0)
    detail = json.loads(audit.detail)
    assert (audit.actor, audit.source) == ("cli", "cli")
    assert (detail["messages"], detail["kept_by_hold"], detail["retention_days"]) == (3, 5, DAYS)
    assert detail["cutoff"] == seeded.cutoff.isoformat()
    head = read_heads_of(engine)[Chain.ARCHIVE]
    assert detail["archive_head"] == f"{head.seq} {head.block_hash}"  # type: ignore[attr-defined]
    found = reports(engine)
    assert [r.problem for r in found.values()] == [None, None]
    assert dict(found[Chain.ARCHIVE].purged) == {
        "message": 3,
        "message_flag": 1,
        "msgaudit_quarantine": 0,
    }
    assert found[Chain.ARCHIVE].rows["message"] == len(KEPT)


async def test_a_dry_run_counts_the_same_and_changes_nothing(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    heads = read_heads_of(engine)
    counts = purge(engine, options(seeded, tmp_path, dry_run=True))
    assert (counts.messages, counts.hits, counts.flags, counts.media_rows) == (3, 2, 1, 1)
    assert (counts.kept_by_hold, counts.alerts, counts.notes, counts.checkpoints) == (5, 1, 1, 0)
    assert counts.media_files == 1
    assert read_heads_of(engine) == heads
    assert len(message_ids(engine)) == len(DELETED) + len(KEPT)


def read_heads_of(engine: Engine) -> dict[Chain, object]:
    with engine.connect() as conn:
        return dict(read_heads(conn))


async def test_purging_twice_deletes_nothing_more_and_adds_no_checkpoint(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    purge(engine, options(seeded, tmp_path))
    archive_blocks = blocks(engine)
    again = purge(engine, options(seeded, tmp_path))
    assert (again.messages, again.checkpoints, again.alerts, again.kept_by_hold) == (0, 0, 0, 5)
    assert blocks(engine) == archive_blocks
    assert problems(engine) == []


async def test_a_released_hold_no_longer_keeps_its_messages(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        hold_id = conn.execute(text("SELECT id FROM legal_hold WHERE value = 'zhang'")).scalar_one()
        with pytest.raises(HoldError):
            release_hold(conn, hold_id, reason="  ", actor="admin", now=seeded.now)
        release_hold(conn, hold_id, reason="结案", actor="admin", now=seeded.now)
        assert "zhang" not in load_hold_set(conn).staff
    counts = purge(engine, options(seeded, tmp_path))
    assert counts.messages == 5
    assert seeded.ids["staff_wrote"] not in message_ids(engine)
    assert problems(engine) == []


async def test_a_block_mixing_held_and_expired_rows_still_verifies(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    ids = seeded.ids
    mixed = [t for _seq, t in blocks(engine) if f"m{ids['mix_held']}:" in t]
    assert len(mixed) == 1 and f"m{ids['mix_gone']}:" in mixed[0]
    purge(engine, options(seeded, tmp_path))
    assert ids["mix_held"] in message_ids(engine) and ids["mix_gone"] not in message_ids(engine)
    assert problems(engine) == []
    # The held row of that block is still checked against it.
    sql(engine, "UPDATE message SET content = 'changed' WHERE id = :id", id=ids["mix_held"])
    assert problems(engine) == [
        f"archive chain broken at block 7: message {ids['mix_held']} was modified"
    ]


# -- tampering after a purge ----------------------------------------------------------------------


async def test_deleting_or_changing_a_kept_row_after_a_purge_is_reported(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    purge(engine, options(seeded, tmp_path))
    ids = seeded.ids
    sql(engine, "UPDATE message SET content = 'x' WHERE id = :id", id=ids["new"])
    assert problems(engine) == [
        f"archive chain broken at block 8: message {ids['new']} was modified"
    ]
    sql(engine, "DELETE FROM message WHERE id = :id", id=ids["conv_held"])
    assert problems(engine) == [
        f"archive chain broken at block 3: message {ids['conv_held']} was deleted"
    ]


async def test_a_row_deleted_without_a_checkpoint_is_reported_even_beside_purged_ones(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    purge(engine, options(seeded, tmp_path))
    sql(engine, "DELETE FROM message WHERE id = :id", id=seeded.ids["mix_held"])
    assert problems(engine) == [
        f"archive chain broken at block 7: message {seeded.ids['mix_held']} was deleted"
    ]


def _last_checkpoint(engine: Engine) -> tuple[int, str]:
    return [(seq, t) for seq, t in blocks(engine) if is_checkpoint(t)][-1]


def _append_forged(engine: Engine, entries_text: str) -> int:
    """Append a correctly hashed block with these entries, as someone who knows the format."""
    with engine.begin() as conn:
        seq, last = conn.execute(
            text(
                "SELECT seq, block_hash FROM chain_block WHERE chain = 'archive' "
                "ORDER BY seq DESC LIMIT 1"
            )
        ).one()
        at = datetime.now(UTC)
        digest = block_hash("archive", seq + 1, last, at, entries_text)
        conn.execute(
            text(
                "INSERT INTO chain_block (chain, seq, prev_hash, block_hash, created_at, entries) "
                "VALUES ('archive', :seq, :prev, :hash, :at, :entries)"
            ),
            {"seq": seq + 1, "prev": last, "hash": digest, "at": at, "entries": entries_text},
        )
    return int(seq) + 1


async def test_a_checkpoint_edited_to_cover_a_deleted_row_is_reported(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    purge(engine, options(seeded, tmp_path))
    ids = seeded.ids
    with engine.connect() as conn:
        digest = message_digests(conn, MessageRecord.__table__, HitRecord.__table__, [ids["new"]])
    seq, entries = _last_checkpoint(engine)
    checkpoint = decode_checkpoint(entries)
    forged = Checkpoint(
        checkpoint.cutoff, (*checkpoint.purged, Entry("message", ids["new"], digest[ids["new"]]))
    )
    sql(engine, "DELETE FROM message WHERE id = :id", id=ids["new"])
    sql(
        engine,
        "UPDATE chain_block SET entries = :e WHERE chain = 'archive' AND seq = :s",
        e=encode_checkpoint(forged),
        s=seq,
    )
    assert problems(engine) == [
        f"archive chain broken at block {seq}: the block was modified "
        "(its hash does not match its contents)"
    ]


async def test_a_forged_checkpoint_naming_a_present_or_unrecorded_row_is_reported(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    purge(engine, options(seeded, tmp_path))
    ids = seeded.ids
    with engine.connect() as conn:
        digest = message_digests(conn, MessageRecord.__table__, HitRecord.__table__, [ids["new"]])
    cutoff = seeded.cutoff
    # A row still present.
    seq = _append_forged(
        engine,
        encode_checkpoint(Checkpoint(cutoff, (Entry("message", ids["new"], digest[ids["new"]]),))),
    )
    assert problems(engine) == [
        f"archive chain broken at block {seq}: the purge checkpoint names message {ids['new']}, "
        "which is still present or which no earlier block recorded with that digest"
    ]
    # Deleted, but named with another digest than its block recorded: the deletion is reported.
    sql(engine, "DELETE FROM chain_block WHERE chain = 'archive' AND seq = :s", s=seq)
    sql(engine, "DELETE FROM message WHERE id = :id", id=ids["new"])
    _append_forged(
        engine, encode_checkpoint(Checkpoint(cutoff, (Entry("message", ids["new"], "0" * 64),)))
    )
    assert problems(engine) == [
        f"archive chain broken at block 8: message {ids['new']} was deleted"
    ]


async def test_a_row_named_by_two_checkpoints_is_reported(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    purge(engine, options(seeded, tmp_path))
    _seq, entries = _last_checkpoint(engine)
    seq = _append_forged(engine, entries)  # the same checkpoint again
    gone = decode_checkpoint(entries).purged[0]
    assert problems(engine) == [
        f"archive chain broken at block {seq}: the purge checkpoint names {gone.table} "
        f"{gone.row_id}, which is still present or which no earlier block recorded with that digest"
    ]


async def test_the_audit_chain_still_verifies_and_holds_its_rows(
    engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    before = reports(engine)[Chain.AUDIT].rows["audit_event"]
    purge(engine, options(seeded, tmp_path, actor="ops"))
    audit = reports(engine)[Chain.AUDIT]
    assert audit.problem is None
    assert audit.rows["audit_event"] == before + 1
    assert before == 2  # the two holds set by the seed


def test_purge_refuses_a_naive_cutoff() -> None:
    with pytest.raises(ValueError, match="aware"):
        PurgeOptions(cutoff=datetime(2026, 1, 1), retention_days=1)
    with pytest.raises(ValueError, match="positive"):
        PurgeOptions(cutoff=datetime.now(UTC) - timedelta(days=1), retention_days=1, batch_size=0)


def test_paged_export_bytes_equal_the_writers() -> None:
    from io import BytesIO
    from zoneinfo import ZoneInfo

    from monitor.archive.export import (
        ExportHit,
        ExportRow,
        csv_header,
        csv_lines,
        jsonl_lines,
        write_csv,
        write_jsonl,
    )

    tz = ZoneInfo("Asia/Shanghai")
    rows = [
        ExportRow(
            id=i,
            received_at=datetime(2026, 1, 1, tzinfo=UTC),
            create_time=1_700_000_000,
            channel="kf",
            conversation="kf:K:wm1",
            sender="wm1",
            direction="customer",
            msg_type="text",
            event=None,
            text=text_,
            rules_version=None,
            hits=(ExportHit("投诉", "g", 3, 0, 2),),
        )
        for i, text_ in enumerate(["=1+1", 'a,b\n"c"', "投诉"], start=1)
    ]
    whole_csv, whole_jsonl = BytesIO(), BytesIO()
    write_csv(rows, whole_csv, tz=tz)
    write_jsonl(rows, whole_jsonl, tz=tz)
    assert csv_header() + csv_lines(rows[:2], tz=tz) + csv_lines(rows[2:], tz=tz) == (
        whole_csv.getvalue()
    )
    assert jsonl_lines(rows[:1], tz=tz) + jsonl_lines(rows[1:], tz=tz) == whole_jsonl.getvalue()
