"""`linecap setup check | webhook`: the configuration guide's manual steps, checked and done
through the LINE and Capillary APIs instead of two consoles.

The checks make a handful of Capillary calls outside the shared rate budget, so they work
before the rest of the system is up; `check` also asks the broker Redis whether it keeps what
it acknowledged (cli.setup_checks_redis).
"""

from __future__ import annotations

import argparse
import time
from urllib.parse import urlparse

from cli import context
from cli.channels import webhook_url
from cli.output import NOT_OK, CliError, print_table
from cli.setup_checks import (
    FAIL,
    PASS,
    WARN,
    Check,
    access_token,
    capillary_credentials,
    line_lookup,
    redelivery,
    registration_rules,
    source_account,
    webhook_endpoint,
    webhook_reachable,
)
from cli.setup_checks_redis import broker_redis_checks
from cli.validation import positive_int_arg
from config import LineChannel, Settings
from core.capillary.client import CapillaryClient
from core.errors import LinecapError
from core.line.client import LineApiClient

MAX_WEBHOOK_URL_LENGTH = 500  # LINE's limit (line-openapi SetWebhookEndpointRequest)
ENDPOINT_POLL_SECONDS = 5.0


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "setup", help="check or do the LINE/Capillary set-up steps of the configuration guide",
        description="Check every channel's access token, webhook endpoint and reachability, "
                    "the Capillary credentials, each source account id and the broker Redis's "
                    "persistence and eviction policy; or set a channel's webhook URL through "
                    "the LINE API.")
    steps = parser.add_subparsers(dest="setup_step", required=True, metavar="STEP")
    check = steps.add_parser(
        "check", help="check the set-up, one line per check with the fix",
        description="One line per check, PASS, WARN or FAIL, with the fix for each failure "
                    "or warning. Exit code 0 only when no check fails.")
    check.add_argument("--channel", metavar="ID", help="check only this channel (default: all)")
    check.add_argument("--base-url", metavar="URL",
                       help="public base URL of the receiver; each channel's webhook must then "
                            "be <URL>/webhooks/line/<channel id>")
    check.add_argument("--probe-registration", action="store_true",
                       help="register one test customer (externalId only) to learn whether the "
                            "org accepts the external_id strategy; for demo orgs")
    check.set_defaults(handler=run_check)
    webhook = steps.add_parser(
        "webhook", help="set a channel's webhook URL through the LINE API, then test it",
        description="Set the channel's webhook endpoint with LINE's API (https only), wait until "
                    "LINE reports it (a change may take up to a minute), and ask LINE to send "
                    "it a test request. Exit code 0 only when it is set and LINE reached it.")
    webhook.add_argument("--url", required=True, type=webhook_url_arg,
                         help="the full webhook URL, e.g. https://linecap.example.com"
                              "/webhooks/line/<channel id> (see `linecap channels`)")
    webhook.add_argument("--channel", metavar="ID", help="channel id (default: the only one)")
    webhook.add_argument("--wait", type=positive_int_arg, default=75, metavar="SECONDS",
                         help="how long to wait for LINE to report the new URL "
                              "(default: %(default)s)")
    webhook.set_defaults(handler=run_webhook)


def webhook_url_arg(text: str) -> str:
    value = text.strip()
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.netloc:
        raise argparse.ArgumentTypeError(
            f"LINE accepts only https webhook URLs; got {text!r}")
    if len(value) > MAX_WEBHOOK_URL_LENGTH:
        raise argparse.ArgumentTypeError(
            f"LINE accepts webhook URLs of at most {MAX_WEBHOOK_URL_LENGTH} characters")
    return value


def run_check(args: argparse.Namespace) -> int:
    config = context.settings()
    channels = [context.pick_channel(config, args.channel)] if args.channel else \
        list(config.channels)
    checks = collect_checks(config, channels, args.base_url, args.probe_registration)
    print_table(("RESULT", "WHERE", "CHECK", "DETAIL"), [
        (c.result, c.where, c.what,
         c.detail + (f" — fix: {c.fix}" if c.fix and c.result != PASS else ""))
        for c in checks])
    failed = sum(not c.ok for c in checks)
    warned = sum(c.result == WARN for c in checks)
    print(f"\n{len(checks)} checks, {failed} failed, {warned} to look at")
    return NOT_OK if failed else 0


def collect_checks(config: Settings, channels: list[LineChannel], base_url: str | None,
                   probe_registration: bool = False) -> list[Check]:
    capillary = CapillaryClient.from_settings(config, limiter=None)
    line_api = LineApiClient(config.line_api_base_url)
    credentials = capillary_credentials(capillary, config)
    checks = [credentials]
    for channel in channels:
        expected = webhook_url(base_url.rstrip("/"), channel.channel_id) if base_url else None
        token = access_token(line_api, channel)
        endpoint = webhook_endpoint(line_api, channel, expected) if token.ok else \
            Check(token.where, "webhook endpoint", FAIL, "not checked: access token refused",
                  "fix the access token first")
        account = source_account(capillary, config, channel, credentials.ok)
        checks += [token, endpoint, webhook_reachable(line_api, channel, endpoint),
                   redelivery(channel), account,
                   line_lookup(capillary, config, channel, account.ok)]
    if credentials.ok and channels:
        checks.append(registration_rules(capillary, config, channels[0], probe_registration))
    return checks + broker_redis_checks(config)


def run_webhook(args: argparse.Namespace) -> int:
    config = context.settings()
    channel = context.pick_channel(config, args.channel)
    line_api = LineApiClient(config.line_api_base_url)
    try:
        line_api.set_webhook_endpoint(channel, args.url)
        current = _wait_for_endpoint(line_api, channel, args.url, args.wait)
    except LinecapError as exc:
        raise CliError(f"could not set the webhook of channel {channel.channel_id}: {exc} "
                       "(`linecap setup check` says what to fix)") from None
    if current != args.url:
        print(f"LINE accepted {args.url} but still reports {current or 'no endpoint'} after "
              f"{args.wait} s; it can take up to a minute: `linecap setup check` later")
    else:
        print(f"webhook of channel {channel.name} ({channel.channel_id}) set to {current}")
    endpoint = Check(f"channel {channel.name}", "webhook endpoint", PASS, args.url)
    test = webhook_reachable(line_api, channel, endpoint, url=args.url)
    print(f"{test.result}  webhook reachable: {test.detail}"
          + (f" — fix: {test.fix}" if test.fix and test.result != PASS else ""))
    print(f"WARN  webhook redelivery: {redelivery(channel).fix} (no API can)")
    return 0 if test.result == PASS and current == args.url else NOT_OK


def _wait_for_endpoint(line_api: LineApiClient, channel: LineChannel, url: str,
                       seconds: float) -> str:
    """What LINE reports, polled until it is `url` or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        endpoint = line_api.webhook_endpoint(channel)
        current = str((endpoint or {}).get("endpoint") or "")
        if current == url or time.monotonic() >= deadline:
            return current
        time.sleep(min(ENDPOINT_POLL_SECONDS, max(deadline - time.monotonic(), 0)))
