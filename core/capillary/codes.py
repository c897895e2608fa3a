"""What each Capillary code means to linecap: the table behind every decision to retry, look
up, register, resolve again or dead-letter. Sources and the live confirmation status of each
row are in docs/CAPILLARY.md; the codes are from Capillary's V2 documents (_customer.md
§ Status Codes, § Update Customer Identifiers, index.html.md § HTTP Status Codes).
"""

from __future__ import annotations

# Nobody holds that identifier (there): register, or nothing to do.
NOT_FOUND = frozenset({8015, 8065, 1011, 1012, 816})
# The customer was merged into another: forget the cached id and resolve again.
MERGED_AWAY = frozenset({8069})
# The identifier is already registered in this source: look it up and carry on.
ALREADY_IN_SOURCE = frozenset({8006, 1014, 1032, 1033, 1016})
# Someone else holds the identifier in this source/account, or the accounts cannot merge.
IDENTITY_CONFLICT = frozenset({8007, 8008, 8053, 8066, 8067})
# Source, account, identifier name or channel configuration: an operator must act.
CONFIGURATION = frozenset({8011, 8012, 8013, 8045, 1101, 1109, 1110, 91022})
# The channel has no subscription set-up in InTouch (reference § Subscriptions).
CHANNEL_NOT_CONFIGURED = frozenset({1101, 1109, 1110, 91022})
# The org's registration rules refuse it: a linecap setting must change.
ORG_RULES = frozenset({1045, 1046, 1006, 1007, 1039, 1043, 8064, 8020})
# The batch holds more items than the cluster takes in one call: send halves.
BATCH_TOO_LARGE = frozenset({1060})
# Warnings that still mean success.
COMBINED = 8050  # the profile was attached to the customer holding the shared identifier
MERGED_INTO = 8051  # changeIdentifier merged the customer in the path into another
IDENTIFIER_DROPPED = 91007  # "{x} already exists for some other user": registered without it
# HTTP statuses that mean "try again later" (index.html.md § HTTP Status Codes).
TRANSIENT_STATUSES = frozenset({429, 461, 521})

LOOKUP_NAME_REFUSED = 8013  # the org does not look customers up by that identifierName
