"""Child process for the kill -9 durability test (tests/test_db.py).

Usage: ``python -m tests.support.db_writer_child DATABASE_URL KEY_PREFIX``. Stores messages through
GroupCommitWriter + Archive, concurrently and forever, and prints each dedupe key on stdout only
after ``store_inbound`` returned for it: a printed key is an acknowledged one. The parent kills it
with SIGKILL and checks that every printed key is in the database.
"""

from __future__ import annotations

import asyncio
import os
import sys

from monitor.archive import Archive, GroupCommitWriter, InboundRecord, make_engine

CONCURRENCY = 32


async def _store_forever(url: str, prefix: str) -> None:
    engine = make_engine(url)
    writer = GroupCommitWriter(engine)
    await writer.start()
    archive = Archive(writer)
    out = sys.stdout.fileno()

    async def store(key: str) -> None:
        record = InboundRecord(
            dedupe_key=key,
            channel="app",
            msg_type="text",
            from_user="customer",
            to_user="corp",
            create_time=1_700_000_000,
            content="维权 kill -9",
            raw=f"<xml><MsgId>{key}</MsgId></xml>",
        )
        await archive.store_inbound(record)
        os.write(out, f"{key}\n".encode())  # unbuffered: printed means acknowledged

    n = 0
    while True:
        await asyncio.gather(*(store(f"{prefix}{n + i}") for i in range(CONCURRENCY)))
        n += CONCURRENCY


if __name__ == "__main__":
    asyncio.run(_store_forever(sys.argv[1], sys.argv[2]))
