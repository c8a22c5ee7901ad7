"""Callback-path benchmark: ours against a bare aiohttp handler and a hand-rolled peer.

For each server: start it as a subprocess pinned to one core, wait until its port answers, seal
a fresh batch of callbacks (same seed for every server, so the same messages; fresh timestamps, so
they pass ours' ±300 s window), send an untimed warm-up of different messages, then the timed batch
from the load generator pinned to the other core, and stop the server. The report gives req/s,
p50/p99 and errors per server and the ratios the issue sets targets for: ours/peer ≥ 1.0 (aim 1.5)
and ours/bare ≥ 0.5.

"ours" is ``run_bot.py serve`` on a throw-away config: one worker, SQLite archive in a temp dir,
in-process dedupe (empty ``redis_url``), WeCom API pointed at a closed loopback port so alert
delivery never leaves the machine.

``--url`` measures a server that is already running instead (any config, any number of workers,
as long as it takes WeCom's sample credentials); ``--quick`` is a few hundred callbacks, the size
of the smoke test; ``--json`` writes every figure, warm-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.loadgen import LoadResult, run_load_subprocess
from bench.machine import describe_machine, pick_cpus, pinned
from bench.messages import (
    CALLBACK_PATH,
    SAMPLE_AES_KEY,
    SAMPLE_AGENT_ID,
    SAMPLE_CORP_ID,
    SAMPLE_TOKEN,
    generate_callbacks,
)

__all__ = ["HELP", "NAME", "Settings", "add_arguments", "run", "settings_from"]

NAME = "callback"
HELP = "load-test the WeCom callback path: ours vs a bare aiohttp handler vs a hand-rolled peer"

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
SERVERS = ("bare", "peer", "ours")
#: The row of a server given by ``--url``.
TARGET = "target"
#: (timed requests, warm-up requests, connections): the full run and ``--quick``.
FULL = (20_000, 1_000, 64)
QUICK = (200, 20, 8)
# Generous: ours loads rules (jieba's dictionary) and creates its schema before it binds the port.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# Server environment variables that would override the bench config (design.md: env beats the file).
_OVERRIDES = ("DATABASE_URL", "REDIS_URL")


@dataclass(frozen=True, slots=True)
class Settings:
    """One run's options, sizes resolved (``--quick`` or the full run, then explicit options)."""

    requests: int
    warmup: int
    concurrency: int
    seed: int
    timeout: float
    servers: tuple[str, ...]
    #: A running server's callback URL to measure instead of starting ``servers``.
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One server's row in the report: measured, skipped or failed (``note`` says why)."""

    server: str
    result: LoadResult | None = None
    warmup: LoadResult | None = None
    note: str = ""
    skipped: bool = False

    @property
    def failed(self) -> bool:
        """A failed start, or a run with any error: either makes the whole run invalid."""
        if self.result is None:
            return not self.skipped
        return self.result.errors > 0 or (self.warmup is not None and self.warmup.errors > 0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench callback``."""
    requests, warmup, concurrency = FULL
    parser.add_argument(
        "--requests", type=int, default=None, help=f"timed callbacks per server ({requests:,})"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help=f"untimed callbacks sent first ({warmup:,})"
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help=f"keep-alive connections ({concurrency})"
    )
    parser.add_argument(
        "--quick", action="store_true", help="{} + {} callbacks on {} connections".format(*QUICK)
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated subset of {','.join(SERVERS)} (default: all)",
    )
    parser.add_argument(
        "--url",
        default=None,
        help="measure the server listening at this callback URL instead of starting any",
    )
    parser.add_argument("--seed", type=int, default=20_000, help="message generator seed")
    parser.add_argument("--timeout", type=float, default=90.0, help="deadline per load phase, s")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")


def settings_from(args: argparse.Namespace) -> Settings:
    """``--quick`` or the full size, then any explicit size option."""
    requests, warmup, concurrency = QUICK if args.quick else FULL
    return Settings(
        requests=requests if args.requests is None else args.requests,
        warmup=warmup if args.warmup is None else args.warmup,
        concurrency=args.concurrency or concurrency,
        seed=args.seed,
        timeout=args.timeout,
        servers=tuple(n.strip() for n in args.servers.split(",") if n.strip()),
        url=args.url,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _ours_command(port: int, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """Command line and environment for ``run_bot.py serve`` on a throw-away config."""
    dead_port = _free_port()  # nothing listens there: alert delivery fails fast, on loopback

    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    config = tmp / "config.toml"
    config.write_text(
        f"""[server]
host = {q(HOST)}
port = {port}
callback_path = {q(CALLBACK_PATH)}
max_body_bytes = 65536

[wecom]
corp_id = {q(SAMPLE_CORP_ID)}
token = {q(SAMPLE_TOKEN)}
encoding_aes_key = {q(SAMPLE_AES_KEY)}
agent_id = {q(SAMPLE_AGENT_ID)}
secret = ""
api_base = {q(f"http://{HOST}:{dead_port}/cgi-bin/")}

[storage]
database_url = {q(f"sqlite:///{tmp / 'bench.db'}")}
redis_url = ""

[logging]
level = "WARNING"
""",
        encoding="utf-8",
    )
    env = {
        k: v for k, v in os.environ.items() if k not in _OVERRIDES and not k.startswith("WECOM_")
    }
    cmd = [sys.executable, str(REPO / "run_bot.py"), "serve", "--config", str(config)]
    return [*cmd, "--host", HOST, "--port", str(port)], env


def _reference_command(name: str, port: int) -> list[str]:
    return [sys.executable, "-m", f"bench.servers.{name}", "--host", HOST, "--port", str(port)]


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    """Return once ``port`` accepts connections; raise if the server exits or never binds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (code := proc.poll()) is not None:
            raise RuntimeError(f"exited with code {code} before listening")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"did not listen on {HOST}:{port} within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (aiohttp shuts down gracefully), then SIGKILL the server's own session on timeout."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        # start_new_session made the server its own process group: this reaches its workers only.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def _server(
    cmd: list[str], env: dict[str, str] | None, port: int, cpu: int | None, log: Path
) -> Iterator[None]:
    """Run a server pinned to ``cpu`` for the block; its output goes to ``log``."""
    with log.open("wb") as out, pinned(cpu):
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        _wait_for_port(proc, port, START_TIMEOUT_S)
        yield
    finally:
        _stop(proc)


