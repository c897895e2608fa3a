"""`linecap channels`: what is configured, and the webhook URL to paste in the LINE console."""

from __future__ import annotations

import argparse

from cli import context
from cli.output import mask_secret, print_table
from config import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "channels", help="list configured LINE channels and their webhook URLs",
        description="List the LINE channels linecap is configured for (secrets masked) and the "
                    "webhook URL to set for each in the LINE Developers console.")
    parser.add_argument("--base-url", metavar="URL", help="public base URL of the receiver "
                                           "(default: http://127.0.0.1:$PORT)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    base = (args.base_url or default_base_url(config)).rstrip("/")
    print_table(
        ("NAME", "CHANNEL ID", "SOURCE ACCOUNT", "SECRET", "TOKEN", "WEBHOOK URL"),
        [(c.name, c.channel_id, c.source_account_id, mask_secret(c.channel_secret),
          mask_secret(c.access_token), webhook_url(base, c.channel_id)) for c in config.channels],
    )
    if config.single_channel is not None:
        print(f"\nOnly one channel, so {webhook_url(base)} works too.")
    return 0


def webhook_url(base: str, channel_id: str | None = None) -> str:
    return f"{base}/webhooks/line/{channel_id}" if channel_id else f"{base}/webhooks/line"


def default_base_url(config: Settings) -> str:
    return f"http://127.0.0.1:{config.port}"
