"""`linecap up`: the whole system on one machine, from nothing but Python.

Redis (embedded unless REDIS_URL is set), the Capillary and LINE sandboxes (unless real URLs are
set), the web app, a worker, the beat and Flower run as supervised children. Ctrl-C stops them
all, in reverse order; if one dies, the rest are stopped and we exit 1, so a broken piece is
never hidden.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shlex
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redis

from cli.localstack.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from cli.localstack.local_env import write_local_env
from cli.localstack.processes import (
    ProcessGroup,
    ReadinessError,
    StopSignals,
    describe_exit,
    http_ok,
    port_open,
    wait_until,
)
from cli.output import display_url
from config import ConfigError, LineChannel, Settings, load_settings
from config.settings import LocalStackSettings, read_fields
from core.line.builders import user_event, webhook_body
from core.line.signature import sign
from core.store.connection import redis_client
from workers.beat import BEAT_ARGS

DEMO_CHANNEL_ID = "1234567890"
SANDBOX_USERNAME = "sandbox-till"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_ORG_UNIT_ID = "100"
READY_TIMEOUT = 15.0


@dataclass(frozen=True)
class StackOptions:
    """What `linecap up` may change; `environ` defaults to os.environ."""

    state_dir: Path = Path(".linecap")
    environ: Mapping[str, str] | None = None


@dataclass
class StackPlan:
    """Everything decided before starting anything: env, ports, and the child commands."""

    env: dict[str, str]
    settings: Settings
    channels: tuple[LineChannel, ...]
    demo: bool
    redis_port: int | None  # embedded Redis port; None when REDIS_URL was given
    capillary_port: int | None  # sandbox ports; None when real URLs were given
    line_port: int | None
    web_port: int
    flower_port: int
    sandbox_org: str = "strict"
    children: list[tuple[str, list[str], dict[str, str]]] = field(default_factory=list)


def run_stack(options: StackOptions | None = None) -> int:
    """Start and supervise everything until Ctrl-C/SIGTERM (0) or a child dies (1)."""
    opts = options or StackOptions()
    group = ProcessGroup(width=9)
    stop = StopSignals(on_repeat=group.kill)
    server: EmbeddedRedis | None = None
    try:
        plan = plan_stack(opts.environ if opts.environ is not None else os.environ, opts.state_dir)
        _ensure_ports_free(plan)
        server = _start_redis(plan, opts.state_dir, group, stop.is_set)
        for name, argv, env in plan.children:
            if stop.is_set():
                return 0
            child = group.start(name, argv, env=env, stop_timeout=30 if name == "worker" else 10)
            check, what = _readiness(plan, name)
            if check is not None:
                wait_until(check, what, READY_TIMEOUT, child, stop.is_set)
        write_local_env(plan.env, opts.state_dir / "local.env")
        group.write_block(build_banner(plan))
        died = group.supervise(stop, extra=lambda: _redis_died(server))
        if died:
            print(f"linecap up: {died}; stopping the rest", file=sys.stderr)
            return 1
        group.write_line("linecap", "stopping (Ctrl-C again to kill at once)")
        return 0
    except (ConfigError, EmbeddedRedisError, ReadinessError, OSError) as exc:
        if stop.is_set():
            return 0
        print(f"linecap up: {exc}", file=sys.stderr)
        return 1
    finally:
        group.stop()
        if server is not None:
            group.write_line("redis", "stopping")
            server.stop()
        stop.restore()


def plan_stack(environ: Mapping[str, str], state_dir: Path) -> StackPlan:
    """Decide env and commands; raises ConfigError naming a bad variable."""
    env = dict(environ)
    env["PYTHONUNBUFFERED"] = "1"
    ports = LocalStackSettings(**read_fields(LocalStackSettings, env))
    org_from_spec_check(ports.sandbox_org)
    redis_port = None
    if not env.get("REDIS_URL", "").strip():
        redis_port = ports.redis
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    capillary_port = None if env.get("CAPILLARY_BASE_URL") else ports.capillary_sandbox
    if capillary_port:
        env["CAPILLARY_BASE_URL"] = f"http://127.0.0.1:{capillary_port}"
        for name, value in (("USERNAME", SANDBOX_USERNAME), ("PASSWORD", SANDBOX_PASSWORD),
                            ("ORG_UNIT_ID", SANDBOX_ORG_UNIT_ID)):
            env[f"CAPILLARY_{name}"] = env.get(f"CAPILLARY_{name}") or value
    line_port = None if env.get("LINE_API_BASE_URL") else ports.line_sandbox
    if line_port:
        env["LINE_API_BASE_URL"] = f"http://127.0.0.1:{line_port}"
    demo = not env.get("LINE_CHANNELS") and not env.get("LINE_CHANNEL_ID")
    if demo:
        env["LINE_CHANNELS"] = json.dumps([demo_channel(state_dir)])
    env["PORT"] = str(ports.web)
    settings = load_settings(env)  # fail here, once, rather than in every child
    plan = StackPlan(
        env=env,
        settings=settings,
        channels=settings.channels,
        demo=demo,
        redis_port=redis_port,
        capillary_port=capillary_port,
        line_port=line_port,
        web_port=ports.web,
        flower_port=ports.flower,
        sandbox_org=ports.sandbox_org,
    )
    plan.children = _children(plan)
    return plan


def _org_name(spec: str) -> str:
    return spec if spec in ("strict", "lenient") else "of LINECAP_SANDBOX_ORG's switches"


def org_from_spec_check(spec: str) -> None:
    """LINECAP_SANDBOX_ORG must name a profile or be a JSON object; the sandbox reads it."""
    if spec in ("strict", "lenient"):
        return
    try:
        value = json.loads(spec)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ConfigError("LINECAP_SANDBOX_ORG must be strict, lenient or a JSON object of "
                          "switches (sandboxes/capillary/org.py)")


def _children(plan: StackPlan) -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, argv, env) of each child, in start order."""
    env, py, host = plan.env, [sys.executable, "-m"], "127.0.0.1"
    children = []
    if plan.capillary_port:
        accounts = ",".join(c.source_account_id for c in plan.channels)
        argv = [*py, "sandboxes.capillary", "--host", host, "--port", str(plan.capillary_port)]
        argv += ["--org", plan.sandbox_org]
        children.append(("capillary", [*argv, "--accounts", accounts], env))
    if plan.line_port:
        channels = json.dumps([_channel_dict(c) for c in plan.channels])
        argv = [*py, "sandboxes.line", "--host", host, "--port", str(plan.line_port)]
        # The fake LINE delivers its users' follows to this stack's receiver.
        argv += ["--webhook-url-template",
                 f"http://{host}:{plan.web_port}/webhooks/line/{{channel_id}}"]
        children.append(("line", [*argv, "--channels", channels], env))
    web = [*py, "gunicorn", "app:create_app()", "--bind", f"{host}:{plan.web_port}"]
    web += ["--workers", str(plan.settings.web_concurrency)]
    web += ["--threads", str(plan.settings.web_threads)]
    web += ["--no-control-socket"]
    children.append(("web", web, env))
    celery = [*py, "celery", "-A", "workers.celery_app"]
    worker = ["worker", "--loglevel", "INFO"]  # no -Q: every queue of workers.registry
    worker += ["--concurrency", str(plan.settings.worker_concurrency)]
    children.append(("worker", celery + worker, env))
    # The reconciliation's ticks (workers.beat: one beat sends, however many run).
    children.append(("beat", [*celery, *BEAT_ARGS], env))
    flower = [*py, "workers.flower", f"--address={host}", f"--port={plan.flower_port}"]
    children.append(("flower", flower, {**env, "LINECAP_LOCAL_MODE": "1"}))
    return children


