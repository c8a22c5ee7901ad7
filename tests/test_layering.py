"""The package layering of design.md holds, and wecom_sdk's __all__ lists are real.

wecom_sdk is a leaf (imports none of bot, rules, monitor); rules is pure and imports neither bot
nor monitor; monitor never imports bot; nothing imports the CLI module.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

import wecom_sdk

PACKAGE_DIR = Path(wecom_sdk.__file__).parent
FORBIDDEN = {"bot", "rules", "monitor", "run_bot"}
MODULES = sorted(PACKAGE_DIR.rglob("*.py"))
PACKAGES = sorted(p for p in MODULES if p.name == "__init__.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_roots(source: str, package: str) -> set[str]:
    """Top-level names a module imports; relative imports are resolved against ``package``."""
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            # Resolving catches "from ...bot import x" written inside a subpackage.
            target = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
            roots.add(target.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            args = node.args
            if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                roots.add(args[0].value.split(".")[0])
    return roots


def test_modules_found() -> None:
    names = {module_name(p) for p in MODULES}
    assert {"wecom_sdk", "wecom_sdk.crypto", "wecom_sdk.messages.callback"} <= names


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_no_imports_of_sibling_packages(path: Path) -> None:
    roots = imported_roots(path.read_text(encoding="utf-8"), package_of(path))
    assert not roots & FORBIDDEN


ROOT = PACKAGE_DIR.parent
LAYERS = {"rules": {"bot", "monitor", "run_bot"}, "monitor": {"bot", "run_bot"}}
LAYERED = sorted((pkg, p) for pkg in LAYERS for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize(
    ("pkg", "path"), LAYERED, ids=[str(p.relative_to(ROOT)) for _, p in LAYERED]
)
def test_package_layers(pkg: str, path: Path) -> None:
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    roots = imported_roots(path.read_text(encoding="utf-8"), package)
    assert not roots & LAYERS[pkg]


@pytest.mark.parametrize("path", PACKAGES, ids=module_name)
def test_all_names_exist(path: Path) -> None:
    module = importlib.import_module(module_name(path))
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} has no __all__"
    assert len(exported) == len(set(exported)), "duplicate names in __all__"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing


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
