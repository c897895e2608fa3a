"""The checks behind `linecap setup check`: each step of the configuration guide, asked of the
system that holds it (LINE's bot info and webhook APIs, Capillary's lookup), pass or fail with
the fix a person can apply.

Probes use identifiers nobody has, so a healthy system answers "not found" (8015/8065), which is
the pass: it shows the credentials and the source account id were accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from config import LineChannel, Settings
from core.capillary.client import CapillaryClient
from core.errors import (
    ConfigurationError,
    CredentialsError,
    LinecapError,
    TransientError,
)
from core.line.client import LineApiClient

PROBE_EXTERNAL_ID = "linecap-setup-check"
PROBE_LINE_USER_ID = "U" + "0" * 32
CONSOLE = "LINE Developers console › your channel › Messaging API"
INTOUCH_LINE = "InTouch › Organization Settings › Channel Configurations › LINE"


@dataclass(frozen=True)
class Check:
    where: str
    what: str
    ok: bool
    detail: str
    fix: str | None = None


def capillary_credentials(capillary: CapillaryClient, settings: Settings) -> Check:
    name = "credentials"
    try:
        capillary.lookup("INSTORE", "externalId", PROBE_EXTERNAL_ID)
    except CredentialsError as exc:
        return Check("capillary", name, False, str(exc),
                     "set CAPILLARY_USERNAME/CAPILLARY_PASSWORD (till) or "
                     "CAPILLARY_OAUTH_KEY/CAPILLARY_OAUTH_SECRET to credentials InTouch accepts")
    except TransientError as exc:
        return Check("capillary", name, False, f"cannot reach Capillary ({exc})",
                     "check CAPILLARY_BASE_URL (your cluster's API host) and the network")
    except LinecapError as exc:
        return Check("capillary", name, False, str(exc), "check CAPILLARY_BASE_URL")
    return Check("capillary", name, True, f"accepted by {settings.capillary_base_url}")


def source_account(capillary: CapillaryClient, settings: Settings, channel: LineChannel,
                   credentials_ok: bool) -> Check:
    where, name = _where(channel), "source account id"
    fix = (f"set source_account_id of this channel in LINE_CHANNELS to the Source Account ID "
           f"shown in {INTOUCH_LINE}")
    if not credentials_ok:
        return Check(where, name, False, "not checked: Capillary credentials failed",
                     "fix the credentials first")
    try:
        capillary.lookup("LINE", settings.lookup_identifier_name, PROBE_LINE_USER_ID,
                         account_id=channel.source_account_id)
    except ConfigurationError as exc:
        return Check(where, name, False, f"{channel.source_account_id} refused ({exc})", fix)
    except LinecapError as exc:
        return Check(where, name, False, str(exc), fix)
    return Check(where, name, True, f"{channel.source_account_id} accepted by Capillary")


def access_token(line_api: LineApiClient, channel: LineChannel) -> Check:
    where, name = _where(channel), "access token"
    try:
        info = line_api.bot_info(channel)
    except CredentialsError:
        return Check(where, name, False, "LINE refused the channel access token",
                     f"issue a long-lived channel access token in the {CONSOLE} tab and put it "
                     "in access_token of this channel in LINE_CHANNELS")
    except TransientError as exc:
        return Check(where, name, False, f"cannot reach the LINE API ({exc})",
                     "check LINE_API_BASE_URL (https://api.line.me) and the network")
    except LinecapError as exc:
        return Check(where, name, False, str(exc), f"check the channel in the {CONSOLE} tab")
    return Check(where, name, True,
                 f"bot {info.get('displayName', '?')} ({info.get('basicId', '?')})")


def webhook_endpoint(line_api: LineApiClient, channel: LineChannel,
                     expected_url: str | None) -> Check:
    where, name = _where(channel), "webhook endpoint"
    fix = (f"linecap setup webhook --channel {channel.channel_id} --url "
           f"{expected_url or '<public base URL>/webhooks/line/' + channel.channel_id}")
    try:
        endpoint = line_api.webhook_endpoint(channel)
    except LinecapError as exc:
        return Check(where, name, False, f"cannot read it ({exc})", "fix the access token first")
    url = str(endpoint.get("endpoint") or "")
    if not url:
        return Check(where, name, False, "not set", fix)
    if expected_url and url != expected_url:
        return Check(where, name, False, f"points at {url}, not {expected_url}", fix)
    if endpoint.get("active") is False:
        return Check(where, name, False, f"{url} is set but webhooks are off",
                     f"turn on 'Use webhook' in the {CONSOLE} tab")
    return Check(where, name, True, url)


def webhook_reachable(line_api: LineApiClient, channel: LineChannel,
                      endpoint_check: Check) -> Check:
    where, name = _where(channel), "webhook reachable"
    if not endpoint_check.ok:
        return Check(where, name, False, "not tested: the webhook endpoint check failed",
                     "fix the webhook endpoint first")
    try:
        result = line_api.test_webhook(channel)
    except LinecapError as exc:
        return Check(where, name, False, f"LINE could not run the test ({exc})",
                     "fix the access token first")
    if result.get("success"):
        return Check(where, name, True, f"LINE got HTTP {result.get('statusCode')}")
    status = int(result.get("statusCode") or 0)
    detail = f"LINE's test failed: {result.get('reason', '?')} {result.get('detail', '')}".strip()
    return Check(where, name, False, detail, _reachability_fix(str(result.get("reason")), status))


def _reachability_fix(reason: str, status: int) -> str:
    if reason == "REQUEST_TIMEOUT":
        return "the receiver must answer within 2 s: check the web process and its host"
    if status == 401:
        return ("the receiver refused LINE's signature: the URL must end in /webhooks/line/"
                "<this channel id> and channel_secret in LINE_CHANNELS must be this channel's "
                f"secret ({CONSOLE.replace('Messaging API', 'Basic settings')})")
    if status == 404:
        return "the path is wrong: use <public base URL>/webhooks/line/<channel id>"
    if status == 503:
        return "the receiver cannot reach Redis: check REDIS_URL and that Redis is up"
    if status:
        return "see the web process's log for this request"
    return "make the receiver reachable from the internet over HTTPS (is it running?)"


def _where(channel: LineChannel) -> str:
    return f"channel {channel.name} ({channel.channel_id})"
