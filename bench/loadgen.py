"""A small HTTP/1.1 keep-alive load tool, run in its own process: `python -m bench.loadgen JSON`.

Two modes. `closed`: N connections each send, wait, send again, for the saturation point.
`open`: requests are due at a constant rate whatever the server does, and latency is taken from
the moment a request was *due*, not when it could be sent, so a stalled server is charged for
the queue it causes (no coordinated omission). Every loop is bounded by count and time.

Connections are opened one by one while the server is idle and then used in turn: gunicorn's
gthread workers race to accept, and a worker that is already busy wins, so connections opened
under load can all end up on one worker and leave the other idle.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.bodies import body_pool
from bench.stats import summarize

REQUEST_TIMEOUT = 15.0


@dataclass
class Plan:
    host: str
    port: int
    path: str
    mode: str  # "closed" or "open"
    duration: float
    events_per_request: int = 1
    connections: int = 32  # closed: how many; open: the most it may open
    rate: float = 0.0  # open: requests per second
    warmup: float = 1.0
    users: list[str] = field(default_factory=list)
    pool_size: int = 2048
    preopen: int = 0  # open this many connections one by one (5 ms apart) before the warm-up


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection; `request()` sends a POST and returns the status code."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection closed"))

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or self._waiter is None:
            return
        head = bytes(self._buffer[:end]).decode("latin-1").lower()
        length = 0
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name == "content-length":
                length = int(value)
            elif name == "connection" and "close" in value:
                self.closed = True
        if len(self._buffer) < end + 4 + length:
            return
        status = int(head[9:12])
        del self._buffer[: end + 4 + length]
        if not self._waiter.done():
            self._waiter.set_result(status)

    async def request(self, raw: bytes) -> int:
        self._waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return await asyncio.wait_for(self._waiter, REQUEST_TIMEOUT)


class Load:
    """The pool of connections and the recorded outcome of one run."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.requests = [self._raw(body, sig) for body, sig in
                         body_pool(plan.pool_size, plan.events_per_request, plan.users or None)]
        self.idle: deque[HttpConnection] = deque()  # oldest first: spread over all of them
        self.opened = 0
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors = 0
        self.answered = 0  # warm-up included
        self._next = 0

    def _raw(self, body: bytes, signature: str) -> bytes:
        head = (f"POST {self.plan.path} HTTP/1.1\r\nHost: {self.plan.host}:{self.plan.port}\r\n"
                f"Content-Type: application/json\r\nX-Line-Signature: {signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    def next_request(self) -> bytes:
        self._next = (self._next + 1) % len(self.requests)
        return self.requests[self._next]

    async def connection(self) -> HttpConnection:
        while self.idle:
            conn = self.idle.popleft()
            if not conn.closed:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(HttpConnection, self.plan.host, self.plan.port)
        self.opened += 1
        return conn

    async def send_one(self, due: float, record: bool) -> None:
        conn: HttpConnection | None = None
        try:
            conn = await self.connection()
            status = await conn.request(self.next_request())
        except (TimeoutError, OSError, ConnectionError):
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            if record:
                self.errors += 1
            return
        self.answered += 1
        if conn.closed:
            if conn.transport is not None:
                conn.transport.close()
        else:
            self.idle.append(conn)
        if record:
            self.latencies.append((time.perf_counter() - due) * 1000.0)
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1


async def closed_loop(load: Load, duration: float, record: bool) -> float:
    """Every connection sends back to back until `duration` passes; returns the elapsed time.

    Timing uses perf_counter: uvloop's loop.time() has only millisecond resolution.
    """
    started = time.perf_counter()
    deadline = started + duration

    async def worker() -> None:
        while (now := time.perf_counter()) < deadline:
            await load.send_one(now, record)

    await asyncio.gather(*(worker() for _ in range(load.plan.connections)))
    return time.perf_counter() - started


async def open_loop(load: Load, rate: float, duration: float, record: bool) -> float:
    """Requests due every 1/rate s; at most `connections` are open, the rest wait their turn."""
    slots = asyncio.Semaphore(load.plan.connections)
    start = time.perf_counter() + 0.05
    total = int(rate * duration)
    pending: set[asyncio.Task] = set()

    async def one(due: float) -> None:
        async with slots:
            await load.send_one(due, record)

    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending, timeout=REQUEST_TIMEOUT + 5)
    return time.perf_counter() - start


async def preopen(load: Load, count: int) -> None:
    """Connect one at a time while the server is idle, so its workers share the connections."""
    loop = asyncio.get_running_loop()
    for _ in range(count):
        _, conn = await loop.create_connection(HttpConnection, load.plan.host, load.plan.port)
        load.opened += 1
        load.idle.append(conn)
        await asyncio.sleep(0.005)


async def run(plan: Plan) -> dict[str, Any]:
    load = Load(plan)
    await preopen(load, plan.preopen)
    if plan.mode == "closed":
        await closed_loop(load, plan.warmup, record=False)
        elapsed = await closed_loop(load, plan.duration, record=True)
        throughput = len(load.latencies) / elapsed
    else:
        await open_loop(load, plan.rate, plan.warmup, record=False)
        elapsed = await open_loop(load, plan.rate, plan.duration, record=True)
        throughput = len(load.latencies) / plan.duration
    for conn in load.idle:
        if conn.transport is not None:
            conn.transport.close()
    ok = load.statuses.get("200", 0)
    return {
        "mode": plan.mode, "rate": plan.rate, "connections": plan.connections,
        "events_per_request": plan.events_per_request, "duration": round(elapsed, 3),
        "completed": len(load.latencies), "answered": load.answered, "ok": ok,
        "errors": load.errors,
        "statuses": load.statuses, "throughput": throughput, "opened": load.opened,
        "latency_ms": summarize(load.latencies),
    }


def main(argv: list[str]) -> int:
    plan = Plan(**json.loads(argv[0]))
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # plain asyncio works, with a little more overhead per request
        pass
    started = time.monotonic()
    result = asyncio.run(run(plan))
    result["wall_seconds"] = round(time.monotonic() - started, 3)
    result["plan"] = {k: v for k, v in asdict(plan).items() if k != "users"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
