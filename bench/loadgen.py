"""A closed-loop HTTP/1.1 load generator on raw asyncio protocols.

Why not aiohttp's client: it spends more CPU per request than a bare aiohttp server does, so on a
2-core box it would measure itself. Here each of C keep-alive connections is a bare
``asyncio.Protocol`` that writes a pre-rendered request, parses just the status line and framing
headers of the answer, and sends its next request straight from ``data_received``: no coroutine,
future or header dict per request.

Latency is taken per request with ``perf_counter_ns`` from the write to the end of the response.
Throughput is the number of requests over the time from the first write to the last response;
connections are opened before that clock starts. Any status outside 2xx, and any request whose
connection died, is an error.

Run standalone (this is how ``bench.callback_bench`` drives it, pinned to its own core)::

    python -m bench.loadgen --port 8080 --input requests.pickle --concurrency 64 --cpu 1

where the input is a pickle of ``{"warmup": [(target, body), ...], "timed": [...]}``; the result
is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

__all__ = ["LoadResult", "render_requests", "run_load", "run_load_subprocess"]

_HEAD_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"
_CHUNKED = b"\r\ntransfer-encoding: chunked"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """Outcome of one load phase.

    Attributes:
        requests: requests attempted.
        ok: answered with a 2xx status.
        errors: non-2xx answers plus requests lost with their connection or unanswered at timeout.
        statuses: count per HTTP status; 0 counts requests that got no answer.
        duration_s: first write to last response.
        rps: ``requests / duration_s``.
        p50_ms, p99_ms: latency percentiles (nearest rank) over answered requests.
        client_cpu: CPU time the load generator used over ``duration_s``; well below 1.0 means the
            client was not the bottleneck.
        timed_out: the phase hit its deadline before every request was answered.
    """

    requests: int
    ok: int
    errors: int
    statuses: dict[int, int]
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    client_cpu: float = 0.0
    timed_out: bool = False

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (status keys become strings)."""
        data = asdict(self)
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadResult:
        """Inverse of :meth:`to_json`."""
        return cls(**{**data, "statuses": {int(k): int(v) for k, v in data["statuses"].items()}})


def render_requests(callbacks: Iterable[tuple[str, bytes]], host: str, port: int) -> list[bytes]:
    """Pre-render ``(target, body)`` pairs as complete HTTP/1.1 POST requests."""
    out = []
    for target, body in callbacks:
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode("ascii") + body)
    return out


def _response_end(buf: bytearray) -> tuple[int, int] | None:
    """``(status, length)`` of the complete response at the start of ``buf``; None if incomplete."""
    head_end = buf.find(_HEAD_END)
    if head_end < 0:
        return None
    status = int(buf[9:12])  # "HTTP/1.1 200 OK"
    head = bytes(buf[:head_end]).lower()
    body_start = head_end + 4
    at = head.find(_CONTENT_LENGTH)
    if at >= 0:
        eol = head.find(b"\r\n", at + 2)
        end = body_start + int(head[at + len(_CONTENT_LENGTH) : eol if eol >= 0 else None])
        return (status, end) if len(buf) >= end else None
    if _CHUNKED in head:
        pos = body_start
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
            if size == 0:
                # Last chunk, then optional trailers, then an empty line.
                end = buf.find(_HEAD_END, eol)
                return (status, end + 4) if end >= 0 else None
            pos = eol + 2 + size + 2
            if pos > len(buf):
                return None
    # No framing header: aiohttp always sends one of the two; treat the body as empty.
    return status, body_start


class _Phase:
    """State shared by the connections of one phase: the requests, a cursor and the measurements."""

    def __init__(self, requests: Sequence[bytes]) -> None:
        self.requests = requests
        self.cursor = 0
        self.latencies: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.answered = 0
        self.last_ns = 0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Set when the phase ends, so closing our own connections is not taken for a drop.
        self.stopped = False
        self.connections: list[_Connection] = []  # every connection opened, reconnects included

    def take(self) -> int | None:
        """Index of the next request to send, or None when all have been sent."""
        if self.cursor >= len(self.requests):
            return None
        self.cursor += 1
        return self.cursor - 1

    def record(self, status: int, sent_ns: int, now_ns: int) -> None:
        """Count one finished request; status 0 means it got no answer (and has no latency)."""
        self.statuses[status] += 1
        if status:
            self.latencies.append(now_ns - sent_ns)
        self.answered += 1
        self.last_ns = now_ns
        if self.answered == len(self.requests) and not self.done.done():
            self.done.set_result(None)

    def fail(self, exc: BaseException) -> None:
        """End the phase with ``exc`` (raised by :func:`run_load`) unless it is already over."""
        if not self.stopped and not self.done.done():
            self.done.set_exception(exc)


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send, wait for the whole answer, send the next."""

    def __init__(self, phase: _Phase, reconnect: _Reconnect) -> None:
        self._phase = phase
        self._reconnect = reconnect
        # uvloop's transports do not subclass asyncio.Transport, hence the cast below.
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._in_flight = False
        self._sent_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send_next(self) -> None:
        """Write the next request, or close once there is none left."""
        assert self._transport is not None
        index = self._phase.take()
        if index is None:
            self._transport.close()
            return
        self._in_flight = True
        self._sent_ns = time.perf_counter_ns()
        self._transport.write(self._phase.requests[index])

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        while self._in_flight and (parsed := _response_end(buf)) is not None:
            status, end = parsed
            now = time.perf_counter_ns()
            del buf[:end]
            self._in_flight = False
            self._phase.record(status, self._sent_ns, now)
            if self._transport is not None and not self._transport.is_closing():
                self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._in_flight:
            # The server hung up mid-request: that request failed; carry on with a new connection.
            self._in_flight = False
            self._phase.record(0, 0, time.perf_counter_ns())
        phase = self._phase
        if phase.cursor < len(phase.requests) and not phase.stopped and not phase.done.done():
            self._reconnect()

    def close(self) -> None:
        """Close the connection if it is still open."""
        if self._transport is not None:
            self._transport.close()


class _Reconnect:
    """Replaces a connection the server closed while requests remain.

    This cannot loop forever: a new connection sends at once, so each drop either costs a request
    (counted as an error) or comes after an answer; a refused connect ends the phase.
    """

    def __init__(self, phase: _Phase, host: str, port: int) -> None:
        self._phase, self._host, self._port = phase, host, port
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self) -> None:
        task = asyncio.get_running_loop().create_task(self._open())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _open(self) -> None:
        try:
            conn = await _connect(self._phase, self, self._host, self._port)
        except OSError as exc:
            self._phase.fail(exc)
            return
        conn.send_next()


async def _connect(phase: _Phase, reconnect: _Reconnect, host: str, port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: _Connection(phase, reconnect), host, port)
    phase.connections.append(proto)
    return proto


def _percentile(sorted_ns: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile in milliseconds."""
    if not sorted_ns:
        return 0.0
    rank = min(max(1, math.ceil(fraction * len(sorted_ns))), len(sorted_ns))
    return sorted_ns[rank - 1] / 1e6


