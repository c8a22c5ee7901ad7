"""FakeArchiveSource keeps design.md §3's contract: pages by seq and limit in file order, the
file read afresh on every call, the fake DecryptData cipher, media in 512 KB chunks, scripted
SDK errors, and a record of every call."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import threading
from pathlib import Path

import pytest
from Crypto.Cipher import AES
from Crypto.Util.Padding import pad, unpad

from wecom_sdk.errors import ArchiveError, ArchiveUnavailable, RecordUndecryptable
from wecom_sdk.messages import ArchiveText, parse_archive_record
from wecom_sdk.msgaudit import MEDIA_CHUNK_BYTES, ArchiveSource, ChatDataEntry, parse_chat_data
from wecom_sdk.msgaudit.fake import (
    FakeArchiveSource,
    SourceCall,
    media_path,
    open_chat_msg,
    seal_chat_msg,
)
from wecom_sdk.msgaudit.keyring import KeyRing
from wecom_sdk.testing.archive_feed import ArchiveFeed, entry_line


def _texts(feed: ArchiveFeed, count: int) -> list[ChatDataEntry]:
    return feed.append([feed.text("zhangsan", ["wmCUST1"], f"第{i}条") for i in range(count)])


def _seqs(entries: list[ChatDataEntry]) -> list[int]:
    return [e.seq for e in entries]


def _code(exc: pytest.ExceptionInfo[ArchiveError]) -> int | None:
    return exc.value.errcode


# ---- GetChatData ---------------------------------------------------------------------------------


def test_pages_by_seq_and_limit(feed: ArchiveFeed) -> None:
    written = _texts(feed, 5)
    source = FakeArchiveSource(feed.path)
    assert _seqs(written) == [1, 2, 3, 4, 5]
    assert source.get_chat_data(0, 2, 5) == written[:2]
    assert source.get_chat_data(2, 2, 5) == written[2:4]
    assert source.get_chat_data(4, 2, 5) == written[4:]
    assert source.get_chat_data(5, 2, 5) == []
    assert _seqs(source.get_chat_data(0, 1000, 5)) == [1, 2, 3, 4, 5]


def test_answers_in_file_order(feed: ArchiveFeed) -> None:
    msg = feed.text("zhangsan", ["wmCUST1"], "x")
    feed.append_entries([feed.record(msg, seq=s) for s in (30, 10, 20)])
    source = FakeArchiveSource(feed.path)
    assert _seqs(source.get_chat_data(0, 10, 5)) == [30, 10, 20]
    assert _seqs(source.get_chat_data(15, 10, 5)) == [30, 20]
    assert _seqs(source.get_chat_data(0, 2, 5)) == [30, 10]


def test_reads_the_file_afresh(feed: ArchiveFeed) -> None:
    source = FakeArchiveSource(feed.path)
    _texts(feed, 2)
    assert _seqs(source.get_chat_data(0, 10, 5)) == [1, 2]
    _texts(feed, 1)
    assert _seqs(source.get_chat_data(2, 10, 5)) == [3]


def test_a_rewritten_or_replaced_file_is_read_again(feed: ArchiveFeed) -> None:
    source = FakeArchiveSource(feed.path)
    first = _texts(feed, 3)
    assert source.get_chat_data(0, 10, 5) == first
    # Rewritten in place, as long as before, its last line different: indexed anew.
    other = [dataclasses.replace(e, msgid=e.msgid[:-1] + "x") for e in first]
    feed.path.write_text("".join(entry_line(e) + "\n" for e in other))
    assert source.get_chat_data(0, 10, 5) == other
    # Truncated, then a new file under the same name.
    feed.path.write_text("")
    assert source.get_chat_data(0, 10, 5) == []
    feed.path.unlink()
    feed.path.write_text(entry_line(first[0]) + "\n")
    assert source.get_chat_data(0, 10, 5) == first[:1]
    # Appended after an unordered stretch: the answer is still in file order.
    msg = feed.text("zhangsan", ["wmCUST1"], "x")
    feed.append_entries([feed.record(msg, seq=s) for s in (9, 5)])
    assert _seqs(source.get_chat_data(0, 10, 5)) == [1, 9, 5]
    assert _seqs(source.get_chat_data(4, 10, 5)) == [9, 5]


def test_entries_are_what_the_file_holds(feed: ArchiveFeed) -> None:
    [entry] = _texts(feed, 1)
    line = feed.path.read_text(encoding="utf-8")
    assert line == entry_line(entry) + "\n"
    assert set(json.loads(line)) == {
        "seq",
        "msgid",
        "publickey_ver",
        "encrypt_random_key",
        "encrypt_chat_msg",
    }
    assert FakeArchiveSource(feed.path).get_chat_data(0, 1, 5) == [entry]


def test_partial_last_line_is_skipped_until_whole(feed: ArchiveFeed) -> None:
    [first, second] = [feed.record(feed.text("lisi", ["wmC"], str(i))) for i in range(2)]
    line = entry_line(second)
    feed.append_entries([first])
    with feed.path.open("a", encoding="utf-8") as out:
        out.write(line[:40])
    source = FakeArchiveSource(feed.path)
    assert source.get_chat_data(0, 10, 5) == [first]
    with feed.path.open("a", encoding="utf-8") as out:
        out.write(line[40:])
    # Whole but without its newline yet: taken.
    assert source.get_chat_data(0, 10, 5) == [first, second]
    with feed.path.open("a", encoding="utf-8") as out:
        out.write("\n")
    assert source.get_chat_data(0, 10, 5) == [first, second]


def test_blank_and_crlf_lines(feed: ArchiveFeed) -> None:
    [entry] = [feed.record(feed.text("lisi", ["wmC"], "hi"))]
    feed.path.write_text(f"\n   \n{entry_line(entry)}\r\n\n", encoding="utf-8")
    assert FakeArchiveSource(feed.path).get_chat_data(0, 10, 5) == [entry]


@pytest.mark.parametrize("line", ["{not json", '{"msgid": "x"}', '{"seq": "1"}', "[1]"])
def test_broken_whole_line_is_10002(feed: ArchiveFeed, line: str) -> None:
    _texts(feed, 1)
    with feed.path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
    with pytest.raises(RecordUndecryptable) as caught:
        FakeArchiveSource(feed.path).get_chat_data(0, 10, 5)
    assert _code(caught) == 10002
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize(("seq", "limit"), [(0, 0), (0, 1001), (0, -1), (0, True), (-1, 10)])
def test_bad_parameters_are_10000(feed: ArchiveFeed, seq: int, limit: int) -> None:
    _texts(feed, 1)
    with pytest.raises(ArchiveError) as caught:
        FakeArchiveSource(feed.path).get_chat_data(seq, limit, 5)
    assert _code(caught) == 10000
    assert not isinstance(caught.value, ArchiveUnavailable | RecordUndecryptable)


@pytest.mark.parametrize("limit", [1, 1000])
def test_limit_bounds_are_accepted(feed: ArchiveFeed, limit: int) -> None:
    _texts(feed, 2)
    assert len(FakeArchiveSource(feed.path).get_chat_data(0, limit, 5)) == min(limit, 2)


def test_missing_file_is_transient(feed: ArchiveFeed) -> None:
    source = FakeArchiveSource(feed.path)
    with pytest.raises(ArchiveUnavailable) as caught:
        source.get_chat_data(0, 10, 5)
    assert _code(caught) == 10001
    assert "fake source file missing" in str(caught.value)
    _texts(feed, 1)
    assert _seqs(source.get_chat_data(0, 10, 5)) == [1]


def test_unreadable_path_is_10003(tmp_path: Path) -> None:
    with pytest.raises(ArchiveUnavailable) as caught:
        FakeArchiveSource(tmp_path).get_chat_data(0, 10, 5)
    assert _code(caught) == 10003


def test_empty_file_answers_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert FakeArchiveSource(path).get_chat_data(0, 10, 5) == []


def test_is_an_archive_source(tmp_path: Path) -> None:
    source: ArchiveSource = FakeArchiveSource(tmp_path / "x")
    source.close()
    assert FakeArchiveSource(tmp_path / "x").media_dir == Path(f"{tmp_path / 'x'}.media")


# ---- DecryptData ---------------------------------------------------------------------------------


def test_decrypt_round_trip_through_keys_and_parser(feed: ArchiveFeed) -> None:
    [entry] = feed.append([feed.text("wmCUST1", ["zhangsan"], "我要投诉，12315见 🙂")])
    source = FakeArchiveSource(feed.path)
    ring = KeyRing.from_files(feed.key_paths)
    random_key = ring.random_key(entry.publickey_ver, entry.encrypt_random_key)
    record = parse_archive_record(source.decrypt_data(random_key, entry.encrypt_chat_msg))
    assert isinstance(record, ArchiveText)
    assert record.text == "我要投诉，12315见 🙂"
    assert record.msgid == entry.msgid and record.msgid.endswith("_external")


def test_raw_control_characters_survive(feed: ArchiveFeed) -> None:
    raw = (
        '{"msgid":"ctl_1","action":"send","from":"wmC","tolist":["zs"],"roomid":"",'
        '"msgtime":1700000000000,"msgtype":"text","text":{"content":"a\x01b\tc\nd\x1f"}}'
    )
    [entry] = feed.append([raw])
    random_key = KeyRing.from_files(feed.key_paths).random_key(1, entry.encrypt_random_key)
    text = FakeArchiveSource(feed.path).decrypt_data(random_key, entry.encrypt_chat_msg)
    assert text == raw
    assert parse_archive_record(text).text == "a\x01b\tc\nd\x1f"


def test_cipher_matches_an_independent_aes() -> None:
    key, message = "Lq3u9Wc2xR7yN4tPz8Kd1Fv6Hb5Jm0Sa", '{"msgid":"1","text":{"content":"你好"}}'
    aes_key = hashlib.sha256(key.encode()).digest()
    sealed = seal_chat_msg(key, message)
    theirs = AES.new(aes_key, AES.MODE_CBC, iv=aes_key[:16])
    assert unpad(theirs.decrypt(base64.b64decode(sealed)), 16).decode() == message
    mine = AES.new(aes_key, AES.MODE_CBC, iv=aes_key[:16]).encrypt(pad(message.encode(), 16))
    assert open_chat_msg(key, base64.b64encode(mine).decode()) == message


@pytest.mark.parametrize("damage", ["wrong key", "not base64", "short block", "empty"])
def test_decrypt_failures_are_10006(tmp_path: Path, damage: str) -> None:
    sealed = seal_chat_msg("right", '{"msgid":"1"}')
    key, text = {
        "wrong key": ("wrong", sealed),
        "not base64": ("right", sealed[:-2] + "!!"),
        "short block": ("right", base64.b64encode(base64.b64decode(sealed)[:-1]).decode()),
        "empty": ("right", ""),
    }[damage]
    with pytest.raises(RecordUndecryptable) as caught:
        FakeArchiveSource(tmp_path / "x").decrypt_data(key, text)
    assert _code(caught) == 10006


def test_padding_is_whole_blocks() -> None:
    for length in (0, 15, 16, 17):
        raw = base64.b64decode(seal_chat_msg("k", "x" * length))
        assert len(raw) == (length // 16 + 1) * 16


# ---- GetMediaData ----------------------------------------------------------------------------


def _download(source: FakeArchiveSource, sdkfileid: str) -> tuple[bytes, list[int]]:
    index, data, sizes = "", b"", []
    while True:
        chunk = source.get_media_data(sdkfileid, index, 5)
        data += chunk.data
        sizes.append(len(chunk.data))
        if chunk.is_finish:
            return data, sizes
        assert chunk.next_index == str(len(data))
        index = chunk.next_index


@pytest.mark.parametrize(
    ("size", "chunks"),
    [
        (0, [0]),
        (1, [1]),
        (MEDIA_CHUNK_BYTES - 1, [MEDIA_CHUNK_BYTES - 1]),
        (MEDIA_CHUNK_BYTES, [MEDIA_CHUNK_BYTES]),
        (MEDIA_CHUNK_BYTES + 1, [MEDIA_CHUNK_BYTES, 1]),
        (2 * MEDIA_CHUNK_BYTES + 7, [MEDIA_CHUNK_BYTES, MEDIA_CHUNK_BYTES, 7]),
    ],
)
def test_media_in_chunks(feed: ArchiveFeed, size: int, chunks: list[int]) -> None:
    data = bytes(i % 251 for i in range(size))
    feed.add_media("CtYBMzA2OTAyMDEwMjA0/+=", data)
    source = FakeArchiveSource(feed.path)
    assert media_path(feed.path, "CtYBMzA2OTAyMDEwMjA0/+=").parent == source.media_dir
    assert _download(source, "CtYBMzA2OTAyMDEwMjA0/+=") == (data, chunks)


def test_media_of_a_built_image(feed: ArchiveFeed) -> None:
    data = b"\x89PNG" + bytes(MEDIA_CHUNK_BYTES)
    msg = feed.image("zhangsan", ["wmCUST1"], data)
    body = msg["image"]
    assert body["md5sum"] == hashlib.md5(data).hexdigest() and body["filesize"] == len(data)
    assert _download(FakeArchiveSource(feed.path), body["sdkfileid"])[0] == data


def test_unknown_sdkfileid_is_10005(feed: ArchiveFeed) -> None:
    with pytest.raises(ArchiveError) as caught:
        FakeArchiveSource(feed.path).get_media_data("nope", "", 5)
    assert _code(caught) == 10005


@pytest.mark.parametrize("index", ["abc", "-1", " 5", "+5", "5_0", "11", "1.0"])
def test_bad_media_index_is_10000(feed: ArchiveFeed, index: str) -> None:
    feed.add_media("f", b"0123456789")
    with pytest.raises(ArchiveError) as caught:
        FakeArchiveSource(feed.path).get_media_data("f", index, 5)
    assert _code(caught) == 10000


def test_media_index_at_the_end_is_an_empty_last_chunk(feed: ArchiveFeed) -> None:
    feed.add_media("f", b"0123456789")
    chunk = FakeArchiveSource(feed.path).get_media_data("f", "10", 5)
    assert (chunk.data, chunk.next_index, chunk.is_finish) == (b"", "10", True)
    chunk = FakeArchiveSource(feed.path).get_media_data("f", "4", 5)
    assert (chunk.data, chunk.next_index, chunk.is_finish) == (b"456789", "10", True)


# ---- scripted errors and the call record -------------------------------------------------------


def test_fail_next_then_recover(feed: ArchiveFeed) -> None:
    _texts(feed, 1)
    source = FakeArchiveSource(feed.path)
    source.fail_next("get_chat_data", 10001, times=2)
    for _ in range(2):
        with pytest.raises(ArchiveUnavailable) as caught:
            source.get_chat_data(0, 10, 5)
        assert _code(caught) == 10001
    assert _seqs(source.get_chat_data(0, 10, 5)) == [1]
    assert source.calls_to("get_chat_data") == [SourceCall("get_chat_data", (0, 10, 5))] * 3


@pytest.mark.parametrize(
    ("method", "errcode", "kind"),
    [
        ("decrypt_data", 10003, ArchiveUnavailable),
        ("decrypt_data", 10006, RecordUndecryptable),
        ("get_media_data", 10010, ArchiveError),
        ("get_chat_data", 10009, ArchiveError),
        ("close", 10003, ArchiveUnavailable),
    ],
)
def test_fail_next_each_method(
    feed: ArchiveFeed, method: str, errcode: int, kind: type[ArchiveError]
) -> None:
    feed.add_media("f", b"x")
    [entry] = _texts(feed, 1)
    source = FakeArchiveSource(feed.path)
    source.fail_next(method, errcode)
    call = {
        "decrypt_data": lambda: source.decrypt_data("k", entry.encrypt_chat_msg),
        "get_media_data": lambda: source.get_media_data("f", "", 5),
        "get_chat_data": lambda: source.get_chat_data(0, 10, 5),
        "close": source.close,
    }[method]
    with pytest.raises(kind) as caught:
        call()
    assert caught.value.errcode == errcode
    assert "scripted" in str(caught.value)


def test_fail_next_refuses_unknown_methods(tmp_path: Path) -> None:
    source = FakeArchiveSource(tmp_path / "x")
    with pytest.raises(ValueError, match="not an ArchiveSource method"):
        source.fail_next("GetChatData", 10001)
    with pytest.raises(ValueError, match="times"):
        source.fail_next("close", 10001, times=-1)
    source.fail_next("close", 10001, times=0)
    source.close()


def test_calls_hold_no_key_material(feed: ArchiveFeed) -> None:
    [entry] = _texts(feed, 1)
    feed.add_media("f", b"x")
    source = FakeArchiveSource(feed.path)
    source.get_chat_data(0, 10, 5)
    with pytest.raises(RecordUndecryptable):
        source.decrypt_data("secret-random-key", entry.encrypt_chat_msg)
    source.get_media_data("f", "", 7)
    source.close()
    assert source.calls == [
        SourceCall("get_chat_data", (0, 10, 5)),
        SourceCall("decrypt_data", ()),
        SourceCall("get_media_data", ("f", "", 7)),
        SourceCall("close", ()),
    ]
    assert "secret-random-key" not in repr(source.calls)
    # A copy: the caller cannot change the record.
    source.calls.clear()
    assert len(source.calls) == 4


def test_threads_share_one_source(feed: ArchiveFeed) -> None:
    _texts(feed, 3)
    source = FakeArchiveSource(feed.path)
    source.fail_next("get_chat_data", 10001, times=20)
    failures: list[int] = []
    lock = threading.Lock()

    def pull() -> None:
        for _ in range(10):
            try:
                source.get_chat_data(0, 10, 5)
            except ArchiveUnavailable:
                with lock:
                    failures.append(1)

    threads = [threading.Thread(target=pull) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every scripted failure was handed out exactly once, and every call was recorded.
    assert len(failures) == 20
    assert len(source.calls) == 80


def test_altered_entries_reach_the_parser(feed: ArchiveFeed) -> None:
    [entry] = _texts(feed, 1)
    odd = dataclasses.replace(entry, seq=2, publickey_ver=9, encrypt_random_key="")
    feed.append_entries([odd])
    assert FakeArchiveSource(feed.path).get_chat_data(1, 10, 5) == [odd]


def test_wecom_errcodes_inside_a_pull_answer_say_what_to_check() -> None:
    with pytest.raises(ArchiveError) as refused:
        parse_chat_data('{"errcode": 41001, "errmsg": "access_token missing"}')
    assert refused.value.errcode == 41001
    assert "secret" in str(refused.value) and "allow-list" in str(refused.value)
    assert not isinstance(refused.value, (ArchiveUnavailable, RecordUndecryptable))
