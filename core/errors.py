"""The error classes that decide an event's fate: retry, dead-letter, or wait and come back.

Messages never carry credentials or request headers: they name the call and Capillary's codes.
"""

from __future__ import annotations


class LinecapError(Exception):
    """Base of every error linecap raises on purpose. `codes` are Capillary's envelope codes
    behind it, when it came from Capillary (callers word their advice from them)."""

    error_class = "error"
    codes: tuple[int, ...] = ()


class TransientError(LinecapError):
    """Worth retrying later: timeouts, connection errors, 5xx, 429."""

    error_class = "transient"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(LinecapError):
    """Retrying cannot help; the event goes to the dead-letter store."""

    error_class = "permanent"


class InvalidInputError(PermanentError):
    error_class = "invalid_input"


class ConfigurationError(PermanentError):
    """Wrong source account id, missing accountId, unknown channel: an operator must act."""

    error_class = "configuration"


class CredentialsError(PermanentError):
    """Capillary refused our credentials (after one token refresh)."""

    error_class = "credentials"


class IdentityConflictError(PermanentError):
    """INSTORE and LINE profiles ended on different customers, or an identifier is already
    someone else's in that source (8007/8008), or Capillary cannot merge (8053/8066/8067):
    a person must look."""

    error_class = "identity_conflict"


class OrgRulesError(PermanentError):
    """The org's registration rules refuse this registration (1045, 1046, 1006, 1007, 1039,
    1043, 8064, 8020): a setting of linecap's must change, and the message says which."""

    error_class = "org_rules"


class BatchTooLargeError(InvalidInputError):
    """A batch over the cluster's limit (1060): the caller sends smaller ones."""

    error_class = "batch_too_large"


class MergedAwayError(LinecapError):
    """The customer was merged into another (8069): forget the id and resolve again."""

    error_class = "merged_away"


class NotFoundError(LinecapError):
    """Capillary has no such customer (codes 8015, 8065, …): a normal answer, not a failure."""

    error_class = "not_found"


class AlreadyRegisteredError(LinecapError):
    """The identifier is already registered in that source: look it up and carry on."""

    error_class = "already_registered"


class ComeBackLater(LinecapError):
    """Not a failure: the shared rate budget or the user's lock is busy for a while."""

    error_class = "deferred"

    def __init__(self, message: str, wait_seconds: float) -> None:
        super().__init__(message)
        self.wait_seconds = wait_seconds
