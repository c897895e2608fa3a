"""Each behaviour of Capillary or LINE that linecap relies on, named once, with its document.

A contract test checks one rule; when the real service and the sandbox disagree, its failure
names the rule and where the reading comes from, so the fix (in the sandbox and in linecap, or
in the reading) starts from the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    id: str
    text: str
    source: str

    def check(self, holds: bool, seen: Any) -> None:
        """Fail naming the rule when it does not hold; `seen` is what the service answered."""
        if not holds:
            raise AssertionError(f"{self.id}: {self.text}\n  source: {self.source}\n"
                                 f"  seen: {seen}")


CUSTOMER_MD = "Capillary/api-documentation source/includes/_customer.md"
INDEX_MD = "Capillary/api-documentation source/index.html.md"
REFERENCE = "shared/reference/capillary.md"
LINE_DOCS = "LINE Developers, Messaging API reference"
LINE_SPEC = "line/line-openapi messaging-api.yml"

# -- Capillary ---------------------------------------------------------------------------------
AUTH_BASIC = Rule("CAP-AUTH-BASIC", "Basic auth with the md5 of the till password is accepted; "
                  "a wrong password is 401", f"{REFERENCE} § Hosts and authentication")
LOOKUP_NOT_FOUND = Rule("CAP-LOOKUP-NOT-FOUND", "a lookup of an identifier nobody holds answers "
                        "8015 or 8065 in the envelope", f"{CUSTOMER_MD} § Fetch Customer ID")
LOOKUP_BY_LINE = Rule("CAP-LOOKUP-BY-LINE-ID", "a lookup by identifierName=line either works "
                      "or is refused with 8013 (linecap then finds LINE users by externalId)",
                      f"{CUSTOMER_MD} § Fetch Customer ID (line is not a listed name)")
LOOKUP_ACCOUNT = Rule("CAP-LOOKUP-ACCOUNT", "a LINE lookup without accountId is 8045 (or "
                      "8015); with an account the org does not have, 8011 (or 8015)",
                      f"{CUSTOMER_MD} § Fetch Customer ID; {REFERENCE} § Lookup")
ADD_INSTORE = Rule("CAP-ADD-INSTORE", "V2 add of an INSTORE profile with a mobile answers "
                   "createdId", f"{CUSTOMER_MD} § Register Customer")
ADD_SAME_SOURCE = Rule("CAP-ADD-SAME-SOURCE", "adding an identifier the same source already "
                       "holds is refused with 8006 (or 1014)",
                       f"{CUSTOMER_MD} § Register Customer; {REFERENCE} § Add customer")
ADD_COMBINES = Rule("CAP-ADD-COMBINES", "a LINE profile carrying the INSTORE customer's mobile "
                    "is attached to that customer: same createdId, warning 8050",
                    f"{CUSTOMER_MD} § Register Customer (8050 sample)")
LOOKUP_LINE_PROFILE = Rule("CAP-LOOKUP-LINE-PROFILE", "a LINE-source lookup by the externalId "
                           "of the LINE profile finds the customer and shows that profile",
                           f"{CUSTOMER_MD} § Lookup (customerDetails)")
FETCH_ALL = Rule("CAP-FETCH-ALL", "GET /v2/customers/{id}?source=ALL shows the INSTORE and the "
                 "LINE profile", f"{CUSTOMER_MD} § Fetch Customer Details (by User ID)")
EMBED_NESTED = Rule("CAP-EMBED-NESTED", "embed=subscriptions nests the status under "
                    "subscriptionInfo.subscriptions (channel, priority, type)",
                    f"{CUSTOMER_MD} § Fetch Customer Details, embed=subscriptions")
SUBSCRIPTION_WRITE = Rule("CAP-SUBSCRIPTION-WRITE", "POST …/subscriptions sets the LINE BULK "
                          "status of the account; GET …/subscriptions shows it at top level",
                          f"{CUSTOMER_MD} § Update / Get Subscription Details")
ORG_UNIT = Rule("CAP-ORG-UNIT", "a subscription update without orgUnitId is accepted, or refused "
                "with 403 'Field orgUnitId is mandatory' (linecap: CAPILLARY_ORG_UNIT_ID)",
                f"{REFERENCE} § Subscriptions (unconfirmed); {INDEX_MD} § HTTP Status Codes")
SAME_ACCOUNT_CLASH = Rule("CAP-CHANGE-ID-SAME-ACCOUNT", "adding to a customer an identifier "
                          "another customer holds in the same source account is refused "
                          "(8007/8008), not merged", f"{CUSTOMER_MD} § Update Customer "
                                                     "Identifiers, Error Codes")
MERGE_VICTIM = Rule("CAP-CHANGE-ID-MERGE", "adding to customer L's LINE profile an identifier "
                    "member C holds in INSTORE merges L into C (warning 8051): lookups then "
                    "find C", f"{CUSTOMER_MD} § Update Customer Identifiers: 'The new account "
                                "will be a victim account and the existing account is a survivor"
                                " account'")
MERGED_AWAY = Rule("CAP-MERGED-AWAY", "the merged-away customer's id answers 8069 (or 8015); "
                   "linecap resolves the LINE user again", f"{CUSTOMER_MD} § Fetch Customer "
                                                          "Details, Error Codes")
BULK = Rule("CAP-BULK", "POST /v2/customers/bulk takes an array of V2 add bodies and answers "
            "one element per item, in order (200 all succeeded, 201 some failed, 500 all "
            "failed)", f"{CUSTOMER_MD} § Associate Customer (batch); {INDEX_MD} § HTTP Status "
                       "Codes")
BULK_LIMIT = Rule("CAP-BULK-LIMIT", "a batch over the cluster's limit is refused with 1060",
                  f"{INDEX_MD} § HTTP Status Codes; {CUSTOMER_MD} § Status Codes")

# -- LINE --------------------------------------------------------------------------------------
LINE_REQUEST_ID = Rule("LINE-REQUEST-ID", "every response carries X-Line-Request-Id",
                       f"{LINE_DOCS}: 'Response headers'")
LINE_AUTH = Rule("LINE-AUTH", "GET /v2/bot/info answers the bot with a valid token and 401 "
                 "with a wrong one", f"{LINE_SPEC} /v2/bot/info")
LINE_PROFILE = Rule("LINE-PROFILE-NOT-FRIEND", "the profile of a user who is not a friend is "
                    "404", f"{LINE_DOCS}: Get profile")
LINE_ENDPOINT_GET = Rule("LINE-WEBHOOK-ENDPOINT-GET", "GET the webhook endpoint answers "
                         "{endpoint, active}, or 404 when none is set",
                         f"{LINE_SPEC} /v2/bot/channel/webhook/endpoint")
LINE_ENDPOINT_HTTPS = Rule("LINE-WEBHOOK-ENDPOINT-HTTPS", "setting an http:// endpoint is "
                           "refused with 400", f"{LINE_DOCS}: Set webhook endpoint URL "
                                               "(HTTPS only)")
LINE_FOLLOWERS = Rule("LINE-FOLLOWERS", "followers/ids answers userIds (and next), or 403 for "
                      "accounts that are not verified or premium",
                      f"{LINE_SPEC} /v2/bot/followers/ids")
LINE_FOLLOWERS_CURSOR = Rule("LINE-FOLLOWERS-CURSOR", "a start cursor LINE did not issue (or "
                             "that expired: next lives 24 hours) is refused with 400",
                             f"{LINE_SPEC} /v2/bot/followers/ids (start, next)")
LINE_WEBHOOK_TEST = Rule("LINE-WEBHOOK-TEST", "testing an endpoint nothing answers gives "
                         "success false with statusCode 0 or below",
                         f"{LINE_SPEC} /v2/bot/channel/webhook/test")