def demo_channel(state_dir: Path) -> dict[str, str]:
    """The local demo channel; its random secret and token persist in demo-channel.json."""
    path = Path(state_dir) / "demo-channel.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        channel = {
            "name": "demo",
            "channel_id": DEMO_CHANNEL_ID,
            "channel_secret": secrets.token_hex(16),
            "access_token": secrets.token_hex(32),
            "source_account_id": "demo-line-account",
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(channel, out, indent=2)
        return channel
    try:
        channel = json.loads(path.read_text())
        return {key: str(channel[key]) for key in _CHANNEL_KEYS}
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is damaged; delete it to get a new demo channel") from None


def build_banner(plan: StackPlan, user_id: str | None = None) -> str:
    """What to do next: URLs, the channel, and a signed follow event ready to paste."""
    base = f"http://127.0.0.1:{plan.web_port}"
    lines = ["", "linecap is up. Ctrl-C stops everything.", ""]
    for channel in plan.channels:
        lines.append(f"  webhook        {base}/webhooks/line/{channel.channel_id}")
    if len(plan.channels) == 1:
        lines.append(f"  webhook        {base}/webhooks/line  (the only channel)")
    for channel in plan.channels:
        secret = channel.channel_secret if plan.demo else channel.channel_secret[:4] + "…"
        note = "  (local demo secret)" if plan.demo else ""
        lines.append(
            f"  channel        {channel.name}: id {channel.channel_id}, secret {secret}{note}"
        )
    lines.append(f"  flower         http://127.0.0.1:{plan.flower_port}")
    if plan.capillary_port:
        lines.append(f"  CRM sandbox    http://127.0.0.1:{plan.capillary_port}/sandbox/customers")
    if plan.line_port:
        lines.append(f"  LINE sandbox   http://127.0.0.1:{plan.line_port}")
    lines.append(f"  redis          {display_url(plan.env['REDIS_URL'])}")
    channel = plan.channels[0]
    user = user_id or "U" + secrets.token_hex(16)
    body = webhook_body([user_event("follow", user)])
    signature = sign(body, channel.channel_secret)
    curl = ["curl", "-sS", "-X", "POST", f"{base}/webhooks/line/{channel.channel_id}"]
    curl += ["-H", "Content-Type: application/json", "-H", f"X-Line-Signature: {signature}"]
    curl += ["--data-raw", body.decode()]
    lines += [
        "",
        "Register a LINE user the guide's way (INSTORE, then LINE, with their mobile), then",
        f"send the follow LINE would send to channel {channel.channel_id}:",
        f"  .venv/bin/linecap register --mobile 66812345678 --line-user {user}",
        f"  .venv/bin/linecap send-event follow --user {user}",
        "or, with curl:",
        "  " + shlex.join(curl),
    ]
    if plan.capillary_port:
        lines += [
            "",
            f"The Capillary sandbox plays the org {_org_name(plan.sandbox_org)} "
            "(LINECAP_SANDBOX_ORG). A",
            "follow from a user whose mobile nobody gave linecap ends, in a strict org, as a dead",
            "letter naming the setting to change (`linecap dlq list`); LINECAP_SANDBOX_ORG=lenient",
            "plays an org that registers LINE-only customers.",
        ]
    return "\n".join(lines + [""])


