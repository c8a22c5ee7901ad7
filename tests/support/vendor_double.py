"""The C test double of the archive SDK's ABI (``fake_finance_sdk.c``), compiled once and fed.

``fake_finance_sdk`` (session) compiles the double with the machine's C compiler into the pytest
cache, keyed by a hash of the source, the flags and the compiler, so later sessions and the xdist
workers reuse it; without a C compiler it skips, saying so (``make test`` installs gcc first).
``fake_finance`` (per test) points the double's environment variables at fresh files and hands
back a :class:`FakeFinance` to fill them. The double's behaviour is described at the top of the
C file.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wecom_sdk.msgaudit.vendor import VendorArchiveSource

SOURCE = Path(__file__).with_name("fake_finance_sdk.c")
CFLAGS = ("-shared", "-fPIC", "-O1")
OMIT_DECRYPT = ("-DFAKE_FINANCE_OMIT_DECRYPT",)
"""Build flags of a variant that lacks ``DecryptData`` (a library with a missing symbol)."""

CORP_ID = "wwfakecorp0001"
SECRET = "s3cret-杭州-never-in-messages"


def find_compiler() -> str | None:
    """The C compiler to build the double with: $CC, cc, gcc or clang, the first found."""
    candidates = [os.environ.get("CC", ""), "cc", "gcc", "clang"]
    for name in candidates:
        found = shutil.which(name.split()[0]) if name.strip() else None
        if found:
            return found
    return None


def build(compiler: str, directory: Path, extra: tuple[str, ...] = ()) -> Path:
    """The double compiled into ``directory``, reused when the same build is already there."""
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=False
    ).stdout
    digest = hashlib.sha256()
    for part in (
        SOURCE.read_bytes(),
        repr((CFLAGS, extra)).encode(),
        compiler.encode(),
        version.encode(),
    ):
        digest.update(part)
    target = directory / f"libfake_finance_{digest.hexdigest()[:16]}.so"
    if target.exists():
        return target
    # Built under a unique name and renamed: xdist workers may build at the same time.
    partial = directory / f".{target.name}.{os.getpid()}"
    done = subprocess.run(
        [compiler, *CFLAGS, *extra, "-o", str(partial), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"compiling {SOURCE.name} with {compiler} failed:\n{done.stderr}")
    partial.replace(target)
    return target


@dataclass(frozen=True)
class DoubleBuilds:
    """The double's builds: the full ABI, and one without ``DecryptData``."""

    library: Path
    without_decrypt: Path


@pytest.fixture(scope="session")
def fake_finance_sdk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> DoubleBuilds:
    """The compiled test double (skips only when the machine has no C compiler)."""
    compiler = find_compiler()
    if compiler is None:
        pytest.skip(
            "no C compiler (cc, gcc or clang) to build the archive SDK test double "
            "tests/support/fake_finance_sdk.c: `make test` installs gcc, or apt-get install gcc"
        )
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache is not None:
        directory = cache.mkdir("fake_finance_sdk")
    else:
        directory = tmp_path_factory.mktemp("fake_finance_sdk")
    return DoubleBuilds(build(compiler, directory), build(compiler, directory, OMIT_DECRYPT))


@dataclass(frozen=True)
class FakeFinance:
    """A test's double: its library, credentials and the files it serves."""

    library: Path
    without_decrypt: Path
    corp_id: str
    secret: str
    chatdata: Path
    media_dir: Path

    def write_chatdata(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """The chatdata entries GetChatData serves, one JSON object per line."""
        lines = (json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries)
        self.chatdata.write_text("".join(lines), encoding="utf-8")

    def add_media(self, sdkfileid: str, data: bytes) -> None:
        """A media file GetMediaData serves as ``sdkfileid``."""
        (self.media_dir / sdkfileid).write_bytes(data)

    def live_objects(self) -> int:
        """Handles, slices and media buffers the double allocated and nobody freed yet."""
        count: int = ctypes.CDLL(str(self.library)).FakeLiveObjects()
        return count

    def source(self, **kwargs: Any) -> VendorArchiveSource:
        """A :class:`VendorArchiveSource` on the double with the right credentials."""
        return VendorArchiveSource(self.library, self.corp_id, self.secret, **kwargs)


@pytest.fixture
def fake_finance(
    fake_finance_sdk: DoubleBuilds, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> FakeFinance:
    """The double configured for one test: credentials, an empty chatdata file, a media folder."""
    double = FakeFinance(
        library=fake_finance_sdk.library,
        without_decrypt=fake_finance_sdk.without_decrypt,
        corp_id=CORP_ID,
        secret=SECRET,
        chatdata=tmp_path / "chatdata.jsonl",
        media_dir=tmp_path / "media",
    )
    double.chatdata.write_text("", encoding="utf-8")
    double.media_dir.mkdir()
    for name in ("PROXY", "PROXY_PASSWORD", "DELAY_US", "NEWSDK_FAIL"):
        monkeypatch.delenv(f"FAKE_FINANCE_{name}", raising=False)
    monkeypatch.setenv("FAKE_FINANCE_CORPID", CORP_ID)
    monkeypatch.setenv("FAKE_FINANCE_SECRET", SECRET)
    monkeypatch.setenv("FAKE_FINANCE_CHATDATA", str(double.chatdata))
    monkeypatch.setenv("FAKE_FINANCE_MEDIA_DIR", str(double.media_dir))
    return double
