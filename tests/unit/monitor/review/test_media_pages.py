"""Media files in the review web: the ``/review/media/{sha256}`` route and the conversation page.

Messages are stored through the archive (as the puller stores them), their media rows through
``media_rows`` and their bytes in a media store under the test's folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import Engine, select

from monitor.archive import Archive, GroupCommitWriter, InboundRecord
from monitor.archive.audit import AuditEventRecord
from monitor.archive.media_rows import (
    MediaView,
    mark_failed,
    mark_stored,
    record_media,
)
from monitor.archive.media_store import MediaStore
from monitor.archive.msgaudit_models import MediaStatus
from monitor.review.headers import CONTENT_SECURITY_POLICY
from monitor.review.media_pages import download_name, media_headers
from monitor.review.settings import ReviewSettings
from tests.support.review import FAST_HASHER, add_reviewer, login, review_services, review_test_app
from tests.unit.monitor.review.conftest import FakeClock
from wecom_sdk.messages import MediaRef

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CONV = "msgaudit:zhangsan:wmCustomer"
PASSWORD = "alice-password-1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
PDF = b"%PDF-1.7 contract"
HTML = b"<html><script>alert(1)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@dataclass
class Seeded:
    png: str
    pdf: str
    html: str
    svg: str


@pytest.fixture
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """SQLite, unless a test asks for both backends (the reads are tested on both elsewhere)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return str(request.getfixturevalue("pg_schema_url"))
    return sqlite_url


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture
async def client(
    aiohttp_client, writer: GroupCommitWriter, clock: FakeClock, media_dir: Path
) -> TestClient:
    await add_reviewer(writer, "alice", PASSWORD, hasher=FAST_HASHER)
    settings = ReviewSettings(media_dir=str(media_dir))
    return await aiohttp_client(review_test_app(review_services(writer, settings, clock=clock)))


def message(n: int, msg_type: str, content: str | None) -> InboundRecord:
    return InboundRecord(
        dedupe_key=f"ma:m{n}",
        channel="msgaudit",
        msg_type=msg_type,
        from_user="zhangsan",
        to_user="wmCustomer",
        create_time=int(T0.timestamp()) + n,
        raw="{}",
        content=content,
        conversation_id=CONV,
        direction="staff",
    )


async def seed(writer: GroupCommitWriter, store: MediaStore) -> Seeded:
    """m1 an image, m2 a file (pdf), m3 an html and an svg file, m4 one pending and one too
    large video, m5 a text; the image, pdf, html and svg are stored."""
    archive = Archive(writer, clock=lambda: T0)
    await archive.store_inbound(message(1, "image", None))
    await archive.store_inbound(message(2, "file", None))
    await archive.store_inbound(message(3, "file", None))
    await archive.store_inbound(message(4, "video", None))
    await archive.store_inbound(message(5, "text", "收到，谢谢"))
    await writer.run(lambda c: record_media(c, [MediaRef("image", "fid-png")], "ma:m1", T0))
    await writer.run(
        lambda c: record_media(
            c, [MediaRef("file", "fid-pdf", filename="合同 2024.pdf")], "ma:m2", T0
        )
    )
    await writer.run(
        lambda c: record_media(
            c,
            [
                MediaRef("file", "fid-html", filename="page.html"),
                MediaRef("image", "fid-svg", filename="logo.svg"),
            ],
            "ma:m3",
            T0,
        )
    )
    await writer.run(
        lambda c: record_media(
            c,
            [
                MediaRef("video", "fid-wait", size=3 * 1024 * 1024),
                MediaRef("video", "fid-big", size=300 * 1024 * 1024),
            ],
            "ma:m4",
            T0,
        )
    )
    stored = {}
    for media_id, (data, mime) in enumerate(
        [(PNG, "image/png"), (PDF, "application/pdf"), (HTML, "text/html"), (SVG, "image/svg+xml")],
        start=1,
    ):
        put = store.put([data])
        stored[mime] = put.sha256
        await writer.run(
            lambda c, m=media_id, p=put, t=mime: mark_stored(
                c, m, sha256=p.sha256, size=p.size, mime=t, now=T0
            )
        )
    await writer.run(
        lambda c: mark_failed(
            c, 6, status=MediaStatus.TOO_LARGE, error="announced", size=300 * 1024 * 1024
        )
    )
    return Seeded(
        stored["image/png"], stored["application/pdf"], stored["text/html"], stored["image/svg+xml"]
    )


def media_audits(engine: Engine) -> list[tuple[str, str, str]]:
    table = AuditEventRecord.__table__
    with engine.connect() as conn:
        return [
            (r.actor, r.action, r.target)
            for r in conn.execute(select(table).order_by(table.c.id))
            if r.action == "view_media"
        ]


async def test_media_needs_a_login(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path
) -> None:
    seeded = await seed(writer, MediaStore(media_dir))
    resp = await client.get(f"/review/media/{seeded.png}", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith("/review/login?next=")
    assert media_audits(writer.engine) == []


async def test_an_image_is_served_inline_with_its_type_and_audited(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path
) -> None:
    seeded = await seed(writer, MediaStore(media_dir))
    await login(client, "alice", PASSWORD)
    resp = await client.get(f"/review/media/{seeded.png}")
    assert resp.status == 200
    assert await resp.read() == PNG
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["Content-Disposition"].startswith("inline;")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert resp.headers["Cache-Control"] == "no-store"
    assert media_audits(writer.engine) == [("alice", "view_media", seeded.png)]


async def test_a_file_is_an_attachment_with_its_chinese_name(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path
) -> None:
    seeded = await seed(writer, MediaStore(media_dir))
    await login(client, "alice", PASSWORD)
    resp = await client.get(f"/review/media/{seeded.pdf}")
    assert resp.status == 200 and await resp.read() == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"2024.pdf\"; filename*=UTF-8''" + quote("合同 2024.pdf", safe="")
    )
    assert "%E5%90%88%E5%90%8C%202024.pdf" in resp.headers["Content-Disposition"]
    assert media_audits(writer.engine) == [("alice", "view_media", seeded.pdf)]


