"""Package rules of design.md §2 and §8 beyond imports (those are in ``tests/test_layering.py``).

- ``rules`` does no I/O beyond reading rule files: only the rule-file loader opens files, and no
  module of it starts a process, a connection or a server;
- ``rules`` holds no per-message state: inspecting more messages from more customers leaves the
  engine, and the module globals of ``rules``, the size they were;
- module names are unique in meaning: two production modules share a file name only when the
  name means the same thing everywhere (:data:`SAME_MEANING`).
"""

from __future__ import annotations

import ast
import functools
import sys
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from rules.engine import RuleEngine
from rules.models import Audience
from tests.support.paths import REPO

PRODUCTION = ("bot", "monitor", "rules", "wecom_sdk")

# ---- rules does no I/O beyond reading rule files -------------------------------------------------

#: The modules of ``rules`` that read files, and what they read.
RULE_FILE_READERS = {
    "rules/loader.py": "the rule files (TOML) and plain word lists",
    "rules/shipped_data.py": "data tables shipped in packages (homophones, confusables, jieba's words)",
}
#: Calls that read a file: the builtin ``open(...)``, and these methods (``Path.read_text``...).
FILE_READS = frozenset({"open", "read_bytes", "read_text"})
#: Calls ``rules`` never makes: writing or changing files, starting processes, network I/O.
NEVER_IN_RULES = frozenset(
    {
        "chmod", "create_connection", "create_datagram_endpoint", "create_server",
        "create_subprocess_exec", "create_subprocess_shell", "create_unix_connection",
        "create_unix_server", "execv", "execve", "fork", "getaddrinfo", "mkdir",
        "open_connection", "open_unix_connection", "popen", "rename", "rmdir", "sock_connect",
        "sock_recv", "sock_sendall", "spawn", "start_server", "start_unix_server",
        "subprocess_exec", "subprocess_shell", "symlink_to", "system", "touch", "unlink",
        "urlopen", "write_bytes", "write_text",
    }
)  # fmt: skip


def io_calls(rel: str, source: str) -> list[str]:
    """``file:line calls name(...)`` for every I/O call ``rules`` may not make in ``rel``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        # open() by name or as a method (Path.open, io.open, os.open); the rest as methods.
        if name in NEVER_IN_RULES or (name in FILE_READS and rel not in RULE_FILE_READERS):
            out.append(f"{rel}:{node.lineno} calls {name}()")
    return out


def test_rules_does_no_io_beyond_reading_rule_files() -> None:
    found = [
        v
        for path in sorted((REPO / "rules").rglob("*.py"))
        for v in io_calls(path.relative_to(REPO).as_posix(), path.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)
    assert all((REPO / rel).is_file() for rel in RULE_FILE_READERS)


@pytest.mark.parametrize(
    ("source", "found", "reads_a_file"),
    [
        ("data = open(path).read()", "calls open()", True),
        ("with Path(p).open() as f: ...", "calls open()", True),
        ("text = path.read_text(encoding='utf-8')", "calls read_text()", True),
        ("blob = Path(p).read_bytes()", "calls read_bytes()", True),
        ("Path('hits.log').write_text(line)", "calls write_text()", False),
        ("os.system('ls')", "calls system()", False),
        ("await asyncio.open_connection(host, 6379)", "calls open_connection()", False),
        ("await loop.create_connection(Proto, host, 80)", "calls create_connection()", False),
        ("await asyncio.create_subprocess_exec('x')", "calls create_subprocess_exec()", False),
        ("urllib.request.urlopen(url)", "calls urlopen()", False),
    ],
)
def test_io_checker_catches(source: str, found: str, reads_a_file: bool) -> None:
    source = f"async def f():\n    {source}\n"
    assert io_calls("rules/matcher.py", source) == [f"rules/matcher.py:2 {found}"]
    # The loader may read files, and nothing else.
    in_loader = [] if reads_a_file else [f"rules/loader.py:2 {found}"]
    assert io_calls("rules/loader.py", source) == in_loader


def test_io_checker_allows_pure_code() -> None:
    source = "text.replace('a', 'b')\nre.compile(p).search(t)\nwith lock: pass\nopen_alert(x)\n"
    assert io_calls("rules/engine.py", source) == []


# ---- rules holds no per-message state ------------------------------------------------------------

_SIZED = (dict, list, set, frozenset, tuple, deque)


def _fields(obj: object) -> Iterable[tuple[str, Any]]:
    slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
    for name in slots:
        if hasattr(obj, name):
            yield name, getattr(obj, name)
    yield from getattr(obj, "__dict__", {}).items()


def state_sizes(
    obj: object, owned: Callable[[object], bool], path: str = "", seen: set[int] | None = None
) -> dict[str, int]:
    """``{attribute path: len}`` of every container reachable from ``obj``'s attributes.

    The walk follows attributes (``vars()`` and slots) of the objects ``owned`` accepts, and the
    items of containers; other objects (compiled automata, locks, clocks) are leaves.
    """
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return {}
    seen.add(id(obj))
    sizes: dict[str, int] = {}
    if isinstance(obj, _SIZED):
        sizes[path or "."] = len(obj)
        items = list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj))
        # Items are walked by position, not key: a key made of a customer id would differ anyway.
        for i, (_key, value) in enumerate(items):
            sizes |= state_sizes(value, owned, f"{path}[{i}]", seen)
    elif owned(obj):
        for name, value in _fields(obj):
            sizes |= state_sizes(value, owned, f"{path}.{name}", seen)
    return sizes


def _ours(obj: object) -> bool:
    return type(obj).__module__.split(".")[0] == "rules"


def rules_state() -> dict[str, int]:
    """Sizes of the containers in every ``rules`` module's globals, and of their caches."""
    sizes: dict[str, int] = {}
    for name, module in sorted(sys.modules.items()):
        if name.split(".")[0] != "rules":
            continue
        for attr, value in vars(module).items():
            if isinstance(value, functools._lru_cache_wrapper):
                sizes[f"{name}.{attr}()"] = value.cache_info().currsize
            elif isinstance(value, _SIZED) and not attr.startswith("__"):
                sizes |= state_sizes(value, _ours, f"{name}.{attr}")
    return sizes


