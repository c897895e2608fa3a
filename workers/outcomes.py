"""How a task run ended: one word shared by the tasks, the dedup records and the metrics."""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    # an event that was handled
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    IGNORED = "ignored"
    INVALID = "invalid"  # fields no LINE event has (a userId that is not a LINE id, …)
    PARKED = "parked"
    # work that could not be done, kept for an operator
    DEAD_LETTERED = "dead_lettered"
    # a run that did not end the work: it comes back, or it raised
    RETRIED = "retried"
    FAILED = "failed"
    # a multi-event request split into its events
    FANNED_OUT = "fanned_out"
    # accountLink events
    LINK_QUEUED = "link_queued"
    LINK_FAILED = "link_failed"
    LINK_REFUSED_UNKNOWN = "link_refused_unknown"
    LINK_REFUSED_USED = "link_refused_used"
    LINK_REFUSED_WRONG_USER = "link_refused_wrong_user"
    # link tasks
    LINKED = "linked"
    ALREADY_LINKED = "already_linked"
    # import rows
    REGISTERED = "registered"
    ALREADY_THERE = "already_there"
    # reconciliation steps (tasks.followers.runs)
    RUN_CONTINUED = "continued"
    RUN_PAUSED = "paused"
    RUN_FINISHED = "finished"
    RUN_REFUSED = "refused"
    RUN_NOT_DUE = "not_due"
    RUN_BUSY = "busy"
    RUN_SUPERSEDED = "superseded"

    @classmethod
    def link_refused(cls, nonce_status: str) -> Outcome:
        """The outcome of an accountLink whose nonce could not be claimed."""
        return cls(f"link_refused_{nonce_status}")