async def test_html_and_svg_are_never_inline(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path
) -> None:
    seeded = await seed(writer, MediaStore(media_dir))
    await login(client, "alice", PASSWORD)
    for sha256, name in ((seeded.html, "page.html"), (seeded.svg, "logo.svg")):
        resp = await client.get(f"/review/media/{sha256}")
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Content-Disposition"] == f'attachment; filename="{name}"'


@pytest.mark.parametrize(
    "path",
    [
        "/review/media/" + "0" * 64,  # a well-formed name nobody stored
        "/review/media/" + "A" * 64,
        "/review/media/abc",
        "/review/media/..%2F..%2Fetc%2Fpasswd",
        "/review/media/",
    ],
)
async def test_unknown_media_is_404(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path, path: str
) -> None:
    await seed(writer, MediaStore(media_dir))
    await login(client, "alice", PASSWORD)
    resp = await client.get(path)
    assert resp.status == 404
    assert media_audits(writer.engine) == []


async def test_a_recorded_file_missing_from_disk_is_404(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path
) -> None:
    store = MediaStore(media_dir)
    seeded = await seed(writer, store)
    store.path(seeded.png).unlink()
    await login(client, "alice", PASSWORD)
    assert (await client.get(f"/review/media/{seeded.png}")).status == 404
    assert media_audits(writer.engine) == []


async def test_without_a_media_dir_nothing_is_served(
    aiohttp_client, writer: GroupCommitWriter, clock: FakeClock, tmp_path: Path
) -> None:
    seeded = await seed(writer, MediaStore(tmp_path / "media"))
    await add_reviewer(writer, "alice", PASSWORD, hasher=FAST_HASHER)
    services = review_services(writer, ReviewSettings(), clock=clock)
    client = await aiohttp_client(review_test_app(services))
    await login(client, "alice", PASSWORD)
    assert (await client.get(f"/review/media/{seeded.png}")).status == 404


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_conversation_page_shows_media_under_their_messages(
    client: TestClient, writer: GroupCommitWriter, media_dir: Path
) -> None:
    seeded = await seed(writer, MediaStore(media_dir))
    await login(client, "alice", PASSWORD)
    resp = await client.get(f"/review/conversations/{quote(CONV, safe='')}")
    assert resp.status == 200
    html = await resp.text()
    items = {
        m.group(1): m.group(2)
        for m in re.finditer(r'<li class="msg[^"]*" id="m(\d+)">(.*?)\n    </li>', html, re.S)
    }
    assert len(items) == 5
    image, pdf, unsafe, videos, text = (items[k] for k in sorted(items, key=int))
    assert f'<img src="/review/media/{seeded.png}" alt="图片"' in image
    assert "[image]" not in image
    assert f'<a href="/review/media/{seeded.pdf}" download>文件 合同 2024.pdf 17 B</a>' in pdf
    assert f'<a href="/review/media/{seeded.svg}" download>图片 logo.svg' in unsafe  # not <img>
    assert "<img" not in unsafe
    assert "视频：媒体文件下载中" in videos
    assert "视频：文件过大，未下载（300.0 MB）" in videos
    assert "收到，谢谢" in text and "media" not in text
    assert media_audits(writer.engine) == []  # the page itself fetches nothing


def test_media_headers_and_names() -> None:
    def view(filename: str, mime: str, kind: str = "file") -> MediaView:
        return MediaView(1, "k", kind, filename, "stored", "f" * 64, 10, 0, mime)

    assert media_headers(view("a.jpg", "image/jpeg")) == {
        "Content-Type": "image/jpeg",
        "Content-Disposition": 'inline; filename="a.jpg"',
    }
    assert media_headers(view("", "audio/amr", "voice")) == {
        "Content-Type": "audio/amr",
        "Content-Disposition": 'attachment; filename="voice-ffffffffffff.amr"',
    }
    for mime in ("text/html", "image/svg+xml", "application/xhtml+xml", "text/javascript"):
        assert media_headers(view("x", mime))["Content-Type"] == "application/octet-stream"
    assert media_headers(view("语音.amr", "audio/amr", "voice"))["Content-Disposition"] == (
        "attachment; filename=\"voice.amr\"; filename*=UTF-8''%E8%AF%AD%E9%9F%B3.amr"
    )
    assert media_headers(view('a"b;c\r\n.pdf', "application/pdf"))["Content-Disposition"] == (
        "attachment; filename=\"a_b_c.pdf\"; filename*=UTF-8''a%22b%3Bc.pdf"
    )
    assert download_name(view("../../etc/passwd", "")) == "passwd"
    assert download_name(view("C:\\Users\\x\\报告.docx", "")) == "报告.docx"
    assert download_name(view("...", "image/png", "image")) == "image-ffffffffffff.png"
    long = download_name(view("长" * 300 + ".pdf", ""))
    assert len(long) == 120 and long.endswith(".pdf")