def _messages(count: int, first_customer: int) -> Iterable[tuple[str, str]]:
    """Customer messages that take every path of ``inspect``: reply keywords (some with a
    cooldown), risk words, staff misconduct, active-hours-only keywords and plain chat."""
    texts = (
        "我的快递到哪了，什么时候发货",
        "这个多少钱，有优惠券吗",
        "我要退货，七天无理由",
        "再不处理我就去12315投诉",
        "在吗",
        "你好",
        "加我微信私下转账给你红包",
        "好的，谢谢",
    )
    for i in range(count):
        yield f"wmCustomer{first_customer + i:06d}", texts[i % len(texts)]


def _inspect_all(engine: RuleEngine, messages: Iterable[tuple[str, str]], now: float) -> int:
    replies = 0
    for _customer, text in messages:
        for author in (Audience.CUSTOMER, Audience.STAFF):
            replies += engine.inspect(text, author, now=now).reply is not None
    return replies


def test_rule_engine_keeps_no_per_message_state() -> None:
    engine = RuleEngine([REPO / "rules" / "samples"])
    noon = 1_767_240_000.0  # a fixed moment: the active-hours matchers depend on the hour only
    assert _inspect_all(engine, _messages(200, 0), noon) > 0
    before = state_sizes(engine, _ours) | rules_state()
    assert _inspect_all(engine, _messages(2_000, 1_000), noon) > 0
    after = state_sizes(engine, _ours) | rules_state()
    grown = {path: (before.get(path, 0), n) for path, n in after.items() if n != before.get(path)}
    assert not grown, f"state that grows with the messages: {grown}"


class _Remembers:
    """What the state check must catch: a per-customer table a level down."""

    def __init__(self) -> None:
        self.inner = _Inner()

    def inspect(self, customer: str) -> None:
        self.inner.seen[customer] = self.inner.seen.get(customer, 0) + 1


class _Inner:
    __slots__ = ("limit", "seen")

    def __init__(self) -> None:
        self.limit = 10
        self.seen: dict[str, int] = {}


