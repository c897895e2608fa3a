"""Register many people with Capillary's batch API: their INSTORE profiles in batches, then the
LINE profiles of those who have an INSTORE customer, so the guide's order holds per person.

Each item's answer is its own: created, combined (8050), already there (8006: looked up), or
refused (that person's error, never the whole batch's; a call refused as a whole is each of its
people's). A batch over the cluster's limit (1060) is sent again as halves, and the smaller
size is remembered for a day.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from config import LineChannel
from core.errors import (
    AlreadyRegisteredError,
    BatchTooLargeError,
    IdentityConflictError,
    LinecapError,
    OrgRulesError,
    PermanentError,
)
from tasks.customers import (
    Identity,
    existing_instore,
    existing_line,
    instore_profile,
    line_profile,
    org_rules_advice,
    warn_dropped,
)
from workers.runtime import Runtime

log = logging.getLogger("linecap.batch_registration")


@dataclass(frozen=True)
class Person:
    user_id: str
    identity: Identity


@dataclass(frozen=True)
class Registered:
    customer_id: int
    new_line_profile: bool  # False: the LINE profile was already on this customer


Result = Registered | LinecapError


def register_people(runtime: Runtime, channel: LineChannel,
                    people: Sequence[Person]) -> dict[str, Result]:
    """Per LINE user: the one customer both profiles are on, or the error that stopped them."""
    results: dict[str, Result] = {}
    instore: dict[str, tuple[int, str]] = {}
    loyalty = runtime.settings.loyalty_type
    answers = _in_batches(runtime, [instore_profile(p.identity) for p in people],
                          [loyalty] * len(people))
    for person, (added, error) in zip(people, answers, strict=True):
        try:
            if added is not None:
                instore[person.user_id] = (added, loyalty)
            elif isinstance(error, AlreadyRegisteredError):
                instore[person.user_id] = existing_instore(runtime, person.identity)
            else:
                results[person.user_id] = _worded(error, person.identity)
        except LinecapError as exc:
            results[person.user_id] = exc
    with_instore = [p for p in people if p.user_id in instore]
    answers = _in_batches(
        runtime, [line_profile(runtime, channel, p.user_id, p.identity) for p in with_instore],
        [instore[p.user_id][1] for p in with_instore])
    for person, (added, error) in zip(with_instore, answers, strict=True):
        expected = instore[person.user_id][0]
        try:
            if added is not None:
                results[person.user_id] = _same(expected, added, True)
            elif isinstance(error, AlreadyRegisteredError):
                found = existing_line(runtime, channel, person.user_id)
                results[person.user_id] = _same(expected, found, False)
            else:
                results[person.user_id] = _worded(error, person.identity)
        except LinecapError as exc:
            results[person.user_id] = exc
    for user_id, result in results.items():
        if isinstance(result, Registered):
            runtime.state.cache_customer(channel.channel_id, user_id, result.customer_id)
    return results


def _same(instore_id: int, line_id: int, new: bool) -> Registered:
    if line_id != instore_id:
        raise IdentityConflictError(
            f"INSTORE profile is customer {instore_id} but LINE profile is customer {line_id}")
    return Registered(line_id, new)


def _worded(error: LinecapError | None, identity: Identity) -> LinecapError:
    if isinstance(error, OrgRulesError):
        worded = OrgRulesError(f"{error}: {org_rules_advice(error.codes, identity)}")
        worded.codes = error.codes
        return worded
    return error or LinecapError("no answer for this item")


def _in_batches(runtime: Runtime, profiles: list[dict[str, Any]],
                loyalties: list[str]) -> list[tuple[int | None, LinecapError | None]]:
    """(customer id, None) or (None, error) per profile, in order."""
    answers: list[tuple[int | None, LinecapError | None]] = []
    size = runtime.state.batch_limit() or runtime.settings.batch_size
    start = 0
    while start < len(profiles):
        chunk = slice(start, start + size)
        try:
            items = runtime.capillary.add_customers(profiles[chunk], loyalties[chunk])
        except BatchTooLargeError:
            if size == 1:
                raise
            size = max(1, size // 2)
            runtime.state.remember_batch_limit(size)
            log.warning("Capillary refused a batch as too large (1060); sending %d at a time",
                        size)
            continue
        except PermanentError as exc:  # the call refused as a whole: each item's refusal
            answers.extend((None, exc) for _ in profiles[chunk])
            start += size
            continue
        for item in items:
            if item.result is not None:
                warn_dropped(item.result)
                answers.append((item.result.customer_id, None))
            else:
                answers.append((None, item.error))
        start += size
    return answers
