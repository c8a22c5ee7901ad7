"""Data tables shipped inside installed packages, read here and nowhere else in ``rules``.

``rules/data/homophones.tsv`` (ours), ``confusables.json`` (confusable_homoglyphs: Unicode's
confusables data) and ``dict.txt`` (jieba's dictionary, the one jieba-rs segments with). Reading
them is the only I/O of ``rules`` besides the rule files (tests/test_architecture.py).
"""

from __future__ import annotations

from importlib import resources

__all__ = ["read_table"]


def read_table(package: str, name: str) -> str:
    """The UTF-8 text of the data file ``name`` shipped in ``package``."""
    return resources.files(package).joinpath(name).read_text("utf-8")