_CHANNEL_KEYS = ("name", "channel_id", "channel_secret", "access_token", "source_account_id")


def _channel_dict(channel: LineChannel) -> dict[str, str]:
    return {key: getattr(channel, key) for key in _CHANNEL_KEYS}


def _readiness(plan: StackPlan, name: str) -> tuple[Callable[[], bool] | None, str]:
    """How we know a child is ready: /healthz for HTTP services, an open port for Flower."""
    http = {"capillary": plan.capillary_port, "line": plan.line_port, "web": plan.web_port}
    if http.get(name):
        url = f"http://127.0.0.1:{http[name]}/healthz"
        return http_ok(url), f"{name} answering GET {url}"
    if name == "flower":
        return port_open(plan.flower_port), f"flower listening on port {plan.flower_port}"
    return None, name


def _redis_died(redis: EmbeddedRedis | None) -> str | None:
    code = redis.poll() if redis is not None else None
    if redis is None or code is None:
        return None
    return f"redis exited unexpectedly ({describe_exit(code)}), see {redis.log_path}"


def _ensure_ports_free(plan: StackPlan) -> None:
    variable = {spec.name: spec.metadata["env"] for spec in dataclasses.fields(LocalStackSettings)}
    wanted = {
        variable["redis"]: plan.redis_port,
        variable["capillary_sandbox"]: plan.capillary_port,
        variable["line_sandbox"]: plan.line_port,
        variable["web"]: plan.web_port,
        variable["flower"]: plan.flower_port,
    }
    for name, port in wanted.items():
        if port and port_open(port)():
            raise ConfigError(
                f"port {port} ({name}) is already in use on 127.0.0.1: is another "
                f"`linecap up` running? Stop it or set {name} to a free port"
            )


def _start_redis(
    plan: StackPlan, state_dir: Path, group: ProcessGroup, abort: Callable[[], bool]
) -> EmbeddedRedis | None:
    url = plan.env["REDIS_URL"]
    if plan.redis_port is None:
        client = redis_client(url, socket_timeout=1.0)
        wait_until(
            lambda: _pings(client), f"Redis at {display_url(url)}", READY_TIMEOUT, abort=abort
        )
        group.write_line("redis", f"using {display_url(url)}")
        return None
    server = EmbeddedRedis(Path(state_dir) / "redis", plan.redis_port)
    server.start(timeout=READY_TIMEOUT)
    group.write_line("redis", f"started on {url} (pid {server.pid}), log in {server.log_path}")
    return server


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception:  # any failure means "not yet"
        return False