def test_state_checker_catches_growth() -> None:
    engine = _Remembers()
    owned: Callable[[object], bool] = lambda obj: isinstance(obj, _Remembers | _Inner)  # noqa: E731
    engine.inspect("a")
    before = state_sizes(engine, owned)
    engine.inspect("b")
    engine.inspect("a")
    assert before == {".inner.seen": 1}
    assert state_sizes(engine, owned) == {".inner.seen": 2}
    # Containers inside containers count too, and objects not owned are leaves.
    nested = {"k": [1, 2, {"x": (1,)}], "other": Counter("ab")}
    assert state_sizes(nested, owned) == {
        ".": 2,
        "[0]": 3,
        "[0][2]": 1,
        "[0][2][0]": 1,
        "[1]": 2,
    }


# ---- module names are unique in meaning ----------------------------------------------------------

#: Names that may recur because they mean the same thing in every package:
SAME_MEANING = {
    "errors": "the package's exception tree",
    "log": "the package's named loggers (style.md §12: one log.py per package that logs)",
    "models": "the package's typed records and tables",
    "store": "the SQL of the package's own tables, run inside the caller's transaction",
    "callback": "WeCom's callback (the app's inbound POST): its XML types, its endpoint",
    "kf": "微信客服 (WeChat Customer Service): its message types, API calls, puller and sender",
    "transport": "how WeComClient's calls reach WeCom: the protocol, the sandbox's stand-in",
    "app": "the package's aiohttp application factory (the bot's app, the review sub-app)",
    "keys": "the package's typed aiohttp state keys (web.AppKey, web.RequestKey)",
    "settings": "a component's frozen settings, handed over by whoever builds it",
    "cli": "the package's command-line commands (run_bot.py parses and calls them)",
    "convert": "a pulled channel's item as the pipeline's channel-neutral ChatMessage",
    "page": "one pulled page of a channel: archive its items, then commit its cursor",
    "puller": "a pulled channel's notices, pages, lock and periodic pass",
    "resource": "a channel's app resource (its aiohttp cleanup_ctx)",
    "msgaudit": "the conversation archive (会话内容存档): its record types, the SDK's surface, "
    "the bot's puller",
}
#: Names of different meanings awaiting a rename; while there are any, the test is an expected
#: failure, and any other clash still fails it.
KNOWN_CLASHES: dict[str, str] = {}


def shared_names(paths: Iterable[str]) -> dict[str, list[str]]:
    """``{name: its paths}`` for module and package names used more than once, minus
    :data:`SAME_MEANING`; a package is given as its folder (``bot/kf/``)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for rel in paths:
        by_name[Path(rel).stem].append(rel)
    return {n: ps for n, ps in sorted(by_name.items()) if len(ps) > 1 and n not in SAME_MEANING}


def production_names() -> list[str]:
    """Every production module (``bot/web/app.py``) and package (``bot/web/``)."""
    files = sorted(p for top in PRODUCTION for p in (REPO / top).rglob("*.py"))
    return [
        f"{p.parent.relative_to(REPO).as_posix()}/"
        if p.name == "__init__.py"
        else p.relative_to(REPO).as_posix()
        for p in files
    ]


@pytest.mark.xfail(
    bool(KNOWN_CLASHES), strict=True, raises=AssertionError, reason="names awaiting a rename"
)
def test_module_names_unique_in_meaning() -> None:
    shared = shared_names(production_names())
    listed = "\n".join(f"{n}: {', '.join(ps)}" for n, ps in shared.items())
    if set(shared) - set(KNOWN_CLASHES):
        # pytest.fail is not an AssertionError: the xfail above does not swallow a new clash.
        pytest.fail(f"names that mean different things:\n{listed}")
    assert not shared, f"names that mean different things:\n{listed}"


def test_name_checker_catches_a_new_clash() -> None:
    names = production_names()
    assert {"bot/kf/", "wecom_sdk/client/kf.py", "rules/hit_filters.py"} <= set(names)
    clashes = shared_names([*names, "bot/handlers/replies.py", "bot/handlers/log.py"])
    assert clashes["replies"] == ["wecom_sdk/replies.py", "bot/handlers/replies.py"]
    assert "log" not in clashes
    assert shared_names(["a/filters.py", "b/hit_filters.py", "b/filters/"]) == {
        "filters": ["a/filters.py", "b/filters/"]
    }
