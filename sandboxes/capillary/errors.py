"""Capillary's error envelope and the codes the sandbox answers with, each with its document.

Documents are cited by file and section: `_customer.md` and `index.html.md` are in the
`Capillary/api-documentation` repository (`source/includes/_customer.md`,
`source/index.html.md`); "reference" is linecap's summary of them and of docs.capillarytech.com
(shared/reference/capillary.md). Capillary's HTTP status is not a reliable signal (a 400 or
even a 200 can carry `errors`), so the meaning is in the envelope's codes, as Capillary does.
"""

from __future__ import annotations

from typing import Any

# -- invalid input (_customer.md § Status Codes) -------------------------------------------
INVALID_INPUT = 400  # "Input is invalid. Please check request parameters or input json"
MOBILE_REQUIRED = 1006  # "Unable to register. Mobile number is required."
NO_PRIMARY_IDENTIFIER = 1007  # "No valid primary identifier mobile number, email ID, or
#                               external ID passed."
EMAIL_REQUIRED = 1039  # "Unable to register. Email ID is required."
EXTERNAL_ID_REQUIRED = 1043  # "Unable to register. Customer's external id is required."
NON_LOYALTY_NEEDS_MOBILE_OR_EMAIL = 1045  # "No valid identifier (mobile/email) passed for
#                                           non-loyalty customer."
LOYALTY_TO_NON_LOYALTY = 1046  # "Conversion of loyalty customer to non-loyalty is not allowed."
BATCH_LIMIT = 1060  # "Batch limit exceeded." (also index.html.md § HTTP Status Codes)
INVALID_CHANNEL = 1101  # "Invalid channel type."
INVALID_PRIORITY = 1102  # "Invalid priority type."
INVALID_IDENTIFIER = 1104  # "Invalid identifier or no identifier passed."
INVALID_SUBSCRIPTION_STATUS = 1106  # "Invalid subscription status passed."
CHANNEL_NOT_CONFIGURED = 1109  # "Unable to add, update or fetch subscription details."

# -- sources, accounts, identifiers (_customer.md § Fetch Customer ID, § Fetch Customer
#    Details, § Update Customer Identifiers) -----------------------------------------------
INVALID_SOURCE_ACCOUNT = 8011  # "Invalid source account passed."
INVALID_SOURCE = 8012  # "Invalid source passed."
INVALID_IDENTIFIER_NAME = 8013  # "Customer identifier is invalid. Also check if the parameter
#                                 identifierName is passed correctly."
NOT_FOUND = 8015  # "No customer found with the given identifier."
ACCOUNT_ID_MISSING = 8045  # "Account id is not passed."
NOT_FOUND_IN_SOURCE = 8065  # "No customer found in the given source with the given
#                             identifier."
MERGED_AWAY = 8069  # "The customer is merged into another account."

# -- identities (reference § Add customer; _customer.md § Update Customer Identifiers) ----
ALREADY_IN_SOURCE = 8006  # reference: "Customer already exists for same source"
IDENTIFIER_IN_SAME_SOURCE = 8008  # "The new identifier already exists in the same source."
CUSTOMER_ID_INVALID = 8009  # "Unable to identify the customer. Customer id is invalid."
CANNOT_MERGE = 8053  # "Each identifier is registered with a different customer in other
#                      source. Unable to merge accounts."
EXTERNAL_ID_INVALID = 8064  # "External id validation failed."

# -- warnings (the call succeeded) -----------------------------------------------------------
COMBINED = 8050  # _customer.md § Register Customer: "Same Customer found in other
#                  sources,Combining"
MERGED_INTO = 8051  # _customer.md § Update Customer Identifiers: "Same identifier found in
#                     other source. Merging into the account with user id X."

# index.html.md § HTTP Status Codes: 403 "V2 is not enabled for the org. Mandatory field is
# missing. Field {x} is mandatory."
MANDATORY_FIELD_STATUS = 403


class ApiError(Exception):
    """A Capillary error code; ``http_status=None`` means "use the configured envelope status"."""

    def __init__(self, code: int, message: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


def invalid_input(detail: str) -> ApiError:
    """Malformed request: HTTP 400, like Capillary's validation layer."""
    return ApiError(INVALID_INPUT, f"Input is invalid: {detail}", 400)


def invalid_identifier(detail: str) -> ApiError:
    """Identifier of unknown type or malformed value: HTTP 400."""
    return ApiError(INVALID_IDENTIFIER, f"Invalid identifier or no identifier passed: {detail}",
                    400)


def invalid_source(source: object) -> ApiError:
    return ApiError(INVALID_SOURCE, f"Invalid source passed: {source}", 400)


def mandatory_field(name: str) -> ApiError:
    return ApiError(MANDATORY_FIELD_STATUS,
                    f"Mandatory field is missing. Field {name} is mandatory.",
                    MANDATORY_FIELD_STATUS)


def not_found() -> ApiError:
    return ApiError(NOT_FOUND, "No customer found with the given identifier.")


def error_item(code: int, message: str) -> dict[str, Any]:
    """One entry of an ``errors`` array."""
    return {"status": False, "code": code, "message": message}


def warning_item(code: int, message: str) -> dict[str, Any]:
    """One entry of a ``warnings`` array; _customer.md's samples give warnings status false."""
    return {"status": False, "code": code, "message": message}


def error_body(code: int, message: str, *, with_warnings: bool = False) -> dict[str, Any]:
    """The error envelope; transport-level errors (401/429/5xx) carry no ``warnings``."""
    body: dict[str, Any] = {"errors": [error_item(code, message)]}
    if with_warnings:
        body["warnings"] = []
    return body
