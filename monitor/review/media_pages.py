"""``GET <path>/media/{sha256}``: a media file of the conversation archive, for reviewers.

Behind the login gate like every page. The bytes come from the media store
(``[msgaudit].media_dir``, ``monitor.archive.media_store``); their type and name from the first
stored ``media_file`` row holding them; an unknown or missing file is a 404. Only images of
:data:`~monitor.archive.media_store.INLINE_IMAGE_TYPES` are served inline (the conversation page
shows them as ``<img>``); everything else is an attachment (``Content-Disposition: attachment``
with an ASCII ``filename`` and an RFC 5987 ``filename*`` for Chinese names), and a type a browser
would run (HTML, SVG, XML, script) is sent as ``application/octet-stream``. The review web's
headers apply as well (``nosniff``, a CSP without scripts, ``no-store``). Every view is an
audit row (``view_media``, the sha256 as target).
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from monitor.archive.audit import record_audit_event
from monitor.archive.media_rows import MediaView, media_by_sha256
from monitor.archive.media_store import (
    INLINE_IMAGE_TYPES,
    MediaStore,
    extension_for,
    is_sha256,
)
from monitor.log import archive_log
from monitor.review.auth import current_reviewer, services_of, web_audit_event

__all__ = ["MEDIA_ROUTE", "add_media_routes", "download_name", "media_headers", "media_page"]

MEDIA_ROUTE = "review_media"

_ACTIVE_TYPES = ("html", "xml", "svg", "javascript", "ecmascript")
_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._()\[\]+-]+")
_NAME_MAX = 120


def add_media_routes(app: web.Application) -> None:
    """Register the media route on the review sub-app."""
    app.router.add_get("/media/{sha256}", media_page, name=MEDIA_ROUTE)


async def media_page(request: web.Request) -> web.StreamResponse:
    """Serve one stored media file (see the module docstring)."""
    sha256 = request.match_info["sha256"]
    services = services_of(request)
    media_dir = services.settings.media_dir
    if not media_dir or not is_sha256(sha256):
        raise web.HTTPNotFound(text="没有这个媒体文件")

    def read() -> MediaView | None:
        with services.engine.connect() as conn:
            return media_by_sha256(conn, sha256)

    view = await asyncio.to_thread(read)
    if view is None:
        raise web.HTTPNotFound(text="没有这个媒体文件")
    path = MediaStore(Path(media_dir)).path(sha256)
    if not await asyncio.to_thread(path.is_file):
        archive_log.warning("media %s is recorded as stored but its file is missing", sha256)
        raise web.HTTPNotFound(text="没有这个媒体文件")
    event = web_audit_event(
        request,
        "view_media",
        actor=current_reviewer(request).username,
        target=sha256,
        detail={"kind": view.kind, "message": view.dedupe_key},
    )
    await services.writer.run(lambda conn: record_audit_event(conn, event))
    return web.FileResponse(path, headers=media_headers(view))


def media_headers(view: MediaView) -> dict[str, str]:
    """Content-Type and Content-Disposition for a stored file (pure)."""
    name = download_name(view)
    fallback = view.kind if view.kind.isascii() and view.kind.isalnum() else "media"
    if view.mime in INLINE_IMAGE_TYPES:
        disposition = _disposition("inline", name, fallback)
        return {"Content-Type": view.mime, "Content-Disposition": disposition}
    mime = view.mime or "application/octet-stream"
    if any(word in mime.lower() for word in _ACTIVE_TYPES):
        mime = "application/octet-stream"
    disposition = _disposition("attachment", name, fallback)
    return {"Content-Type": mime, "Content-Disposition": disposition}


def download_name(view: MediaView) -> str:
    """The file's name for a download: its own (no folders, no control characters), else
    ``<kind>-<sha256 prefix><extension of its type>``."""
    name = view.filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    if len(name) > _NAME_MAX:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: _NAME_MAX - len(ext) - 1] + dot + ext) if dot and len(ext) < 10 else name
        name = name[:_NAME_MAX]
    if name:
        return name
    return f"{view.kind or 'media'}-{view.sha256[:12]}{extension_for(view.mime)}"


def _ascii_name(name: str, fallback: str) -> str:
    """An ASCII stand-in for ``name`` (for clients that ignore ``filename*``); ``fallback`` is
    the stem when nothing of the name's stem is ASCII."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    safe_stem = _UNSAFE_ASCII.sub("_", stem).strip("_")
    safe_ext = _UNSAFE_ASCII.sub("", ext)
    if not safe_stem:
        safe_stem = fallback
    return f"{safe_stem}.{safe_ext}" if safe_ext else safe_stem


def _disposition(kind: str, name: str, fallback_stem: str) -> str:
    ascii_name = _ascii_name(name, fallback_stem)
    if ascii_name == name:
        return f'{kind}; filename="{name}"'
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
