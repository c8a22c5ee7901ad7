"""The compiled segmenter (jieba-rs) must cut exactly as jieba does without HMM."""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.hit_filters import token_bounds
from rules.normalize import normalize
from tests.support.paths import DATA

_CORPUS = DATA / "corpus"


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.dt.initialize()
    return jieba.dt


def _jieba_bounds(text: str) -> frozenset[int]:
    bounds, pos = {0}, 0
    for token in _jieba().cut(text, HMM=False):
        pos += len(token)
        bounds.add(pos)
    return frozenset(bounds)


def test_corpus_lines_segment_like_jieba() -> None:
    lines = [
        line
        for path in sorted(_CORPUS.rglob("*"))
        if path.is_file()
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) > 300
    for line in lines:
        for text in (line, normalize(line).text):
            assert token_bounds(text) == _jieba_bounds(text), text


# Characters of ordinary chat and of the rules, ASCII words and numbers, separators.
_PIECES = st.sampled_from(
    [
        *"我要维权投诉退款消协曝光起诉差评骗子刷单套现小费红包转账的了是在有人好吗呢吧",
        *"减小费用取消协议垃圾桶发货仓库补货今天下午看一下谢谢你们客服经理",
        "abc",
        "VX",
        "12315",
        "3.5",
        " ",
        "，",
        "\n",
        "😡",
        "wei",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_random_text_segments_like_jieba(text: str) -> None:
    assert token_bounds(text) == _jieba_bounds(text)
