"""rules.loader: the rule-file format, every kind of problem as exact file:line, folders, versions."""

from __future__ import annotations

import shutil
from datetime import time
from pathlib import Path

import pytest

from rules.errors import Problem, RuleFileError, RulesError
from rules.loader import (
    WORD_LIST_GROUP,
    load_rules,
    load_word_list,
    rule_files,
    word_list_rules,
)
from rules.models import (
    Audience,
    Boundary,
    LinkReply,
    MenuReply,
    Severity,
    TextReplyContent,
    TimeRange,
    Word,
)
from tests.support.paths import DATA, REPO

RULES = DATA / "rules"

GROUP_OK = """\
[[group]]
name = "维权"
severity = "high"
words = ["维权"]
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(paths: list[Path]) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        load_rules(paths)
    return [str(p) for p in info.value.problems]


def one_problem(tmp_path: Path, text: str) -> str:
    """Load ``text`` as r.toml; assert exactly one problem and return it without the file name."""
    path = write(tmp_path, "r.toml", text)
    found = problems([path])
    assert len(found) == 1, found
    prefix = f"{path}:"
    assert found[0].startswith(prefix)
    return found[0][len(prefix) :]


# -- happy path --------------------------------------------------------------------------------


def test_good_folder_loads_everything() -> None:
    rules = load_rules([RULES / "good"])
    assert [g.name for g in rules.groups] == ["维权", "辱骂"]
    rights, abuse = rules.groups
    assert rights.severity is Severity.HIGH and rights.audience is Audience.CUSTOMER
    assert rights.words == (
        Word("维权"),
        Word("投诉"),
        Word("消协", boundary=Boundary.WORD),
        Word("曝光", homophones=False, initials=True),
    )
    assert rights.recipients == ("zhangsan",)
    assert rights.source == f"{RULES / 'good' / 'a_groups.toml'}:2"
    assert abuse.allow == ("垃圾桶",) and abuse.must_not == ("测试",)
    assert abuse.audience is Audience.STAFF and abuse.severity is Severity.MEDIUM

    handoff, menu, link = rules.replies
    assert handoff.reply == TextReplyContent("好的，正在为您转接人工客服。")  # the "..." shorthand
    assert handoff.handoff and handoff.priority == 100 and handoff.match == "contains"
    assert isinstance(menu.reply, MenuReply) and menu.match == "all"
    assert [o.text for o in menu.reply.options] == ["退货", "换货"] and menu.reply.tail == "谢谢"
    assert not menu.handoff
    assert link.reply == LinkReply("价格表", "https://example.com/p")
    assert link.cooldown_s == 60 and link.match == "exact"
    assert link.active_hours == (
        TimeRange(time(9), time(18)),
        TimeRange(time(22), time(6)),
    )
    assert len(rules.version) == 12 and int(rules.version, 16) >= 0


def test_audience_defaults_to_any(tmp_path: Path) -> None:
    rules = load_rules([write(tmp_path, "r.toml", GROUP_OK)])
    assert rules.groups[0].audience is Audience.ANY


def test_error_types() -> None:
    assert issubclass(RuleFileError, RulesError)
    err = RuleFileError([Problem("a.toml", 3, "坏了")])
    assert str(err) == "a.toml:3: 坏了"


# -- every problem kind, with its exact line ---------------------------------------------------


def test_broken_file_reports_all_problems_in_line_order() -> None:
    path = RULES / "broken.toml"
    assert problems([path]) == [
        f"{path}:2: 缺少 severity（low | medium | high | critical）",
        f"{path}:4: [[group]] 里有未知的键 'sevrity'（是不是 severity？）",
        f"{path}:5: audience 只能是 customer | staff | any，现在是 'boss'",
        f"{path}:6: 词语 '维权' 在本组出现了两次；要给它加选项，请只保留带选项的那一项",
        f"{path}:10: severity 只能是 low | medium | high | critical，现在是 'urgent'",
        f"{path}:11: words 不能为空",
        f"{path}:16: match 只能是 exact | contains | all，现在是 'startswith'",
        f"{path}:17: 回复文字不能为空",
        f"{path}:18: 时间段 '9点到6点' 无效，应写成 \"09:00-18:00\"（24 小时制）",
    ]


def test_toml_syntax_error_line(tmp_path: Path) -> None:
    text = GROUP_OK + 'recipients = ["a", ]]\n'
    assert one_problem(tmp_path, text).startswith("5: TOML 语法错误：")


def test_toml_unclosed_array_points_at_end(tmp_path: Path) -> None:
    msg = one_problem(tmp_path, '[[group]]\nname = "x"\nseverity = "high"\nwords = ["a"\n')
    assert msg.startswith("4: TOML 语法错误：Unclosed array")


def test_unknown_table_and_single_brackets(tmp_path: Path) -> None:
    assert one_problem(tmp_path, "\n[[grop]]\nname = 1\n") == (
        "2: 未知的表或键 'grop'（是不是 group？）"
    )
    assert one_problem(tmp_path, "[reply]\nname = 'x'\n") == (
        "1: 请写成 [[reply]]（两层方括号，每条一个表）"
    )
    assert one_problem(tmp_path, "version = 2\n" + GROUP_OK).startswith("1: 未知的表或键 'version'")


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('recipients = "zhangsan"', '5: recipients 必须是字符串列表，例如 recipients = ["..."]'),
        ("allow = [1]", '5: allow 必须是字符串列表，例如 allow = ["..."]'),
        ('must_not = [""]', "5: must_not 里有空字符串"),
        ("colour = 1", "5: [[group]] 里有未知的键 'colour'（可用的键："),
    ],
)
def test_group_value_types(tmp_path: Path, extra: str, expected: str) -> None:
    assert one_problem(tmp_path, GROUP_OK + extra + "\n").startswith(expected)


def test_words_problems(tmp_path: Path) -> None:
    head = '[[group]]\nname = "g"\nseverity = "low"\n'
    assert one_problem(tmp_path, head + 'words = "维权"\n').startswith("4: words 必须是列表")
    assert one_problem(tmp_path, head) == "1: 缺少 words（敏感词列表）"
    assert one_problem(tmp_path, head + 'words = ["a", " "]\n') == "4: words 里有空字符串"
    assert one_problem(tmp_path, head + "words = [1]\n").startswith("4: words 的每一项必须是")
    multi = head + 'words = [\n  "维权",\n  "投诉",\n  { word = "维权", pinyin = true },\n]\n'
    assert one_problem(tmp_path, multi).startswith("7: 词语 '维权' 在本组出现了两次")
    wide = head + 'words = ["ＡＢ", "ab"]\n'
    assert one_problem(tmp_path, wide) == (
        "4: 词语 'ab' 在本组出现了两次（与 'ＡＢ' 算同一个词）；要给它加选项，请只保留带选项的那一项"
    )


def test_word_options_problems(tmp_path: Path) -> None:
    head = '[[group]]\nname = "g"\nseverity = "low"\nwords = [\n  "a",\n'
    bad_boundary = head + '  { word = "消协", boundary = "edge" },\n]\n'
    assert one_problem(tmp_path, bad_boundary) == (
        "6: boundary 只能是 substring | word，现在是 'edge'"
    )
    bad_pinyin = head + '  { word = "消协", pinyin = "yes" },\n]\n'
    assert one_problem(tmp_path, bad_pinyin) == "6: pinyin 只能是 true 或 false，现在是 'yes'"
    for key in ("homophones", "initials"):
        bad = head + f'  {{ word = "消协", {key} = 1 }},\n]\n'
        assert one_problem(tmp_path, bad) == f"6: {key} 只能是 true 或 false，现在是 1"
    unknown = head + '  { word = "消协", pinyn = true },\n]\n'
    assert one_problem(tmp_path, unknown) == "6: 词语选项里有未知的键 'pinyn'（是不是 pinyin？）"
    no_word = head + "  { pinyin = true },\n]\n"
    assert one_problem(tmp_path, no_word) == "4: 词语选项缺少 word（非空字符串）"


def test_group_name_problems(tmp_path: Path) -> None:
    assert one_problem(tmp_path, '[[group]]\nseverity = "low"\nwords = ["a"]\n') == (
        "1: 敏感词组缺少 name（非空字符串）"
    )


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.toml", GROUP_OK)
    second = write(tmp_path, "b.toml", "# 第二个文件\n\n" + GROUP_OK)
    assert problems([tmp_path]) == [f"{second}:4: 敏感词组名称 '维权' 重复，已在 {first}:2 定义"]


REPLY_OK = """\
[[reply]]
name = "转人工"
keywords = ["人工"]
reply = { text = "好的" }
"""


def test_duplicate_reply_names_in_one_file(tmp_path: Path) -> None:
    path = write(tmp_path, "r.toml", REPLY_OK + "\n" + REPLY_OK)
    assert problems([path]) == [f"{path}:7: 自动回复名称 '转人工' 重复，已在 {path}:2 定义"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('priority = "high"', "5: priority 必须是整数，现在是 'high'"),
        ("priority = true", "5: priority 必须是整数，现在是 True"),
        ("cooldown_s = -1", "5: cooldown_s 不能小于 0"),
        ('handoff = "yes"', "5: handoff 只能是 true 或 false，现在是 'yes'"),
        ('active_hours = "09:00-18:00"', '5: active_hours 必须是列表，例如 ["09:00-18:00"]'),
        ('active_hours = ["25:00-26:00"]', "5: 时间段 '25:00-26:00' 无效"),
        ('active_hours = ["09:00-09:00"]', "5: 时间段 '09:00-09:00' 的开始和结束相同"),
        ('keywords2 = ["a"]', "5: [[reply]] 里有未知的键 'keywords2'（是不是 keywords？）"),
    ],
)
def test_reply_value_problems(tmp_path: Path, extra: str, expected: str) -> None:
    assert one_problem(tmp_path, REPLY_OK + extra + "\n").startswith(expected)


def test_reply_keywords_problems(tmp_path: Path) -> None:
    base = '[[reply]]\nname = "r"\nreply = "好的"\n'
    assert one_problem(tmp_path, base) == "1: 缺少 keywords（字符串列表）"
    assert one_problem(tmp_path, base + "keywords = []\n") == "4: keywords 不能为空"
    assert one_problem(tmp_path, base + 'keywords = ["人工", "人工"]\n') == (
        "4: keywords 里有重复的关键词"
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("", "1: 缺少 reply（回复内容）"),
        ('reply = { text = "a", link = {} }', "4: reply 必须是 { text = ... }、{ menu = ... }"),
        ('reply = { video = "a" }', "4: 未知的回复类型 'video'（可用：text, menu, link）"),
        ('reply = { link = { title = "t", url = "ftp://x" } }', "4: 链接地址必须以 https://"),
        ('reply = { link = { url = "https://x" } }', "4: link 缺少 title（非空字符串）"),
        ('reply = { link = { title = "t", url = "https://x", img = "" } }', "4: link 里有未知的键"),
        ('reply = { menu = { head = "h" } }', "4: menu 缺少 options（至少一个选项）"),
        ('reply = { menu = { head = "h", options = [{ id = "1" }] } }', "4: 菜单选项必须写成"),
        (
            'reply = { menu = { head = "h", options = [{ id = "1", text = "a" }, { id = "1", text = "b" }] } }',
            "4: 菜单选项的 id 有重复",
        ),
        ('reply = { menu = { options = [{ id = "1", text = "a" }] } }', "4: menu 缺少 head"),
    ],
)
def test_reply_content_problems(tmp_path: Path, reply: str, expected: str) -> None:
    text = f'[[reply]]\nname = "r"\nkeywords = ["a"]\n{reply}\n'
    assert one_problem(tmp_path, text).startswith(expected)


def test_menu_allows_ten_options_not_eleven(tmp_path: Path) -> None:
    def menu(n: int) -> str:
        options = ", ".join(f'{{ id = "{i}", text = "选项{i}" }}' for i in range(n))
        return f'[[reply]]\nname = "r"\nkeywords = ["a"]\nreply = {{ menu = {{ head = "h", options = [{options}] }} }}\n'

    ok = load_rules([write(tmp_path, "ok.toml", menu(10))])
    assert isinstance(ok.replies[0].reply, MenuReply)
    assert one_problem(tmp_path, menu(11)) == "4: menu 最多 10 个选项，现在有 11 个"


def test_problems_from_several_files_are_all_reported(tmp_path: Path) -> None:
    a = write(tmp_path, "a.toml", '[[group]]\nname = "a"\nseverity = "bad"\nwords = ["x"]\n')
    b = write(tmp_path, "b.toml", "[[group]\n")
    found = problems([a, b])
    assert found[0] == f"{a}:3: severity 只能是 low | medium | high | critical，现在是 'bad'"
    assert found[1].startswith(f"{b}:1: TOML 语法错误：")
    assert len(found) == 2


def test_path_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "latin1.toml").write_bytes(b'[[group]]\nname = "\xe9"\n')
    assert problems([tmp_path / "missing.toml", tmp_path / "empty", tmp_path / "latin1.toml"]) == [
        f"{tmp_path / 'missing.toml'}:1: 找不到这个文件或文件夹",
        f"{tmp_path / 'empty'}:1: 文件夹里没有 .toml 规则文件",
        f"{tmp_path / 'latin1.toml'}:2: 不是 UTF-8 编码的文本，请另存为 UTF-8",
    ]
    assert problems([]) == ["(rules):1: 没有指定任何规则文件"]


# -- folders and versions ----------------------------------------------------------------------


def test_folder_loads_toml_files_sorted(tmp_path: Path) -> None:
    write(tmp_path, "b.toml", GROUP_OK.replace("维权", "二"))
    write(tmp_path, "a.toml", GROUP_OK.replace("维权", "一"))
    write(tmp_path, "notes.txt", "not a rule file")
    files, found = rule_files([tmp_path])
    assert [f.name for f in files] == ["a.toml", "b.toml"] and not found
    assert [g.name for g in load_rules([tmp_path]).groups] == ["一", "二"]


def test_version_depends_on_content_and_order_not_location(tmp_path: Path) -> None:
    good = RULES / "good"
    copy = tmp_path / "copy"
    shutil.copytree(good, copy)
    version = load_rules([good]).version
    assert load_rules([good]).version == version  # stable
    assert load_rules([copy]).version == version  # same names and bytes elsewhere
    files = sorted(copy.glob("*.toml"))
    assert load_rules(files).version == version  # a folder = its files in order
    assert load_rules(files[::-1]).version != version
    files[1].write_text(files[1].read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert load_rules([copy]).version != version


def test_samples_folder_loads() -> None:
    """The config default ``[rules] paths = ["rules/samples"]`` must load."""
    root = REPO
    rules = load_rules([root / "rules" / "samples"])
    assert rules.groups and rules.replies


# -- word lists --------------------------------------------------------------------------------


def test_word_list(tmp_path: Path) -> None:
    path = tmp_path / "w.txt"
    path.write_bytes("\ufeff# 注释\n维权\n\n  投诉  \n维权\n#不是词\n12315\n".encode())
    assert load_word_list(path) == ("维权", "投诉", "12315")


def test_word_list_rules() -> None:
    rules = word_list_rules(RULES / "words.txt", RULES / "allow.txt")
    (group,) = rules.groups
    assert group.name == WORD_LIST_GROUP and group.severity is Severity.HIGH
    assert group.audience is Audience.ANY
    assert [w.text for w in group.words] == [
        "维权",
        "投诉",
        "12315",
        "垃圾",
        "消费者协会",
        "私下转账",
    ]
    # A plain list gets every default normalisation (issue 19: pinyin and homophones on).
    assert all(w == Word(w.text) for w in group.words)
    assert all(w.boundary is None and w.pinyin and w.homophones for w in group.words)
    assert not any(w.initials for w in group.words)
    assert group.allow == ("垃圾桶",)
    assert len(rules.version) == 12


def test_word_list_problems(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# 只有注释\n\n", encoding="utf-8")
    with pytest.raises(RuleFileError, match="词表是空的"):
        word_list_rules(empty)
    with pytest.raises(RuleFileError, match="无法读取"):
        load_word_list(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\n")
    with pytest.raises(RuleFileError) as info:
        load_word_list(bad)
    assert str(info.value) == f"{bad}:2: 不是 UTF-8 编码的文本"


def test_words_equal_after_normalisation_are_duplicates(tmp_path: Path) -> None:
    head = '[[group]]\nname = "g"\nseverity = "low"\n'
    assert one_problem(tmp_path, head + 'words = ["投诉", "投 诉"]\n').startswith(
        "4: 词语 '投 诉' 在本组出现了两次（与 '投诉' 算同一个词）"
    )
    # A repeated character is part of the word: 谢谢 is not 谢.
    rules = load_rules([write(tmp_path, "ok.toml", head + 'words = ["谢谢", "谢"]\n')])
    assert [w.text for w in rules.groups[0].words] == ["谢谢", "谢"]


def test_unmatchable_words_are_reported(tmp_path: Path) -> None:
    head = '[[group]]\nname = "g"\nseverity = "low"\n'
    expected = "只有空格、标点或表情符号，匹配时这些都会被忽略，所以它什么也匹配不到"
    assert one_problem(tmp_path, head + 'words = [\n  "a",\n  "。。",\n]\n') == (
        f"6: '。。' {expected}"
    )
    assert one_problem(tmp_path, head + 'words = [{ word = "！" }]\n') == f"4: '！' {expected}"
    assert one_problem(tmp_path, head + 'words = ["a"]\nallow = ["…"]\n') == f"5: '…' {expected}"
    reply = '[[reply]]\nname = "r"\nreply = "好"\nkeywords = ["？"]\n'
    assert one_problem(tmp_path, reply) == f"4: '？' {expected}"
