"""``run_bot.py rules scan|check`` through a real subprocess, as the design's CLI contract states it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import run_bot
from rules.cli import scan_line, scan_stream
from rules.loader import load_rules, word_list_rules
from rules.matcher import compile_rules
from tests.support.paths import DATA, REPO

RULES = DATA / "rules"
SAMPLES = REPO / "rules" / "samples"


# Words of 3+ characters only: shorter ones load jieba (seconds) for the boundary check, and the
# in-process tests cover those already.
SCAN_MESSAGES = ["我要打１２３１５找消费者协会", '{"text": "您私下转账给我吧"}', "没有问题", ""]
WORDS = str(RULES / "words.txt")
ALLOW = str(RULES / "allow.txt")
BROKEN = RULES / "broken.toml"


def start(*args: str, stdin: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
    # A non-UTF-8 locale must not change the output: JSON lines are always UTF-8.
    env = {**os.environ, "PYTHONIOENCODING": "latin-1", "LC_ALL": "C"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "run_bot.py"), "rules", *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )


@pytest.fixture(scope="module", autouse=True)
def background() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Real CLI runs (each pays seconds of imports) started first, so they overlap the other tests."""
    procs = {
        "check": start(
            "check",
            str(RULES / "good"),
            str(BROKEN),
            str(RULES / "syntax.toml"),
            stdin=subprocess.DEVNULL,
        )
    }
    yield procs
    for proc in procs.values():
        proc.communicate(timeout=60)  # reaped even if its test did not run


