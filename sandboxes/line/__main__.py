"""``python -m sandboxes.line --port 8092 --channels '<json>'``: serve the fake LINE.

Uses werkzeug's threaded server (a delivery may call back into the sandbox) and prints one
line once the socket is listening, so scripts can wait for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sandboxes.serve import serve

from . import create_line_sandbox_app
from .config import LineSandboxConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandboxes.line", description="Fake LINE Messaging API and webhook sender"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092, help="0 picks a free port")
    parser.add_argument(
        "--channels", default=None, help="JSON list as in LINE_CHANNELS (default: $LINE_CHANNELS)"
    )
    parser.add_argument(
        "--webhook-url-template",
        default=None,
        help="initial webhook endpoint per channel, e.g. "
        "http://127.0.0.1:8000/webhooks/line/{channel_id}",
    )
    parser.add_argument("--webhook-timeout", type=float, default=2.0)
    parser.add_argument("--endpoint-propagation-seconds", type=float, default=60.0,
                        help="how long a new webhook endpoint takes to show (LINE: up to a "
                             "minute)")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> LineSandboxConfig:
    """Channels from --channels or LINE_CHANNELS, with the optional endpoint template applied."""
    raw = args.channels if args.channels is not None else os.environ.get("LINE_CHANNELS", "")
    if not raw.strip():
        raise SystemExit("no channels: pass --channels '<json>' or set LINE_CHANNELS")
    try:
        config = LineSandboxConfig.from_json(
            raw, webhook_timeout_seconds=args.webhook_timeout,
            endpoint_propagation_seconds=args.endpoint_propagation_seconds)
    except (json.JSONDecodeError, ValueError) as exc:
        raise SystemExit(f"invalid channels JSON: {exc}") from None
    if args.webhook_url_template:
        for channel in config.channels:
            if isinstance(channel, dict):
                channel.setdefault(
                    "webhook_endpoint",
                    args.webhook_url_template.format(
                        channel_id=channel.get("channel_id", ""), name=channel.get("name", "")
                    ),
                )
    return config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = build_config(args)
    try:
        app = create_line_sandbox_app(config)
    except ValueError as exc:
        raise SystemExit(f"invalid channels: {exc}") from None
    ids = ",".join(str(c.get("channel_id")) for c in config.channels if isinstance(c, dict))
    serve(app, args.host, args.port, f"LINE sandbox listening on {{url}} (channels: {ids})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
