"""ArchiveFeed writes what the fake source serves: keys by version (written or held back), seqs in
file order, WeCom-like messages; and any text survives feed -> RSA -> fake DecryptData -> parser."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from wecom_sdk.errors import RecordUndecryptable
from wecom_sdk.messages import ArchiveMedia, ArchiveText, parse_archive_record
from wecom_sdk.msgaudit.fake import FakeArchiveSource
from wecom_sdk.msgaudit.keyring import KeyRing
from wecom_sdk.msgaudit.source import ChatDataEntry
from wecom_sdk.testing.archive_feed import ArchiveFeed


def _open(source: FakeArchiveSource, ring: KeyRing, entry: ChatDataEntry) -> str:
    random_key = ring.random_key(entry.publickey_ver, entry.encrypt_random_key)
    return source.decrypt_data(random_key, entry.encrypt_chat_msg)


def test_unwritten_key_quarantines_until_written(
    feed: ArchiveFeed, rsa_keys: dict[int, rsa.RSAPrivateKey]
) -> None:
    pending = feed.add_key(2, key=rsa_keys[2], write=False)
    assert not pending.exists() and feed.versions == (1, 2)
    [entry] = feed.append([feed.text("zhangsan", ["wmC"], "after the rotation")])
    assert entry.publickey_ver == 2
    source = FakeArchiveSource(feed.path)
    [pulled] = source.get_chat_data(0, 10, 5)
    with pytest.raises(RecordUndecryptable) as caught:
        _open(source, KeyRing.from_files(feed.key_paths), pulled)
    assert caught.value.errcode == 10007
    assert feed.write_key(2) == pending and pending.exists()
    assert parse_archive_record(_open(source, KeyRing.from_files(feed.key_paths), pulled)).text == (
        "after the rotation"
    )


def test_older_versions_stay_usable(
    feed: ArchiveFeed, rsa_keys: dict[int, rsa.RSAPrivateKey]
) -> None:
    feed.add_key(3, key=rsa_keys[3])
    old = feed.record(feed.text("zhangsan", ["wmC"], "old"), version=1)
    new = feed.record(feed.text("zhangsan", ["wmC"], "new"))
    assert (old.publickey_ver, new.publickey_ver) == (1, 3)
    feed.append_entries([old, new])
    source, ring = FakeArchiveSource(feed.path), KeyRing.from_files(feed.key_paths)
    assert [
        parse_archive_record(_open(source, ring, e)).text for e in source.get_chat_data(0, 9, 5)
    ] == [
        "old",
        "new",
    ]


def test_key_files(tmp_path: Path, rsa_keys: dict[int, rsa.RSAPrivateKey]) -> None:
    feed = ArchiveFeed(tmp_path / "c.jsonl", key_format="pkcs1")
    one = feed.add_key(1, key=rsa_keys[1])
    two = feed.add_key(2, key=rsa_keys[2], key_format="pkcs8")
    assert one.parent == tmp_path / "c.jsonl.keys"
    assert one.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert two.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE(one.stat().st_mode) == 0o600
    assert feed.key_paths == {1: one, 2: two}
    assert feed.public_pem(1).startswith(b"-----BEGIN PUBLIC KEY-----")
    assert feed.private_key(2) is rsa_keys[2]
    with pytest.raises(ValueError, match="added already"):
        feed.add_key(1)


def test_generated_key_size(tmp_path: Path) -> None:
    feed = ArchiveFeed(tmp_path / "c.jsonl", key_dir=tmp_path / "k", key_bits=1024)
    path = feed.add_key(5)
    assert path.parent == tmp_path / "k"
    assert feed.private_key(5).key_size == 1024
    assert KeyRing.from_files(feed.key_paths).versions == (5,)


def test_record_needs_a_key(tmp_path: Path) -> None:
    feed = ArchiveFeed(tmp_path / "c.jsonl")
    with pytest.raises(ValueError, match="add_key"):
        feed.record({"msgid": "x"})


def test_record_of_unknown_version(feed: ArchiveFeed) -> None:
    with pytest.raises(ValueError, match="publickey_ver 9"):
        feed.record({"msgid": "x"}, version=9)


def test_feed_continues_an_existing_file(
    feed: ArchiveFeed, rsa_keys: dict[int, rsa.RSAPrivateKey]
) -> None:
    feed.append([feed.text("a", ["b"], str(i)) for i in range(3)])
    with feed.path.open("a") as out:
        out.write('{"seq": 41, "half a line')
    again = ArchiveFeed(feed.path)
    again.add_key(1, key=rsa_keys[1])
    [entry] = again.append([again.text("a", ["b"], "more")])
    assert entry.seq == 4


def test_explicit_seq_moves_the_counter(feed: ArchiveFeed) -> None:
    msg = feed.text("a", ["b"], "x")
    assert feed.record(msg, seq=10).seq == 10
    assert feed.record(msg).seq == 11
    assert feed.record(msg, seq=5).seq == 5
    assert feed.record(msg).seq == 12


def test_built_messages(feed: ArchiveFeed) -> None:
    external = feed.text("zhangsan", ["wmCUST1"], "你好", roomid="wrROOM")
    assert external["msgid"].endswith("_1700000000_external")
    assert {k: v for k, v in external.items() if k != "msgid"} == {
        "action": "send",
        "from": "zhangsan",
        "tolist": ["wmCUST1"],
        "roomid": "wrROOM",
        "msgtime": 1_700_000_000_000,
        "msgtype": "text",
        "text": {"content": "你好"},
    }
    internal = feed.text("zhangsan", ["lisi"], "hi", msgid="fixed", msgtime=5)
    assert (internal["msgid"], internal["msgtime"]) == ("fixed", 5)
    assert not feed.text("zhangsan", ["lisi"], "hi")["msgid"].endswith("_external")
    revoke = feed.message("revoke", "zhangsan", ["wmC"], {"pre_msgid": "p"}, action="recall")
    assert (revoke["action"], revoke["revoke"]) == ("recall", {"pre_msgid": "p"})


def test_image_round_trip(feed: ArchiveFeed) -> None:
    data = bytes(range(256)) * 3000
    [entry] = feed.append([feed.image("wmCUST1", ["zhangsan"], data, sdkfileid="IMG1")])
    source = FakeArchiveSource(feed.path)
    record = parse_archive_record(_open(source, KeyRing.from_files(feed.key_paths), entry))
    assert isinstance(record, ArchiveMedia)
    assert (record.sdkfileid, record.filesize) == ("IMG1", len(data))
    chunks, index = [], ""
    while True:
        chunk = source.get_media_data("IMG1", index, 5)
        chunks.append(chunk.data)
        if chunk.is_finish:
            break
        index = chunk.next_index
    assert b"".join(chunks) == data


def test_concurrent_appends_stay_in_seq_order(feed: ArchiveFeed) -> None:
    def write(n: int) -> None:
        for i in range(5):
            feed.append([feed.text("a", ["b"], f"{n}-{i}"), feed.text("a", ["b"], "pair")])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seqs = [json.loads(line)["seq"] for line in feed.path.read_text().splitlines()]
    assert seqs == list(range(1, 41))


def test_custom_random_key(tmp_path: Path, rsa_keys: dict[int, rsa.RSAPrivateKey]) -> None:
    feed = ArchiveFeed(tmp_path / "c.jsonl", random_key=lambda: "fixed-key")
    feed.add_key(1, key=rsa_keys[1])
    entry = feed.record({"msgid": "m", "msgtype": "text", "text": {"content": "x"}})
    assert KeyRing.from_files(feed.key_paths).random_key(1, entry.encrypt_random_key) == "fixed-key"
    assert entry.msgid == "m"
    assert feed.record("[1]").msgid == ""
    garbage = feed.record("not json at all", msgid="g1")
    assert garbage.msgid == "g1"
    text = FakeArchiveSource(tmp_path / "c.jsonl").decrypt_data(
        "fixed-key", garbage.encrypt_chat_msg
    )
    with pytest.raises(RecordUndecryptable) as caught:
        parse_archive_record(text)
    assert caught.value.errcode == 10002


# ---- the round trip, for any text ----------------------------------------------------------------


@pytest.fixture(scope="module")
def trip(
    tmp_path_factory: pytest.TempPathFactory, rsa_keys: dict[int, rsa.RSAPrivateKey]
) -> tuple[ArchiveFeed, FakeArchiveSource, KeyRing]:
    path = tmp_path_factory.mktemp("trip") / "c.jsonl"
    feed = ArchiveFeed(path)
    feed.add_key(1, key=rsa_keys[1])
    return feed, FakeArchiveSource(path), KeyRing({1: rsa_keys[1]})


def _raw_string(text: str) -> str:
    # A JSON string as WeCom writes it: quotes and backslashes escaped, control characters raw.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@settings(max_examples=150, deadline=None)
@given(content=st.text(), raw=st.booleans())
def test_any_text_survives_the_round_trip(
    trip: tuple[ArchiveFeed, FakeArchiveSource, KeyRing], content: str, raw: bool
) -> None:
    feed, source, ring = trip
    if raw:
        message: dict[str, object] | str = (
            '{"msgid":"p1","action":"send","from":"wmC","tolist":["zs"],"roomid":"",'
            f'"msgtime":1,"msgtype":"text","text":{{"content":{_raw_string(content)}}}}}'
        )
    else:
        message = feed.text("wmC", ["zs"], content, msgid="p1")
    entry = feed.record(message)
    record = parse_archive_record(_open(source, ring, entry))
    assert isinstance(record, ArchiveText)
    assert record.text == content and record.dedupe_key == "ma:p1"
