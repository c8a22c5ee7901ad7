"""Adding a phrase to a group's allow-list in its rule file: a minimal edit that keeps every other
byte, checked by the rules loader before the file is replaced, refused on a concurrent change."""

from __future__ import annotations

import difflib
import os
import threading
import tomllib
from pathlib import Path

import pytest

from monitor.review.rule_edit import (
    RuleEditError,
    add_allow_phrase,
    find_group_file,
    restore_rule_file,
    sha256_hex,
    write_allow_phrase,
)
from rules.loader import load_rules

RULES = """\
# 测试规则：注释要保留
[[group]]
name = "垃圾话"          # 行尾注释
severity = "low"
audience = "any"
words = [
    "垃圾",   # 常见词
    "废物",
]
allow = [
    "垃圾桶",  # ] 注释里的括号
    'say "hi"]'
]

# 下一组的说明
[[group]]
name = "投诉"
severity = "high"
words = ["投诉"]

[[group]]
name = "退款"
severity = "medium"
words = ["退款"]
allow = ["已退款", "退款成功",]
# 文件末尾的注释
"""


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(old.splitlines(keepends=True), new.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def allow_of(text: str, group: str) -> list[str]:
    (table,) = [g for g in tomllib.loads(text)["group"] if g["name"] == group]
    return list(table.get("allow", []))


def test_multi_line_array_gets_one_new_line_and_a_comma() -> None:
    new = add_allow_phrase(RULES, "垃圾话", "垃圾分类")
    assert allow_of(new, "垃圾话") == ["垃圾桶", 'say "hi"]', "垃圾分类"]
    removed, added = changed_lines(RULES, new)
    assert removed == ["    'say \"hi\"]'\n"]
    assert added == ["    'say \"hi\"]',\n", '    "垃圾分类",\n']


def test_group_without_allow_gets_a_line_after_its_last_key() -> None:
    new = add_allow_phrase(RULES, "投诉", "投诉建议箱")
    assert allow_of(new, "投诉") == ["投诉建议箱"]
    removed, added = changed_lines(RULES, new)
    assert (removed, added) == ([], ['allow = ["投诉建议箱"]\n'])
    assert new.index('allow = ["投诉建议箱"]') > new.index('words = ["投诉"]')
    assert new.index('allow = ["投诉建议箱"]') < new.index('name = "退款"')


def test_one_line_array_with_a_trailing_comma() -> None:
    new = add_allow_phrase(RULES, "退款", '退款"已到账')
    assert allow_of(new, "退款") == ["已退款", "退款成功", '退款"已到账']
    removed, added = changed_lines(RULES, new)
    assert removed == ['allow = ["已退款", "退款成功",]\n']
    assert added == ['allow = ["已退款", "退款成功", "退款\\"已到账"]\n']


@pytest.mark.parametrize("group", ["垃圾话", "投诉", "退款"])
def test_comments_and_other_groups_stay_byte_identical(group: str) -> None:
    new = add_allow_phrase(RULES, group, "某某短语")
    removed, added = changed_lines(RULES, new)
    assert len(removed) <= 1 and len(added) <= 2
    assert all("#" not in line for line in removed)  # no comment line touched
    for line in RULES.splitlines(keepends=True):
        if line.lstrip().startswith("#"):
            assert line in new.splitlines(keepends=True)
    doc_old, doc_new = tomllib.loads(RULES), tomllib.loads(new)
    for before, after in zip(doc_old["group"], doc_new["group"], strict=True):
        if before["name"] != group:
            assert before == after


def test_an_empty_array_and_the_shipped_samples() -> None:
    text = '[[group]]\nname = "a"\nseverity = "low"\nwords = ["x"]\nallow = []\n'
    assert add_allow_phrase(text, "a", "x光").endswith('allow = ["x光"]\n')
    samples = Path(__file__).resolve().parents[4] / "rules" / "samples" / "customer_risk.toml"
    text = samples.read_text(encoding="utf-8")
    new = add_allow_phrase(text, "客户维权风险", "投诉建议箱")
    assert allow_of(new, "客户维权风险") == ["投诉建议箱"]


def test_unknown_group_is_refused() -> None:
    with pytest.raises(RuleEditError) as caught:
        add_allow_phrase(RULES, "没有这组", "短语")
    assert caught.value.code == "no_group"
    assert "没有敏感词组" in caught.value.message


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.toml").write_text(RULES, encoding="utf-8")
    (rules / "b.toml").write_text(
        '[[group]]\nname = "别的"\nseverity = "low"\nwords = ["别的词"]\n', encoding="utf-8"
    )
    return rules


def test_write_replaces_the_file_and_the_rules_load(folder: Path) -> None:
    target = folder / "a.toml"
    found = find_group_file([folder], "投诉")
    assert found.path == target and found.sha256 == sha256_hex(target.read_bytes())
    before_mode = target.stat().st_mode
    edit = write_allow_phrase([folder], "投诉", "投诉建议箱", found.sha256)
    assert edit.path == target
    assert edit.sha256_before == found.sha256
    assert edit.sha256_after == sha256_hex(target.read_bytes()) != found.sha256
    assert target.stat().st_mode == before_mode
    (group,) = [g for g in load_rules([folder]).groups if g.name == "投诉"]
    assert group.allow == ("投诉建议箱",)
    assert sorted(p.name for p in folder.iterdir()) == ["a.toml", "b.toml"]  # no temp file left
    assert (folder / "b.toml").read_text(encoding="utf-8").startswith("[[group]]")
    # Put back only while the file is as the edit left it.
    assert restore_rule_file(edit)
    assert target.read_text(encoding="utf-8") == RULES


def test_write_is_refused_after_a_concurrent_change(folder: Path) -> None:
    shown = find_group_file([folder], "投诉").sha256
    target = folder / "a.toml"
    target.write_text(RULES + "\n# 别人刚改过\n", encoding="utf-8")
    changed = target.read_bytes()
    with pytest.raises(RuleEditError) as caught:
        write_allow_phrase([folder], "投诉", "投诉建议箱", shown)
    assert caught.value.code == "changed"
    assert "重新回测" in caught.value.message
    assert target.read_bytes() == changed


def test_write_is_refused_when_the_result_would_not_load(folder: Path) -> None:
    # The phrase is fine for TOML, but a second file defining the same group name makes the
    # whole rule set invalid: the loader's verdict is what counts, and nothing is written.
    (folder / "c.toml").write_text(
        '[[group]]\nname = "投诉"\nseverity = "low"\nwords = ["x"]\n', encoding="utf-8"
    )
    target = folder / "a.toml"
    before = target.read_bytes()
    with pytest.raises(RuleEditError) as caught:
        write_allow_phrase([folder], "投诉", "投诉建议箱", sha256_hex(before))
    assert caught.value.code == "invalid"
    assert "无法通过检查" in caught.value.message
    assert target.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.toml", "b.toml", "c.toml"]


def test_two_writers_at_once_one_wins(folder: Path) -> None:
    shown = find_group_file([folder], "投诉").sha256
    outcomes: list[str] = []

    def write(phrase: str) -> None:
        try:
            write_allow_phrase([folder], "投诉", phrase, shown)
            outcomes.append("ok")
        except RuleEditError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=write, args=(p,)) for p in ("投诉建议箱", "投诉电话")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["changed", "ok"]
    (group,) = [g for g in load_rules([folder]).groups if g.name == "投诉"]
    assert len(group.allow) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write a read-only folder")
def test_write_is_refused_when_the_folder_is_read_only(folder: Path) -> None:
    target = folder / "a.toml"
    shown = sha256_hex(target.read_bytes())
    folder.chmod(0o555)
    try:
        with pytest.raises(RuleEditError) as caught:
            write_allow_phrase([folder], "投诉", "投诉建议箱", shown)
    finally:
        folder.chmod(0o755)
    assert caught.value.code == "not_writable"
