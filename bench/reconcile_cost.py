"""`.venv/bin/python -m bench.reconcile_cost [--followers N]`: what a user's history and the
reconciliation cost, on this machine, against the embedded Redis and the fake LINE platform in
a thread. Prints the figures docs/ARCHITECTURE.md ("Costs") quotes.

1. The history write at the end of one event run: a typical journal (received, four Capillary
   calls, the outcome) in one script call, against a bare Redis round trip (PING).
2. A reconciliation pass over N followers, half of them already applied, and as many order
   records to scan for drift: once as a dry run, once queueing (publishing to a counter, so the
   broker's per-message cost, measured in docs/BENCHMARKS.md, is left out).
"""

from __future__ import annotations

import argparse
import json
import secrets
import tempfile
import threading
import time
from pathlib import Path

from werkzeug.serving import make_server

from cli.localstack.embedded_redis import EmbeddedRedis
from config import LineChannel, load_settings
from core.store import history
from core.store.connection import redis_client
from core.store.history import HistoryStore
from core.store.reconciliation import Run
from sandboxes.line import LineSandboxConfig, create_line_sandbox_app
from tasks.followers.reconcile import Reconciler
from workers.runtime import build_runtime

RUNS = 5000
CHANNEL = LineChannel("bench", "1650000001", "0123456789abcdef0123456789abcdef",
                      "bench-access-token", "bench-account")


def user_id() -> str:
    return "U" + secrets.token_hex(16)


def journal(event: str) -> list[dict]:
    calls = ["GET /v2/customers/lookup/customerDetails", "POST /v2/customers",
             "POST /v2/customers", "POST /v2/customers/{id}/subscriptions"]
    return [history.entry(history.RECEIVED, event=event, type="follow", queue="line-events",
                          timestamp=history.now_ms(), redelivery=False),
            *[history.entry(history.CALL, event=event, call=c, status="200", ms=12)
              for c in calls],
            history.entry(history.OUTCOME, event=event, type="follow", outcome="applied",
                          attempt=1, reason="set to OPTIN", customer=1000001)]


def history_cost(client) -> None:
    store = HistoryStore(client)
    users = [user_id() for _ in range(RUNS)]
    started, cpu = time.perf_counter(), time.process_time()
    for _ in users:
        client.ping()
    ping_wall = (time.perf_counter() - started) / RUNS * 1e6
    ping_cpu = (time.process_time() - cpu) / RUNS * 1e6
    batches = [journal(secrets.token_hex(13).upper()) for _ in users]
    started, cpu = time.perf_counter(), time.process_time()
    for user, entries in zip(users, batches, strict=True):
        store.record("1650000001", user, entries)
    wall = (time.perf_counter() - started) / RUNS * 1e6
    used = (time.process_time() - cpu) / RUNS * 1e6
    size = sum(len(e) for e in client.lrange(f"linecap:history:1650000001:{users[0]}", 0, -1))
    print(f"history write of one run (6 entries, {size} bytes stored): {wall:.0f} µs wall, "
          f"{used:.0f} µs CPU in the worker; a bare PING: {ping_wall:.0f} µs wall, "
          f"{ping_cpu:.0f} µs CPU ({RUNS} runs)")


def reconcile_cost(url: str, followers: int) -> None:
    sandbox_app = create_line_sandbox_app(LineSandboxConfig(channels=[{
        "name": CHANNEL.name, "channel_id": CHANNEL.channel_id,
        "channel_secret": CHANNEL.channel_secret, "access_token": CHANNEL.access_token,
        "source_account_id": CHANNEL.source_account_id}]))
    state = sandbox_app.extensions["line_sandbox"]["state"]
    users = [user_id() for _ in range(followers)]
    for user in users:
        state.add_user(CHANNEL.channel_id, user)
        state.befriend(CHANNEL.channel_id, user, history.now_ms())
    server = make_server("127.0.0.1", 0, sandbox_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        runtime = build_runtime(load_settings({
            "REDIS_URL": url, "CAPILLARY_BASE_URL": "http://127.0.0.1:9",
            "CAPILLARY_USERNAME": "bench", "CAPILLARY_PASSWORD": "bench",
            "LINE_API_BASE_URL": f"http://127.0.0.1:{server.server_port}",
            "LINE_CHANNELS": json.dumps([{
                "name": CHANNEL.name, "channel_id": CHANNEL.channel_id,
                "channel_secret": CHANNEL.channel_secret, "access_token": CHANNEL.access_token,
                "source_account_id": CHANNEL.source_account_id}])}))
        for user in users[: followers // 2]:
            runtime.state.finish_event("E" + user[-8:], "applied", CHANNEL.channel_id, user,
                                       history.now_ms() - 60_000, "followed")
        for label, publish in (("dry run", None), ("queueing", lambda event: None)):
            run = Run.new(CHANNEL.channel_id, "bench", False, now=time.time() + 1)
            reconciler = Reconciler(runtime, CHANNEL, publish)
            started, cpu = time.perf_counter(), time.process_time()
            steps = 1
            while not reconciler.advance(run).done:
                steps += 1
            wall, used = time.perf_counter() - started, time.process_time() - cpu
            print(f"reconciliation, {label}: {followers:,} followers "
                  f"({run.counts.get('in_sync', 0):,} in sync, "
                  f"{run.counts.get('never_applied', 0):,} queued) and "
                  f"{followers // 2:,} order records scanned in {wall:.2f} s wall "
                  f"({wall / followers * 1e6:.0f} µs a follower), {used:.2f} s CPU in this "
                  f"process (the fake LINE's thread included), {steps} step(s)")
    finally:
        server.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile_cost",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = EmbeddedRedis(Path(folder)).start()
        try:
            history_cost(redis_client(server.url))
            reconcile_cost(server.url, args.followers)
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