async def run_load(
    host: str, port: int, requests: Sequence[bytes], concurrency: int = 64, timeout: float = 90.0
) -> LoadResult:
    """Send every request once over ``concurrency`` keep-alive connections and measure.

    Args:
        host, port: the server.
        requests: complete pre-rendered requests (see :func:`render_requests`).
        concurrency: connections kept busy at once (capped at ``len(requests)``).
        timeout: deadline for the whole phase; unanswered requests then count as errors.
    """
    phase = _Phase(requests)
    if not requests:
        return LoadResult(0, 0, 0, {}, 0.0, 0.0, 0.0, 0.0)
    reconnect = _Reconnect(phase, host, port)
    conns = await asyncio.gather(
        *(_connect(phase, reconnect, host, port) for _ in range(min(concurrency, len(requests))))
    )
    cpu_start = time.process_time()
    start = time.perf_counter_ns()
    for conn in conns:
        conn.send_next()
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(phase.done), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        phase.stopped = True
        for conn in phase.connections:
            conn.close()
        for task in list(reconnect.tasks):
            task.cancel()
        # Let the transports finish closing, so the loop's shutdown has nothing to warn about.
        await asyncio.sleep(0)
    end = phase.last_ns if phase.answered == len(requests) else time.perf_counter_ns()
    cpu = time.process_time() - cpu_start
    duration = max(end - start, 1) / 1e9
    statuses = dict(phase.statuses)
    unanswered = len(requests) - phase.answered
    if unanswered:
        statuses[0] = statuses.get(0, 0) + unanswered
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    latencies = sorted(phase.latencies)
    return LoadResult(
        requests=len(requests),
        ok=ok,
        errors=len(requests) - ok,
        statuses=statuses,
        duration_s=duration,
        rps=len(requests) / duration,
        p50_ms=_percentile(latencies, 0.50),
        p99_ms=_percentile(latencies, 0.99),
        client_cpu=cpu / duration,
        timed_out=timed_out,
    )


def run_load_subprocess(
    port: int,
    warmup: Sequence[tuple[str, bytes]],
    timed: Sequence[tuple[str, bytes]],
    *,
    concurrency: int = 64,
    cpu: int | None = None,
    host: str = "127.0.0.1",
    timeout: float = 90.0,
) -> tuple[LoadResult, LoadResult]:
    """Run an untimed warm-up, then the timed phase, in a separate process pinned to ``cpu``.

    Returns ``(warmup_result, timed_result)``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-loadgen-") as tmp:
        path = Path(tmp) / "requests.pickle"
        with path.open("wb") as fh:
            pickle.dump({"warmup": list(warmup), "timed": list(timed)}, fh)
        cmd = [sys.executable, "-m", "bench.loadgen", "--host", host, "--port", str(port)]
        cmd += ["--input", str(path), "--concurrency", str(concurrency), "--timeout", str(timeout)]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
            timeout=2 * timeout + 60,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {proc.stderr.strip()}")
    data = json.loads(proc.stdout)
    return LoadResult.from_json(data["warmup"]), LoadResult.from_json(data["timed"])


async def _main_async(args: argparse.Namespace) -> dict[str, object]:
    with Path(args.input).open("rb") as fh:
        # The file is written by run_load_subprocess a moment earlier, in a private temp dir.
        phases = pickle.load(fh)
    out: dict[str, object] = {}
    for name in ("warmup", "timed"):
        requests = render_requests(phases[name], args.host, args.port)
        result = await run_load(args.host, args.port, requests, args.concurrency, args.timeout)
        out[name] = result.to_json()
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m bench.loadgen``."""
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--input", required=True, help="pickle written by run_load_subprocess")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    import uvloop  # the same loop as the servers, and the faster client

    result = uvloop.run(_main_async(args))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
