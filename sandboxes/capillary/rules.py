"""The org's registration rules (sandboxes.capillary.org), applied to a registration before it
reaches the store, so a refused one changes nothing. Codes: _customer.md § Status Codes.
"""

from __future__ import annotations

from .errors import (
    EMAIL_REQUIRED,
    EXTERNAL_ID_INVALID,
    EXTERNAL_ID_REQUIRED,
    MOBILE_REQUIRED,
    NO_PRIMARY_IDENTIFIER,
    NON_LOYALTY_NEEDS_MOBILE_OR_EMAIL,
    ApiError,
    invalid_input,
)
from .models import Profile
from .org import OrgRules
from .validation import Identifier

LOYALTY_TYPES = ("loyalty", "non_loyalty")  # § Register Customer: "loyaltyType*"
_MISSING = {
    "mobile": (MOBILE_REQUIRED, "Unable to register. Mobile number is required."),
    "email": (EMAIL_REQUIRED, "Unable to register. Email ID is required."),
    "externalId": (EXTERNAL_ID_REQUIRED,
                   "Unable to register. Customer's external id is required."),
}


def check_registration(profiles: list[Profile], loyalty_type: str, rules: OrgRules) -> None:
    """Raise the org's refusal of this registration, if it has one."""
    if loyalty_type not in LOYALTY_TYPES:
        raise invalid_input("loyaltyInfo.loyaltyType must be loyalty or non_loyalty")
    for profile in profiles:
        kinds = {kind for kind, _ in profile.identifiers}
        for required in rules.required_identifiers:
            if required not in kinds:
                code, message = _MISSING.get(required, (
                    NO_PRIMARY_IDENTIFIER, "Unable to register customer. No valid primary "
                                           "identifier mobile number, email ID, or external "
                                           "ID passed."))
                raise ApiError(code, message)
        if (loyalty_type == "non_loyalty" and rules.non_loyalty_needs_mobile_or_email
                and not kinds & {"mobile", "email"}):
            raise ApiError(NON_LOYALTY_NEEDS_MOBILE_OR_EMAIL, "No valid identifier "
                           "(mobile/email) passed for non-loyalty customer.")
        check_external_ids(profile.identifiers, rules)


def check_external_ids(identifiers: list[Identifier], rules: OrgRules) -> None:
    """8064 for an externalId the org's format refuses (also on changeIdentifier)."""
    for kind, value in identifiers:
        if kind == "externalId" and not rules.external_id_ok(value):
            raise ApiError(EXTERNAL_ID_INVALID, "External id validation failed.")
