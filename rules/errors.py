"""Exceptions raised by the rules package.

```
RulesError
└── RuleFileError     one or more rule files are invalid; ``problems`` lists every one found
```

Each :class:`Problem` renders as ``file:line: message`` (the form editors and ``rules check`` use).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Problem", "RuleFileError", "RulesError"]


class RulesError(Exception):
    """Root of every error raised by ``rules``."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a rule file, located by file and 1-based line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RuleFileError(RulesError):
    """Rule files could not be loaded; ``problems`` holds all problems found (at least one)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
