"""``python -m bench [NAME] [options]``: run one benchmark, or all of them with their defaults."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Protocol

from bench import (
    alerts,
    callback_bench,
    kf_bench,
    msgaudit_bench,
    rules_bench,
    search_bench,
    selftest,
)


class Benchmark(Protocol):
    """What a benchmark module provides (see the ``bench`` package docstring)."""

    NAME: str
    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# The order is the order of a full run.
BENCHMARKS: tuple[Benchmark, ...] = (
    callback_bench,
    rules_bench,
    alerts,
    kf_bench,
    msgaudit_bench,
    search_bench,
)
#: Commands of the same shape that a full run leaves out.
TOOLS: tuple[Benchmark, ...] = (selftest,)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the chosen benchmark(s); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="name", metavar="NAME")
    parsers: dict[str, argparse.ArgumentParser] = {}
    for bench in (*BENCHMARKS, *TOOLS):
        parsers[bench.NAME] = p = sub.add_parser(bench.NAME, help=bench.HELP)
        bench.add_arguments(p)
    args = parser.parse_args(argv)
    named = [b for b in (*BENCHMARKS, *TOOLS) if args.name == b.NAME]
    chosen = BENCHMARKS if args.name is None else named
    status = 0
    for bench in chosen:
        bench_args = args if args.name else parsers[bench.NAME].parse_args([])
        status = max(status, bench.run(bench_args))
    return status


if __name__ == "__main__":
    sys.exit(main())
