"""Reading a customer document (a lookup's answer): its profiles per source and account, and
the identifiers they hold. Source names compare in upper case and identifier types without
regard to case, as Capillary accepts them either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Document = dict[str, Any]


def profiles(customer: Document | None, source: str | None = None,
             account_id: str | None = None) -> Iterator[Document]:
    """The customer's profiles, of one source (and source account) when given."""
    for profile in (customer or {}).get("profiles") or []:
        if not isinstance(profile, dict):
            continue
        if source is not None and str(profile.get("source", "")).upper() != source.upper():
            continue
        if account_id is not None and str(profile.get("accountId", "")) != account_id:
            continue
        yield profile


def source_profile(customer: Document | None, source: str,
                   account_id: str | None = None) -> Document | None:
    """The customer's profile in that source (and source account, for LINE), if any."""
    return next(profiles(customer, source, account_id), None)


def identifiers(customer: Document | None, source: str | None = None,
                account_id: str | None = None) -> Iterator[tuple[str, str]]:
    """(type in lower case, value) of every identifier on those profiles."""
    for profile in profiles(customer, source, account_id):
        for ident in profile.get("identifiers") or []:
            if isinstance(ident, dict) and ident.get("value") is not None:
                yield str(ident.get("type", "")).lower(), str(ident["value"])


def identifier_value(profile: Document | None, name: str) -> str | None:
    """The value of the profile's identifier of that type, if it has one."""
    for kind, value in identifiers({"profiles": [profile]} if profile else None):
        if kind == name.lower() and value:
            return value
    return None


def holds(customer: Document | None, source: str, name: str, value: str) -> bool:
    """True when the customer's profile in that source holds that identifier."""
    return (name.lower(), value) in set(identifiers(customer, source))
