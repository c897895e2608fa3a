"""The checks behind `linecap setup check`: each step of the configuration guide, asked of the
system that holds it (LINE's bot info and webhook APIs, Capillary's lookup), pass, warn or fail
with the fix a person can apply.

Probes use identifiers nobody has, so a healthy system answers "not found" (8015/8065), which is
the pass: it shows the credentials and the source account id were accepted. Nothing here
creates a customer unless asked to (`--probe-registration`, for demo orgs).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from config import LineChannel, Settings
from core.capillary import codes
from core.capillary.client import CapillaryClient
from core.errors import (
    ConfigurationError,
    CredentialsError,
    LinecapError,
    OrgRulesError,
    TransientError,
)
from core.line.client import LineApiClient, LineRateLimited

PROBE_EXTERNAL_ID = "linecap-setup-check"
PROBE_LINE_USER_ID = "U" + "0" * 32
CONSOLE = "LINE Developers console › your channel › Messaging API"
INTOUCH_LINE = "InTouch › Organization Settings › Channel Configurations › LINE"
PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass(frozen=True)
class Check:
    where: str
    what: str
    result: str  # PASS, WARN (worth acting on, not a failure) or FAIL
    detail: str
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.result != FAIL


def capillary_credentials(capillary: CapillaryClient, settings: Settings) -> Check:
    name = "credentials"
    try:
        capillary.lookup("INSTORE", "externalId", PROBE_EXTERNAL_ID)
    except CredentialsError as exc:
        return Check("capillary", name, FAIL, str(exc),
                     "set CAPILLARY_USERNAME/CAPILLARY_PASSWORD (till) or "
                     "CAPILLARY_OAUTH_KEY/CAPILLARY_OAUTH_SECRET to credentials InTouch accepts")
    except TransientError as exc:
        return Check("capillary", name, FAIL, f"cannot reach Capillary ({exc})",
                     "check CAPILLARY_BASE_URL (your cluster's API host) and the network")
    except LinecapError as exc:
        return Check("capillary", name, FAIL, str(exc), "check CAPILLARY_BASE_URL")
    return Check("capillary", name, PASS, f"accepted by {settings.capillary_base_url}")


def source_account(capillary: CapillaryClient, settings: Settings, channel: LineChannel,
                   credentials_ok: bool) -> Check:
    where, name = _where(channel), "source account id"
    fix = (f"set source_account_id of this channel in LINE_CHANNELS to the Source Account ID "
           f"shown in {INTOUCH_LINE}")
    if not credentials_ok:
        return Check(where, name, FAIL, "not checked: Capillary credentials failed",
                     "fix the credentials first")
    try:
        capillary.lookup("LINE", "externalId", PROBE_EXTERNAL_ID,
                         account_id=channel.source_account_id)
    except ConfigurationError as exc:
        return Check(where, name, FAIL, f"{channel.source_account_id} refused ({exc})", fix)
    except LinecapError as exc:
        return Check(where, name, FAIL, str(exc), fix)
    return Check(where, name, PASS, f"{channel.source_account_id} accepted by Capillary")


def line_lookup(capillary: CapillaryClient, settings: Settings, channel: LineChannel,
                account_ok: bool) -> Check:
    """Whether Capillary finds customers by LINE id (identifierName=line is not in its
    documented list); without it linecap finds them by the externalId it registers."""
    where, name = _where(channel), "lookup by LINE id"
    if not account_ok:
        return Check(where, name, FAIL, "not checked: the source account id failed",
                     "fix the source account id first")
    if settings.line_lookup == "externalId":
        return Check(where, name, PASS, "not used: CAPILLARY_LINE_LOOKUP=externalId")
    try:
        capillary.lookup("LINE", settings.lookup_identifier_name, PROBE_LINE_USER_ID,
                         account_id=channel.source_account_id)
    except ConfigurationError as exc:
        if codes.LOOKUP_NAME_REFUSED not in exc.codes:
            return Check(where, name, FAIL, str(exc), "check the source account id")
        detail = (f"Capillary refuses identifierName={settings.lookup_identifier_name} (8013); "
                  "linecap finds LINE users by the externalId it gives their LINE profile, so "
                  "customers whose LINE profile was made elsewhere are not found")
        if settings.line_lookup == "line":
            return Check(where, name, FAIL, detail, "set CAPILLARY_LINE_LOOKUP=auto")
        return Check(where, name, WARN, detail, "ask Capillary to enable lookups by LINE id")
    except LinecapError as exc:
        return Check(where, name, FAIL, str(exc), "check the Capillary credentials")
    return Check(where, name, PASS, "Capillary looks customers up by "
                                    f"identifierName={settings.lookup_identifier_name}")


def registration_rules(capillary: CapillaryClient, settings: Settings, channel: LineChannel,
                       probe: bool) -> Check:
    """Which strategy for unknown users the org accepts. Only a registration tells for sure,
    and it creates a customer: done only when asked (`--probe-registration`, a demo org)."""
    where, name = "capillary", "registration without a mobile"
    if settings.unknown_user_strategy == "park":
        return Check(where, name, PASS, "not needed: LINECAP_UNKNOWN_USER_STRATEGY=park waits "
                                        "for a mobile")
    if not probe:
        return Check(where, name, WARN,
                     "not probed (it would create a customer). Capillary's documents say a "
                     "non-loyalty customer needs a mobile or email (1045); the first refused "
                     "registration dead-letters with the setting to change",
                     "run `linecap setup check --probe-registration` against a demo org, or "
                     "set LINECAP_UNKNOWN_USER_STRATEGY=park")
    probe_id = f"{settings.external_id_prefix}linecap-probe-{secrets.token_hex(6)}"
    profile = {"source": "INSTORE", "identifiers": [{"type": "externalId", "value": probe_id}]}
    try:
        created = capillary.add_customer(profile, settings.loyalty_type)
    except OrgRulesError as exc:
        return Check(where, name, FAIL, f"the org refuses it ({exc})",
                     "set LINECAP_UNKNOWN_USER_STRATEGY=park (or CAPILLARY_LOYALTY_TYPE="
                     "loyalty if the org registers loyalty customers by externalId)")
    except LinecapError as exc:
        return Check(where, name, FAIL, str(exc), "check the Capillary set-up first")
    return Check(where, name, PASS, f"accepted (test customer {created.customer_id}, "
                                    f"externalId {probe_id}: remove it in Member Care)")


def access_token(line_api: LineApiClient, channel: LineChannel) -> Check:
    where, name = _where(channel), "access token"
    try:
        info = line_api.bot_info(channel)
    except CredentialsError:
        return Check(where, name, FAIL, "LINE refused the channel access token",
                     f"issue a long-lived channel access token in the {CONSOLE} tab and put it "
                     "in access_token of this channel in LINE_CHANNELS")
    except TransientError as exc:
        return Check(where, name, FAIL, f"cannot reach the LINE API ({exc})",
                     "check LINE_API_BASE_URL (https://api.line.me) and the network")
    except LinecapError as exc:
        return Check(where, name, FAIL, str(exc), f"check the channel in the {CONSOLE} tab")
    return Check(where, name, PASS,
                 f"bot {info.get('displayName', '?')} ({info.get('basicId', '?')})")


def webhook_endpoint(line_api: LineApiClient, channel: LineChannel,
                     expected_url: str | None) -> Check:
    where, name = _where(channel), "webhook endpoint"
    fix = (f"linecap setup webhook --channel {channel.channel_id} --url "
           f"{expected_url or '<public https base URL>/webhooks/line/' + channel.channel_id}")
    try:
        endpoint = line_api.webhook_endpoint(channel)
    except LinecapError as exc:
        return Check(where, name, FAIL, f"cannot read it ({exc})", "fix the access token first")
    if endpoint is None or not endpoint.get("endpoint"):
        return Check(where, name, FAIL, "not set", fix)
    url = str(endpoint["endpoint"])
    if expected_url and url != expected_url:
        return Check(where, name, FAIL, f"points at {url}, not {expected_url}", fix)
    if endpoint.get("active") is False:
        return Check(where, name, FAIL, f"{url} is set but webhooks are off",
                     f"turn on 'Use webhook' in the {CONSOLE} tab")
    return Check(where, name, PASS, url)


def webhook_reachable(line_api: LineApiClient, channel: LineChannel, endpoint_check: Check,
                      url: str | None = None) -> Check:
    """LINE's own test request, to `url` when given (a URL just set may not show yet)."""
    where, name = _where(channel), "webhook reachable"
    if not endpoint_check.ok:
        return Check(where, name, FAIL, "not tested: the webhook endpoint check failed",
                     "fix the webhook endpoint first")
    try:
        result = line_api.test_webhook(channel, url)
    except LineRateLimited:
        return Check(where, name, WARN, "not tested: LINE's webhook test allows 60 calls an "
                                        "hour per channel and they are used up",
                     "try again within the hour")
    except LinecapError as exc:
        return Check(where, name, FAIL, f"LINE could not run the test ({exc})",
                     "fix the access token first")
    status = _int(result.get("statusCode"))
    if result.get("success"):
        return Check(where, name, PASS, f"LINE got HTTP {status}")
    if status <= 0:
        detail = f"nothing answered LINE's request ({result.get('reason', '?')})"
    else:
        detail = f"LINE's test got HTTP {status}: {result.get('reason', '?')} " \
                 f"{result.get('detail', '')}".strip()
    return Check(where, name, FAIL, detail, _reachability_fix(str(result.get("reason")), status))


def redelivery(channel: LineChannel) -> Check:
    """LINE's redelivery is off by default and no API reads it: a reminder, every time."""
    return Check(_where(channel), "webhook redelivery", WARN,
                 "cannot be read through LINE's API; it is off unless someone turned it on, and "
                 "without it every 503 during an outage loses those events",
                 f"turn on 'Use webhook redelivery' in the {CONSOLE} tab")


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
    if status > 0:
        return "see the web process's log for this request"
    return "make the receiver reachable from the internet over HTTPS (is it running?)"


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _where(channel: LineChannel) -> str:
    return f"channel {channel.name} ({channel.channel_id})"