def finish(proc: subprocess.Popen[bytes]) -> subprocess.CompletedProcess[bytes]:
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def lines(result: subprocess.CompletedProcess[bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]


def main(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> subprocess.CompletedProcess[bytes]:
    """``run_bot.main`` in-process (a subprocess costs seconds of imports): same wiring, same output."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()
    try:
        code = run_bot.main(["rules", *args])
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.encode(), err.encode())


# -- scan --------------------------------------------------------------------------------------


def test_scan_subprocess_streams_exact_spans_unescaped() -> None:
    """The real CLI, in a C/latin-1 locale: one flushed UTF-8 JSON line per input line.

    Each line is sent only after the previous answer was read: buffered output would hang here.
    """
    raw: list[bytes] = []
    with start("scan", "--words", WORDS, "--allow", ALLOW) as proc:
        assert proc.stdin and proc.stdout and proc.stderr
        for message in SCAN_MESSAGES:
            proc.stdin.write((message + "\n").encode())
            proc.stdin.flush()
            raw.append(proc.stdout.readline())
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()
        assert proc.stdout.read() == b""
    assert "消费者协会".encode() in raw[0]  # Chinese unescaped (ensure_ascii=False)
    out = [json.loads(line) for line in raw]
    assert out[0] == {
        "text": "我要打１２３１５找消费者协会",
        "hits": [  # text[3:8] is the full-width "１２３１５" of the original
            {"word": "12315", "start": 3, "end": 8, "group": "words", "severity": "high"},
            {"word": "消费者协会", "start": 9, "end": 14, "group": "words", "severity": "high"},
        ],
    }
    assert out[1] == {
        "text": "您私下转账给我吧",
        "hits": [{"word": "私下转账", "start": 1, "end": 5, "group": "words", "severity": "high"}],
    }
    assert out[2] == {"text": "没有问题", "hits": []}
    assert out[3] == {"text": "", "hits": []}  # blank lines answered too: line N <-> line N


def test_scan_allow_list_drops_hits_inside_phrases(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = "把垃圾扔进垃圾桶\n"
    with_allow = main(
        capsys,
        monkeypatch,
        "scan",
        "--words",
        str(RULES / "words.txt"),
        "--allow",
        str(RULES / "allow.txt"),
        stdin=stdin,
    )
    without = main(capsys, monkeypatch, "scan", "--words", str(RULES / "words.txt"), stdin=stdin)
    assert [(h["start"], h["end"]) for h in lines(with_allow)[0]["hits"]] == [(1, 3)]  # type: ignore[attr-defined]
    assert [(h["start"], h["end"]) for h in lines(without)[0]["hits"]] == [(1, 3), (5, 7)]  # type: ignore[attr-defined]


def test_scan_spans_point_into_the_original_text(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normalisation (full width, separators) never shifts the reported span."""
    text = "我要去１２３１５投 诉"
    (out,) = lines(
        main(capsys, monkeypatch, "scan", "--words", str(RULES / "words.txt"), stdin=text + "\n")
    )
    spans = [(h["word"], text[h["start"] : h["end"]]) for h in out["hits"]]  # type: ignore[attr-defined]
    assert ("12315", "１２３１５") in spans
    assert any(word == "投诉" and span.replace(" ", "") == "投诉" for word, span in spans)


def test_scan_rules_with_author_and_bad_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = "\n".join(
        [
            '{"text": "给我发个红包", "author": "staff"}',
            '{"text": "给我发个红包", "author": "customer"}',
            '{"text": "坏的 JSON"',
            '{"message": "没有 text"}',
            '{"text": "x", "author": "boss"}',
        ]
    )
    result = main(capsys, monkeypatch, "scan", "--rules", str(SAMPLES), stdin=stdin + "\n")
    assert result.returncode == 0
    staff, customer, broken, no_text, bad_author = lines(result)
    assert [h["word"] for h in staff["hits"]] == ["红包"]  # type: ignore[attr-defined]
    assert staff["hits"][0]["group"] == "员工索要财物"  # type: ignore[index]
    assert customer["hits"] == []
    assert broken["text"] == '{"text": "坏的 JSON"' and broken["hits"] == []
    assert str(broken["error"]).startswith("不是有效的 JSON")
    assert no_text["error"] == 'JSON 对象里缺少字符串字段 "text"'
    assert str(bad_author["error"]).startswith("author 只能是")


def test_scan_rules_samples_severity(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (out,) = lines(
        main(capsys, monkeypatch, "scan", "--rules", str(SAMPLES), stdin="我要打12315维权\n")
    )
    found = {h["word"]: h["severity"] for h in out["hits"]}  # type: ignore[attr-defined]
    assert found["12315"] == "high" and found["维权"] == "high"


def test_scan_invalid_rules_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = main(
        capsys, monkeypatch, "scan", "--rules", str(RULES / "broken.toml"), stdin="维权\n"
    )
    assert result.returncode == 1 and result.stdout == b""
    assert f"{RULES / 'broken.toml'}:5: audience" in result.stderr.decode("utf-8")


def test_scan_argument_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        main(capsys, monkeypatch, "scan", stdin="").returncode == 2
    )  # neither --rules nor --words
    both = main(
        capsys, monkeypatch, "scan", "--rules", str(SAMPLES), "--words", str(RULES / "words.txt")
    )
    assert both.returncode == 2
    assert (
        main(
            capsys,
            monkeypatch,
            "scan",
            "--rules",
            str(SAMPLES),
            "--allow",
            str(RULES / "allow.txt"),
        ).returncode
        == 2
    )


def test_scan_stream_in_process() -> None:
    matcher = compile_rules(word_list_rules(RULES / "words.txt"))
    out = io.StringIO()
    scan_stream(matcher, io.StringIO("投诉\r\n维权"), out)
    assert [json.loads(x)["text"] for x in out.getvalue().splitlines()] == ["投诉", "维权"]
    assert scan_line(matcher, "  {not json")["hits"] == []


# -- check -------------------------------------------------------------------------------------


def test_check_good_rules_prints_summary(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = main(capsys, monkeypatch, "check", str(SAMPLES))
    assert result.returncode == 0, result.stdout.decode()
    out = result.stdout.decode("utf-8").strip()
    rules = load_rules([SAMPLES])
    words = sum(len(g.words) for g in rules.groups)
    assert out == (
        f"规则有效：{len(rules.groups)} 个敏感词组（共 {words} 个词），"
        f"{len(rules.replies)} 条自动回复，版本 {rules.version}"
    )
    assert "\n" not in out


def test_check_reports_every_problem_with_file_and_line(
    background: dict[str, subprocess.Popen[bytes]],
) -> None:
    broken = BROKEN
    result = finish(background["check"])
    assert result.returncode == 1
    out = result.stdout.decode("utf-8").splitlines()
    assert out[0] == f"{broken}:2: 缺少 severity（low | medium | high | critical）"
    first = RULES / "good" / "a_groups.toml"
    assert out[1] == f"{broken}:3: 敏感词组名称 '维权' 重复，已在 {first}:3 定义"
    assert f"{broken}:18: 时间段 '9点到6点' 无效，应写成 \"09:00-18:00\"（24 小时制）" in out
    assert any(line.startswith(f"{RULES / 'syntax.toml'}:4: TOML 语法错误") for line in out)
    assert out[-1] == "发现 11 个问题"


@pytest.mark.parametrize("args", [["nope.toml"], []])
def test_check_missing_paths(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    result = main(capsys, monkeypatch, "check", *args)
    if args:
        assert result.returncode == 1
        assert result.stdout.decode("utf-8").startswith("nope.toml:1: 找不到这个文件或文件夹")
    else:
        assert result.returncode == 2  # argparse: PATH is required


# -- backtest ----------------------------------------------------------------------------------


def test_backtest_over_the_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from sqlmodel import Session

    from monitor.archive import MessageRecord, create_schema, make_engine

    url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = make_engine(url)
    create_schema(engine)
    texts = [
        ("2024-01-01", "旧消息：我要维权"),
        ("2024-06-01", "我要去12315投诉你们"),
        ("2024-06-02", "再不处理就投诉"),
        ("2024-06-03", "投诉"),
        ("2024-06-04", "投诉投诉"),
        ("2024-06-05", None),
        ("2024-06-06", "谢谢，没问题了"),
    ]
    with Session(engine) as session:
        for i, (day, content) in enumerate(texts):
            session.add(
                MessageRecord(
                    dedupe_key=f"k{i}",
                    channel="app",
                    msg_type="text" if content else "image",
                    from_user="wm_a",
                    to_user="corp",
                    create_time=0,
                    content=content,
                    raw="<xml/>",
                    received_at=datetime.fromisoformat(day).replace(tzinfo=UTC),
                )
            )
        session.commit()
    engine.dispose()
    config = tmp_path / "config.toml"
    example = (REPO / "config.example.toml").read_text(encoding="utf-8")
    config.write_text(example, encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", url)

    result = main(
        capsys, monkeypatch, "backtest", str(RULES / "good"), "--since", "2024-02-01",
        "--config", str(config),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode("utf-8").splitlines()
    assert out[0] == "共扫描 5 条消息，其中 4 条有命中"
    assert out[1] == "投诉\t5 次\t维权（high）"
    assert out[2:5] == ["    我要去12315投诉你们", "    再不处理就投诉", "    投诉"]  # 3 samples
    assert "旧消息" not in result.stdout.decode("utf-8")  # before --since
