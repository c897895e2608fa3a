"""`linecap send-event`: post a signed, real-shaped follow/unfollow to a running receiver.

The body is shaped and serialised as LINE does it and signed byte for byte, so what the
receiver sees is what LINE would send.
"""

from __future__ import annotations

import argparse

import requests

from cli import context
from cli.channels import default_base_url, webhook_url
from cli.output import NOT_OK, CliError
from cli.validation import line_user_id_arg
from core.line.builders import user_event, webhook_body
from core.line.signature import sign

TIMEOUT_SECONDS = 10.0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "send-event", help="send a signed follow/unfollow webhook to the receiver",
        description="Build a LINE follow or unfollow event, sign the exact body with the "
                    "channel secret and POST it to the running receiver. Exit code 0 only on "
                    "a 2xx answer.")
    parser.add_argument("kind", choices=("follow", "unfollow"), help="event type")
    parser.add_argument("--user", required=True, type=line_user_id_arg, metavar="U…",
                        help="LINE user id (U + 32 lowercase hex)")
    parser.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    parser.add_argument("--url", metavar="BASE",
                        help="receiver base URL (default: http://127.0.0.1:$PORT)")
    parser.add_argument("--timestamp", type=int, metavar="MS",
                        help="event time in epoch milliseconds (default: now)")
    parser.add_argument("--event-id", metavar="ID", help="webhookEventId (default: a new ULID)")
    parser.add_argument("--redelivery", action="store_true",
                        help="mark it deliveryContext.isRedelivery=true, as LINE's redelivery")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    event = user_event(args.kind, args.user, timestamp_ms=args.timestamp,
                       event_id=args.event_id, redelivery=args.redelivery)
    body = webhook_body([event])
    url = webhook_url((args.url or default_base_url(config)).rstrip("/"), channel.channel_id)
    headers = {"Content-Type": "application/json",
               "X-Line-Signature": sign(body, channel.channel_secret)}
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise CliError(f"cannot reach the receiver at {url} ({type(exc).__name__}); "
                       "is it running? (`linecap up`)") from None
    print(f"HTTP {response.status_code}  webhookEventId {event['webhookEventId']}")
    if not response.ok:
        print(response.text.strip()[:500])
        return NOT_OK
    return 0
