"""Who may import what: the package rules of design.md §2, read from the source with ``ast``.

- ``wecom_sdk`` is a leaf: it imports none of bot, rules, monitor, run_bot;
- ``rules`` imports neither bot nor monitor, and no I/O or network module;
- ``monitor`` never imports bot; nothing (production code or bench) imports the CLI, run_bot;
- production code imports nothing from ``tests`` or ``bench``, and ``bench`` and ``tests`` do
  not import each other (the smoke tests run the benchmarks as subprocesses);
- ``wecom_sdk.testing`` (the WeCom emulator) is imported by production code only from
  ``bot/sandbox/``;
- there are no import cycles between the production modules;
- every package ``__init__`` has an ``__all__`` whose names exist.

Every import counts, also one inside a function or under ``if TYPE_CHECKING``: the rules are
about which module depends on which, not about what happens to load first.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO as ROOT

PRODUCTION = ("bot", "monitor", "rules", "wecom_sdk")
CLI = "run_bot"

#: Top-level names each tree must not import (design.md §2).
FORBIDDEN: dict[str, frozenset[str]] = {
    "wecom_sdk": frozenset({"bot", "rules", "monitor", CLI, "tests", "bench"}),
    "rules": frozenset({"bot", "monitor", CLI, "tests", "bench"}),
    "monitor": frozenset({"bot", CLI, "tests", "bench"}),
    "bot": frozenset({CLI, "tests", "bench"}),
    CLI: frozenset({"tests", "bench"}),
    "bench": frozenset({CLI, "tests"}),
    # The tests may drive run_bot.main in-process (same wiring, no subprocess start-up).
    "tests": frozenset({"bench"}),
}
EMULATOR = "wecom_sdk.testing"
#: Production code that may use the WeCom emulator: the local sandbox answers like WeCom.
EMULATOR_USERS = ("bot.sandbox",)
#: What ``rules`` must not import: sockets, HTTP, databases, Redis, processes, temp files.
IO_MODULES = frozenset(
    {
        "aiohttp", "aiosqlite", "asyncio.base_subprocess", "asyncio.streams", "asyncio.subprocess",
        "asyncpg", "ftplib", "http", "httpx", "multiprocessing", "psycopg", "psycopg2", "redis",
        "requests", "select", "selectors", "shutil", "smtplib", "socket", "socketserver",
        "sqlalchemy", "sqlite3", "sqlmodel", "ssl", "subprocess", "tempfile", "urllib",
        "wecom_sdk.client", "xmlrpc",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Module:
    """One module of the tree: its dotted name, file and source."""

    name: str
    path: Path
    source: str

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def package(self) -> str:
        """The package relative imports are resolved against."""
        return self.name if self.is_package else self.name.rpartition(".")[0]

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


@dataclass(frozen=True, slots=True)
class Import:
    """One imported module: ``import a.b`` gives ``a.b``; ``from a.b import c`` gives ``a.b``
    with ``name="c"`` (``a.b.c`` when that is a module); relative imports are resolved."""

    module: str
    line: int
    name: str | None = None

    def loads(self, known: Iterable[str]) -> str:
        """The module this import loads: ``module.name`` when that is a module, else ``module``."""
        full = f"{self.module}.{self.name}" if self.name else self.module
        return full if full in known else self.module


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def load_tree(*tops: str) -> list[Module]:
    """Every module of the named top-level packages (or ``run_bot`` for the CLI module)."""
    paths: list[Path] = []
    for top in tops:
        paths += [ROOT / f"{top}.py"] if top == CLI else sorted((ROOT / top).rglob("*.py"))
    return [Module(module_name(p), p, p.read_text(encoding="utf-8")) for p in paths]


def imports_of(source: str, package: str) -> list[Import]:
    """Every import in ``source``, wherever it stands; relative ones resolved against ``package``."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            # Resolving catches "from ...bot import x" written inside a subpackage.
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            found += [Import(target, node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            args = node.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                found.append(Import(args[0].value, node.lineno))
    return found


def imported_roots(source: str, package: str) -> set[str]:
    """Top-level names a module imports; relative imports are resolved against ``package``."""
    return {imp.module.split(".")[0] for imp in imports_of(source, package)}


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_violations(module: Module) -> list[str]:
    """``file:line imports X`` for each import the rules above forbid to ``module``."""
    top = module.name.split(".")[0]
    out: list[str] = []
    for imp in imports_of(module.source, module.package):
        named = {imp.module, f"{imp.module}.{imp.name}" if imp.name else imp.module}
        where = f"{module.rel}:{imp.line} imports {imp.module}"
        if imp.module.split(".")[0] in FORBIDDEN.get(top, ()):
            out.append(where)
        elif (
            top in PRODUCTION
            and any(_under(n, (EMULATOR,)) for n in named)
            and not _under(module.name, (*EMULATOR_USERS, EMULATOR))
        ):
            out.append(f"{where} (the emulator: only bot/sandbox/ may)")
        elif top == "rules" and any(_under(n, IO_MODULES) for n in named):
            out.append(f"{where} (I/O: rules reads rule files only)")
    return list(dict.fromkeys(out))  # "from m import a, b" is one violation


# ---- the import graph and its cycles -------------------------------------------------------------


def import_graph(modules: Iterable[Module]) -> dict[str, dict[str, int]]:
    """``{module: {module it imports: line}}`` over ``modules``, with the package ``__init__``s an
    import runs: ``from a.b.c import x`` in ``m`` depends on ``a``, ``a.b`` and ``a.b.c``, except on
    the packages that enclose ``m`` (Python has started those before ``m``)."""
    by_name = {m.name: m for m in modules}
    graph: dict[str, dict[str, int]] = {name: {} for name in by_name}
    for m in by_name.values():
        own = _enclosing(m.name)
        for imp in imports_of(m.source, m.package):
            target = imp.loads(by_name)
            # "from pkg import name" reads pkg's namespace: a real edge even when pkg encloses m.
            runs = [target] if target == imp.module and imp.name else []
            runs += [p for p in (*_enclosing(target), target) if p not in own]
            for dep in runs:
                if dep in by_name and dep != m.name:
                    graph[m.name].setdefault(dep, imp.line)
    return graph


def _enclosing(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_cycles(graph: Mapping[str, Mapping[str, int]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per group of modules that import each other."""
    return [_cycle_in(graph, group) for group in import_groups(graph)]


def import_groups(graph: Mapping[str, Mapping[str, int]]) -> list[set[str]]:
    """The groups of two or more modules that import each other, directly or not (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group: set[str] = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def _cycle_in(graph: Mapping[str, Mapping[str, int]], group: set[str]) -> list[str]:
    """The shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    for v in queue:
        for w in sorted(graph[v]):
            if w == start:
                return [*paths[v], start]
            if w in group and w not in paths:
                paths[w] = [*paths[v], w]
                queue.append(w)
    raise AssertionError("a strongly connected group always holds a cycle")


# ---- the tests ----------------------------------------------------------------------------------

TREES = (*PRODUCTION, CLI, "bench", "tests")


def test_modules_found() -> None:
    names = {m.name for m in load_tree(*TREES)}
    assert {"wecom_sdk", "wecom_sdk.crypto", "wecom_sdk.messages.callback"} <= names
    assert {"bot.web.app", "bot.sandbox", "monitor.archive", "rules.engine", CLI} <= names
    assert {"bench.loadgen", "tests.test_layering"} <= names


@pytest.mark.parametrize("top", TREES)
def test_package_layers(top: str) -> None:
    violations = [v for m in load_tree(top) for v in layer_violations(m)]
    assert not violations, "\n".join(violations)


#: The cycles the tree holds: the modules they run through, and why. While a package's
#: cycles stay inside these modules its test is an expected failure; any other cycle fails it.
KNOWN_CYCLES: dict[str, tuple[frozenset[str], str]] = {}


def _cycles_param(top: str) -> object:
    if top not in KNOWN_CYCLES:
        return top
    # raises=AssertionError: a pytest.fail (an unknown cycle) is a plain failure.
    known = pytest.mark.xfail(strict=True, raises=AssertionError, reason=KNOWN_CYCLES[top][1])
    return pytest.param(top, marks=known)


@pytest.mark.parametrize("top", [_cycles_param(t) for t in PRODUCTION])
def test_no_import_cycles(top: str) -> None:
    # A cycle between packages would break the layers above; each package is checked alone.
    graph = import_graph(load_tree(*PRODUCTION, CLI))
    groups = [g for g in import_groups(graph) if any(_under(name, (top,)) for name in g)]
    # "a:12 -> b:3 -> a": line 12 of a imports b, line 3 of b imports a.
    shown = "import cycles:\n" + "\n".join(
        " -> ".join([*(f"{a}:{graph[a][b]}" for a, b in itertools.pairwise(c)), c[-1]])
        for c in (_cycle_in(graph, g) for g in groups)
    )
    known = KNOWN_CYCLES.get(top, (frozenset(), ""))[0]
    if any(not group <= known for group in groups):
        pytest.fail(shown)
    assert not groups, shown


PACKAGES = sorted(p for top in PRODUCTION for p in (ROOT / top).rglob("__init__.py"))


@pytest.mark.parametrize("path", PACKAGES, ids=module_name)
def test_all_names_exist(path: Path) -> None:
    module = importlib.import_module(module_name(path))
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} has no __all__"
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing


# ---- the checkers catch what they are for -------------------------------------------------------


def _module(name: str, source: str, package: bool = False) -> Module:
    parts = name.split(".")
    path = (
        ROOT.joinpath(*parts, "__init__.py")
        if package
        else ROOT.joinpath(*parts[:-1], f"{parts[-1]}.py")
    )
    return Module(name, path, source)


def test_checker_catches_violations() -> None:
    source = (
        "import os\nfrom bot.web.app import x\nimport rules.engine as e\n"
        "from ..messages import parse\nimportlib.import_module('monitor.archive.store')\n"
    )
    roots = imported_roots(source, "wecom_sdk.client")
    assert roots == {"os", "bot", "rules", "monitor", "wecom_sdk"}
    # Relative imports cannot leave the top-level package; resolving says so loudly.
    with pytest.raises(ImportError):
        imported_roots("from ...bot import x", "wecom_sdk.client")


@pytest.mark.parametrize(
    ("name", "source", "found"),
    [
        (
            "wecom_sdk.client.kf",
            "from monitor import x",
            "wecom_sdk/client/kf.py:1 imports monitor",
        ),
        (
            "wecom_sdk.crypto",
            "def f():\n    import bot.web\n",
            "wecom_sdk/crypto.py:2 imports bot.web",
        ),
        ("rules.engine", "from monitor.archive import Archive", "imports monitor.archive"),
        ("rules.matcher", "import redis.asyncio as r", "imports redis.asyncio (I/O"),
        ("rules.engine", "from asyncio import streams", "imports asyncio (I/O"),
        ("rules.normalize", "import urllib.request", "imports urllib.request (I/O"),
        ("monitor.alerts.outbox", "from bot.web.keys import K", "imports bot.web.keys"),
        ("bot.web.app", "import run_bot", "bot/web/app.py:1 imports run_bot"),
        ("bot.kf.puller", "from tests.support.app import x", "imports tests.support.app"),
        ("monitor.archive.store", "from bench.messages import x", "imports bench.messages"),
        ("bench.callback_bench", "from tests.support import paths", "imports tests.support"),
        ("bench.loadgen", "import run_bot", "imports run_bot"),
        ("tests.e2e.test_x", "from bench import loadgen", "imports bench"),
        ("bot.web.app", "from wecom_sdk.testing import FakeWeCom", "(the emulator"),
        ("bot.web.app", "from wecom_sdk import testing", "(the emulator"),
        ("wecom_sdk.client.wecom_client", "from ..testing.fake_api import x", "(the emulator"),
        ("monitor.alerts.cards", "import wecom_sdk.testing.fake_api", "(the emulator"),
    ],
)
def test_layer_checker_catches(name: str, source: str, found: str) -> None:
    violations = layer_violations(_module(name, source))
    assert len(violations) == 1 and found in violations[0]


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("bot.sandbox.transport", "from wecom_sdk.testing import FakeWeCom"),
        ("wecom_sdk.testing.fake_api", "from ..crypto import MsgCrypto"),
        ("tests.e2e.test_x", "import run_bot\nfrom wecom_sdk.testing import FakeWeCom"),
        ("bench.kf_env", "from wecom_sdk.testing import FakeWeCom\nfrom bot.web.app import a"),
        ("rules.engine", "import asyncio\nfrom pathlib import Path\nfrom rules.loader import x"),
        ("monitor.alerts.outbox", "from wecom_sdk.client import WeComClient"),
    ],
)
def test_layer_checker_allows(name: str, source: str) -> None:
    assert layer_violations(_module(name, source)) == []


def test_cycle_checker_catches_cycles() -> None:
    tree = [
        _module("p", "from p.a import A", package=True),
        _module(
            "p.a", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.b import B\n"
        ),
        _module("p.b", "def f():\n    from . import a\n"),
        _module("q", "", package=True),
        _module("q.x", "from p.c import C"),
        _module("p.c", "from q.x import X"),
    ]
    cycles = import_cycles(import_graph(tree))
    assert sorted(cycles) == [["p.a", "p.b", "p.a"], ["p.c", "q.x", "p.c"]]


def test_cycle_checker_counts_package_inits() -> None:
    # m imports n.models; that runs n/__init__, which imports n.queries, which imports m.
    tree = [
        _module("m", "from n.models import T"),
        _module("n", "from n.queries import Q", package=True),
        _module("n.models", ""),
        _module("n.queries", "import m"),
    ]
    assert import_cycles(import_graph(tree)) == [["m", "n", "n.queries", "m"]]
    # Reading a name from the enclosing package's __init__ is a real edge too.
    tree = [_module("n", "from n.a import f", package=True), _module("n.a", "from n import g")]
    assert import_cycles(import_graph(tree)) == [["n", "n.a", "n"]]


def test_cycle_checker_allows_a_package_using_its_own_modules() -> None:
    tree = [
        _module("p", "from p.a import A\nfrom p.b import B", package=True),
        _module("p.a", "from p.b import B\nimport p.c"),
        _module("p.b", "from p import c\nfrom . import c as again"),
        _module("p.c", "import os"),
    ]
    graph = import_graph(tree)
    assert graph["p.b"] == {"p.c": 1}
    assert import_cycles(graph) == []