def _tail(log: Path, lines: int = 15) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return "\n".join("    | " + line for line in text[-lines:])


def _load(
    settings: Settings, host: str, port: int, path: str, client_cpu: int | None
) -> tuple[LoadResult, LoadResult]:
    """Seal the batch and send it: ``(warm-up, timed)`` results."""
    # Sealed now, not at start-up: ours rejects timestamps more than 300 s old.
    batch = generate_callbacks(settings.warmup + settings.requests, seed=settings.seed, path=path)
    pairs = [(c.target, c.body) for c in batch]
    return run_load_subprocess(
        port,
        pairs[: settings.warmup],
        pairs[settings.warmup :],
        concurrency=settings.concurrency,
        cpu=client_cpu,
        host=host,
        timeout=settings.timeout,
    )


def _measure(
    name: str, settings: Settings, tmp: Path, cpus: tuple[int | None, int | None]
) -> Outcome:
    """Start one server, load it, stop it."""
    port = _free_port()
    env: dict[str, str] | None = None
    if name == "ours":
        if not (REPO / "run_bot.py").exists():
            note = f"skipped: {REPO / 'run_bot.py'} not found (our server is not built yet)"
            return Outcome(name, note=note, skipped=True)
        cmd, env = _ours_command(port, tmp)
    else:
        cmd = _reference_command(name, port)
    log = tmp / f"{name}.log"
    server_cpu, client_cpu = cpus
    try:
        with _server(cmd, env, port, server_cpu, log):
            warmup, timed = _load(settings, HOST, port, CALLBACK_PATH, client_cpu)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return Outcome(name, note=f"failed: {exc}\n{_tail(log)}")
    return Outcome(name, timed, warmup)


