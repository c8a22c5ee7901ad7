"""VendorArchiveSource through real ctypes calls into the C test double of the vendor ABI.

The double (``tests/support/fake_finance_sdk.c``, our own code, not WeCom's library) is compiled
once per session; what it answers is described at the top of that file.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.vendor_double import FakeFinance
from wecom_sdk.errors import ArchiveError, ArchiveUnavailable, RecordUndecryptable
from wecom_sdk.msgaudit.source import MEDIA_CHUNK_BYTES, ArchiveSource, ChatDataEntry
from wecom_sdk.msgaudit.vendor import VendorArchiveSource, VendorLibraryError


def entry(seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "msgid": f"msg{seq}_外部_external",
        "publickey_ver": 3,
        "encrypt_random_key": f"key{seq}==",
        "encrypt_chat_msg": f"body{seq}",
    }


def expected(seq: int) -> ChatDataEntry:
    return ChatDataEntry(seq, f"msg{seq}_外部_external", 3, f"key{seq}==", f"body{seq}")


def raises_code(cls: type[ArchiveError], code: int | None, call: Callable[[], object]) -> str:
    """The message of the exception ``call`` raises, checked to be exactly ``cls`` with ``code``."""
    with pytest.raises(ArchiveError) as info:
        call()
    assert type(info.value) is cls
    assert info.value.errcode == code
    return str(info.value)


@pytest.fixture
def source(fake_finance: FakeFinance) -> Any:
    with fake_finance.source() as opened:
        yield opened


# ---- GetChatData ---------------------------------------------------------------------------------


def test_pages_through_the_chat_data_after_each_seq(fake_finance: FakeFinance) -> None:
    seqs = list(range(3, 75, 3))  # gaps, as after messages of members not archived
    fake_finance.write_chatdata(entry(s) for s in seqs)
    pages = []
    with fake_finance.source() as source:
        seq = 0
        while page := source.get_chat_data(seq, 10, 5):
            pages.append(page)
            seq = page[-1].seq
        assert source.get_chat_data(seqs[-1], 10, 5) == []
        assert source.get_chat_data(10, 1, 5) == [expected(12)]
    assert [len(p) for p in pages] == [10, 10, 4]
    assert [e for p in pages for e in p] == [expected(s) for s in seqs]


def test_limit_is_passed_through_and_the_library_refuses_more_than_1000(
    fake_finance: FakeFinance, source: VendorArchiveSource
) -> None:
    fake_finance.write_chatdata(entry(s) for s in range(1, 1202))
    assert len(source.get_chat_data(0, 1000, 5)) == 1000
    assert [e.seq for e in source.get_chat_data(1000, 1000, 5)] == list(range(1001, 1202))
    # The double answers 10000 itself: the binding does not second-guess the library.
    raises_code(ArchiveError, 10000, lambda: source.get_chat_data(0, 1001, 5))
    raises_code(ArchiveError, 10000, lambda: source.get_chat_data(0, 0, 5))


@pytest.mark.parametrize(
    ("seq", "limit", "timeout"),
    [(-1, 10, 5), (2**64, 10, 5), (0, -1, 5), (0, 2**32, 5), (0, 10, -1), (0, 10, 2**31)],
)
def test_numbers_ctypes_would_wrap_are_refused_before_the_call(
    source: VendorArchiveSource, seq: int, limit: int, timeout: int
) -> None:
    message = raises_code(ArchiveError, 10000, lambda: source.get_chat_data(seq, limit, timeout))
    assert "outside" in message


def test_a_timeout_reaches_the_library(source: VendorArchiveSource) -> None:
    # The double refuses timeout <= 0: 0 is a valid C int, so it went through.
    raises_code(ArchiveError, 10000, lambda: source.get_chat_data(0, 10, 0))


def test_network_failure_is_archive_unavailable(
    fake_finance: FakeFinance, source: VendorArchiveSource
) -> None:
    fake_finance.chatdata.unlink()
    message = raises_code(ArchiveUnavailable, 10001, lambda: source.get_chat_data(0, 10, 5))
    assert "GetChatData" in message


def test_proxy_and_password_reach_every_network_call(
    fake_finance: FakeFinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FINANCE_PROXY", "socks5://10.0.0.1:8081")
    monkeypatch.setenv("FAKE_FINANCE_PROXY_PASSWORD", "user:口令")
    fake_finance.write_chatdata([entry(1)])
    fake_finance.add_media("f1", b"abc")
    with fake_finance.source() as direct:
        raises_code(ArchiveUnavailable, 10001, lambda: direct.get_chat_data(0, 10, 5))
        raises_code(ArchiveUnavailable, 10001, lambda: direct.get_media_data("f1", "", 5))
    with fake_finance.source(proxy="socks5://10.0.0.1:8081", proxy_password="user:口令") as proxied:
        assert proxied.get_chat_data(0, 10, 5) == [expected(1)]
        assert proxied.get_media_data("f1", "", 5).data == b"abc"
        assert "口令" not in repr(proxied)


# ---- DecryptData ---------------------------------------------------------------------------------


def test_decrypt_data_returns_the_plaintext_binary_safe(source: VendorArchiveSource) -> None:
    assert source.decrypt_data("k1", '{"msgid":"m"}') == 'k1:{"msgid":"m"}'
    text = '{"text":{"content":"你好\x00\x01"}}'
    assert source.decrypt_data("k", "hex:" + text.encode().hex()) == "k:" + text


def test_decrypt_failures_are_record_undecryptable(source: VendorArchiveSource) -> None:
    raises_code(RecordUndecryptable, 10006, lambda: source.decrypt_data("bad", "x"))
    message = raises_code(RecordUndecryptable, 10002, lambda: source.decrypt_data("k", "hex:ff"))
    assert "UTF-8" in message
    raises_code(ArchiveError, 10000, lambda: source.decrypt_data("k", "a\x00b"))


# ---- GetMediaData --------------------------------------------------------------------------------


def download(source: ArchiveSource, sdkfileid: str) -> list[bytes]:
    chunks, index = [], ""
    while True:
        chunk = source.get_media_data(sdkfileid, index, 5)
        chunks.append(chunk.data)
        if chunk.is_finish:
            return chunks
        assert chunk.next_index != index
        index = chunk.next_index


def test_media_is_served_in_512_kb_chunks_binary_safe(
    fake_finance: FakeFinance, source: VendorArchiveSource
) -> None:
    body = bytearray(os.urandom(2 * MEDIA_CHUNK_BYTES + 1000))
    for boundary in (MEDIA_CHUNK_BYTES, 2 * MEDIA_CHUNK_BYTES):
        body[boundary - 8 : boundary + 8] = bytes(16)  # NUL bytes across each chunk boundary
    body[:4] = b"\x00\x00\xff\x00"
    fake_finance.add_media("file_杭州==", bytes(body))
    chunks = download(source, "file_杭州==")
    assert [len(c) for c in chunks] == [MEDIA_CHUNK_BYTES, MEDIA_CHUNK_BYTES, 1000]
    assert b"".join(chunks) == body
    assert chunks[0].endswith(bytes(8)) and chunks[1].startswith(bytes(8))

    first = source.get_media_data("file_杭州==", "", 5)
    assert (first.next_index, first.is_finish) == (str(MEDIA_CHUNK_BYTES), False)


@pytest.mark.parametrize("size", [0, 1, MEDIA_CHUNK_BYTES])
def test_media_of_one_chunk_finishes_at_once(
    fake_finance: FakeFinance, source: VendorArchiveSource, size: int
) -> None:
    fake_finance.add_media("one", b"\x00" * size)
    assert download(source, "one") == [b"\x00" * size]


def test_media_errors(fake_finance: FakeFinance, source: VendorArchiveSource) -> None:
    fake_finance.add_media("f", b"abc")
    raises_code(ArchiveError, 10005, lambda: source.get_media_data("missing", "", 5))
    raises_code(ArchiveError, 10005, lambda: source.get_media_data("", "", 5))
    raises_code(ArchiveError, 10000, lambda: source.get_media_data("f", "not-an-offset", 5))
    raises_code(ArchiveError, 10000, lambda: source.get_media_data("f", "索引", 5))
    raises_code(ArchiveError, 10000, lambda: source.get_media_data("f", "", -1))


# ---- Init, loading, closing ----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["secret", "corp_id"])
def test_wrong_credentials_fail_init_without_showing_the_secret(
    fake_finance: FakeFinance, which: str
) -> None:
    corp_id, secret = fake_finance.corp_id, fake_finance.secret
    if which == "secret":
        secret = secret + "x"
    else:
        corp_id = "wwother"
    before = fake_finance.live_objects()
    with pytest.raises(ArchiveError) as info:
        VendorArchiveSource(fake_finance.library, corp_id, secret)
    error = info.value
    assert (type(error), error.errcode) == (ArchiveError, 10004)
    assert "Init" in str(error)
    shown = [str(error), repr(error), repr(error.args)]
    # Nor do the binding's frames in the traceback (error reporters show their locals); the
    # first frame is this test's own.
    assert error.__traceback__ is not None
    tb = error.__traceback__.tb_next
    assert tb is not None
    while tb is not None:
        shown += [repr(value) for value in tb.tb_frame.f_locals.values()]
        tb = tb.tb_next
    for secret_form in (secret, fake_finance.secret, secret.encode(), fake_finance.secret.encode()):
        assert not any(str(secret_form) in text for text in shown)
    assert fake_finance.live_objects() == before  # the handle was destroyed


def test_a_nul_in_the_secret_is_refused_without_showing_it(fake_finance: FakeFinance) -> None:
    message = raises_code(
        ArchiveError, 10000, lambda: VendorArchiveSource(fake_finance.library, "ww", "ab\x00cd")
    )
    assert "secret" in message and "ab" not in message


def test_no_handle_from_new_sdk(fake_finance: FakeFinance, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_FINANCE_NEWSDK_FAIL", "1")
    message = raises_code(ArchiveUnavailable, 10003, fake_finance.source)
    assert "NewSdk" in message


def test_repr_shows_the_library_and_corp_not_the_secret(fake_finance: FakeFinance) -> None:
    source = fake_finance.source(proxy_password="pw-hidden")
    text = repr(source)
    assert str(fake_finance.library) in text and fake_finance.corp_id in text and "open" in text
    assert fake_finance.secret not in text and "pw-hidden" not in text
    assert fake_finance.secret not in repr(vars(source))
    source.close()
    assert "closed" in repr(source)


def test_a_missing_library_is_named(tmp_path: Path) -> None:
    path = tmp_path / "libWeWorkFinanceSdk_C.so"
    message = raises_code(VendorLibraryError, None, lambda: VendorArchiveSource(path, "ww", "s"))
    assert str(path) in message and "no such file" in message
    message = raises_code(
        VendorLibraryError, None, lambda: VendorArchiveSource("libNoSuchFinance.so", "ww", "s")
    )
    assert "libNoSuchFinance.so" in message and "cannot be loaded" in message


def test_a_file_that_is_not_a_library_is_named(tmp_path: Path) -> None:
    path = tmp_path / "libWeWorkFinanceSdk_C.so"
    path.write_text("<html>404 Not Found</html>\n", encoding="utf-8")
    message = raises_code(VendorLibraryError, None, lambda: VendorArchiveSource(path, "ww", "s"))
    assert str(path) in message and "cannot be loaded as a shared library" in message


def test_a_missing_function_is_named(fake_finance: FakeFinance) -> None:
    path = fake_finance.without_decrypt
    message = raises_code(
        VendorLibraryError,
        None,
        lambda: VendorArchiveSource(path, fake_finance.corp_id, fake_finance.secret),
    )
    assert str(path) in message and "DecryptData" in message and "GetChatData" not in message


def test_load_errors_are_archive_errors_not_os_errors(tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as info:
        VendorArchiveSource(tmp_path / "absent.so", "ww", "s")
    assert not isinstance(info.value, OSError | AttributeError)


def test_close_is_idempotent_and_later_calls_fail(fake_finance: FakeFinance) -> None:
    before = fake_finance.live_objects()
    source = fake_finance.source()
    assert fake_finance.live_objects() == before + 1
    source.close()
    source.close()
    assert fake_finance.live_objects() == before  # destroyed once, not twice
    message = raises_code(ArchiveError, None, lambda: source.get_chat_data(0, 10, 5))
    assert "closed" in message
    raises_code(ArchiveError, None, lambda: source.decrypt_data("k", "m"))
    raises_code(ArchiveError, None, lambda: source.get_media_data("f", "", 5))


def test_the_context_manager_closes(fake_finance: FakeFinance) -> None:
    before = fake_finance.live_objects()
    with pytest.raises(RuntimeError), fake_finance.source() as source:
        raise RuntimeError("boom")
    assert fake_finance.live_objects() == before
    assert "closed" in repr(source)


def test_slices_and_media_buffers_are_freed_on_success_and_failure(
    fake_finance: FakeFinance, source: VendorArchiveSource
) -> None:
    fake_finance.write_chatdata([entry(1)])
    fake_finance.add_media("f", b"abc")
    before = fake_finance.live_objects()
    source.get_chat_data(0, 10, 5)
    source.decrypt_data("k", "m")
    source.get_media_data("f", "", 5)
    for failing in (
        lambda: source.get_chat_data(0, 5000, 5),
        lambda: source.decrypt_data("bad", "m"),
        lambda: source.decrypt_data("k", "hex:ff"),
        lambda: source.get_media_data("missing", "", 5),
    ):
        with pytest.raises(ArchiveError):
            failing()
    assert fake_finance.live_objects() == before


# ---- threads -------------------------------------------------------------------------------------


def run_in_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors


def test_the_double_detects_overlapping_calls(
    fake_finance: FakeFinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a lock, calls from several threads overlap and the double answers 10003: so the
    # next test's silence means the binding serialised them.
    monkeypatch.setenv("FAKE_FINANCE_DELAY_US", "3000")
    lib = ctypes.CDLL(str(fake_finance.library))
    lib.NewSlice.restype = ctypes.c_void_p
    lib.DecryptData.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    lib.FreeSlice.argtypes = [ctypes.c_void_p]
    codes: list[int] = []

    def unlocked(_: int) -> None:
        piece = lib.NewSlice()
        codes.append(lib.DecryptData(b"k", b"m", piece))
        lib.FreeSlice(piece)

    assert run_in_threads(6, unlocked) == []
    assert 10003 in codes


def test_calls_from_several_threads_are_serialised(
    fake_finance: FakeFinance, source: VendorArchiveSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_finance.write_chatdata(entry(s) for s in range(1, 21))
    fake_finance.add_media("f", b"\x00media\x00")
    monkeypatch.setenv("FAKE_FINANCE_DELAY_US", "1000")

    def work(i: int) -> None:
        for _ in range(3):
            assert source.get_chat_data(i, 5, 5) == [expected(s) for s in range(i + 1, i + 6)]
            assert source.decrypt_data(f"k{i}", "m") == f"k{i}:m"
            assert source.get_media_data("f", "", 5).data == b"\x00media\x00"

    assert run_in_threads(6, work) == []
