"""What the figures were measured on, and which cores the server and the client get."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["cpu_model", "describe_machine", "pick_cpus", "pinned"]


def cpu_model() -> str:
    """``model name`` from /proc/cpuinfo (``platform.processor()`` is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def describe_machine() -> dict[str, str]:
    """nproc, CPU model, kernel, Python and the versions that decide the figures."""
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "aiohttp": _version("aiohttp"),
        "uvloop": _version("uvloop"),
        "wechatpy": _version("wechatpy"),
    }


def pick_cpus() -> tuple[int | None, int | None]:
    """``(server_cpu, client_cpu)``: the first two CPUs this process may use, or no pinning at all.

    With one CPU, pinning both to it would only add contention; the report says "not pinned".
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


@contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Pin this process to ``cpu`` for the block, then restore its affinity.

    Children started inside the block inherit the mask through fork and exec, which pins a server
    we do not control (ours) without ``preexec_fn`` (unsafe once threads exist) or ``taskset``.
    """
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