def _measure_url(url: str, settings: Settings, client_cpu: int | None) -> Outcome:
    """Load the server already listening at ``url``."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname or HOST, parts.port or 80
        warmup, timed = _load(settings, host, port, parts.path or CALLBACK_PATH, client_cpu)
    except (ValueError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        return Outcome(TARGET, note=f"failed: {exc}")
    return Outcome(TARGET, timed, warmup)


def _ratio(outcomes: dict[str, Outcome], top: str, bottom: str) -> float | None:
    a, b = outcomes.get(top), outcomes.get(bottom)
    if a is None or b is None or a.result is None or b.result is None or a.failed or b.failed:
        return None
    return a.result.rps / b.result.rps


def _report(
    settings: Settings, cpus: tuple[int | None, int | None], outcomes: list[Outcome]
) -> str:
    m = describe_machine()
    server_cpu, client_cpu = cpus
    pinning = (
        f"server pinned to CPU {server_cpu}, load generator pinned to CPU {client_cpu}"
        if server_cpu is not None
        else "NOT pinned (fewer than 2 CPUs available): server and client share the machine"
    )
    if settings.url:
        pinning = f"server at {settings.url}, load generator pinned to CPU {client_cpu}"
    lines = [
        "callback benchmark: WeCom text-message callbacks, sealed up front",
        f"  {settings.requests} distinct callbacks per server (+{settings.warmup} different ones "
        f"untimed first), {settings.concurrency} keep-alive HTTP/1.1 connections",
        f"  machine: {m['nproc']} CPUs, {m['cpu']}, {m['os']}",
        f"  Python {m['python']}, aiohttp {m['aiohttp']}, uvloop {m['uvloop']} "
        f"(bare and peer on uvloop, as run_bot.py serve is), wechatpy {m['wechatpy']}",
        f"  {pinning}; client: asyncio + uvloop, raw protocol",
        "",
        f"{'server':<8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}{'client cpu':>12}",
    ]
    for o in outcomes:
        r = o.result
        if r is None:
            lines.append(f"{o.server:<8}{o.note}")
            continue
        errors = f"{r.errors}" + (" (timed out)" if r.timed_out else "")
        lines.append(
            f"{o.server:<8}{r.rps:>10.0f}{r.p50_ms:>10.2f}{r.p99_ms:>10.2f}{errors:>8}"
            f"{r.client_cpu:>11.0%}"
        )
        if r.errors or (o.warmup and o.warmup.errors):
            warm = o.warmup.statuses if o.warmup else {}
            lines.append(f"        INVALID: statuses {r.statuses}, warm-up {warm}")
    by_name = {o.server: o for o in outcomes}
    if settings.url:
        return "\n".join(lines)
    lines.append("")
    for top, bottom, target in (
        ("ours", "peer", "target >= 1.0, aim 1.5"),
        ("ours", "bare", "target >= 0.50"),
        ("peer", "bare", "reference"),
    ):
        ratio = _ratio(by_name, top, bottom)
        shown = f"{ratio:.2f}" if ratio is not None else "n/a"
        verdict = ""
        if ratio is not None and top == "ours":
            goal = 1.0 if bottom == "peer" else 0.5
            verdict = "  met" if ratio >= goal else "  MISSED"
        lines.append(f"{top}/{bottom}: {shown}  ({target}){verdict}")
    return "\n".join(lines)


def run(args: argparse.Namespace, echo: Callable[[str], None] = print) -> int:
    """Run the benchmark; exit status 1 when a server failed or any request errored."""
    settings = settings_from(args)
    unknown = sorted(set(settings.servers) - set(SERVERS))
    if unknown:
        echo(f"unknown server(s): {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
        return 2
    cpus = pick_cpus()
    outcomes = []
    if settings.url:
        cpus = (None, cpus[1])
        echo(f"[{TARGET}] running...")
        outcomes.append(_measure_url(settings.url, settings, cpus[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="wecom-bench-") as tmp:
            for name in settings.servers:
                echo(f"[{name}] running...")
                outcomes.append(_measure(name, settings, Path(tmp), cpus))
    echo("")
    echo(_report(settings, cpus, outcomes))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "benchmark": NAME,
            "machine": describe_machine(),
            "settings": asdict(settings),
            "cpus": {"server": cpus[0], "client": cpus[1]},
            "results": {o.server: _outcome_json(o) for o in outcomes},
        }
        args.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return 1 if any(o.failed for o in outcomes) else 0


def _outcome_json(outcome: Outcome) -> dict[str, object]:
    return {
        "result": outcome.result.to_json() if outcome.result else None,
        "warmup": outcome.warmup.to_json() if outcome.warmup else None,
        "note": outcome.note,
    }
