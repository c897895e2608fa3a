"""Ids made from personal data (a mobile, a LINE user id) that do not give it away.

A link or import-row id must be the same for the same pairing (it is the task id, the dedup key
and the dead letter's id), and it is logged and shown in Flower. An unkeyed hash of a mobile is
reversed by trying every mobile number (a second or so); an HMAC under a key derived from the
channel secret is not, for anyone without that secret. Rotating the channel secret changes the
ids, which costs at most one repeated, idempotent run of a pairing sent again.
"""

from __future__ import annotations

import hashlib
import hmac

from config import LineChannel

_PURPOSE = b"linecap keyed ids v1"
_SEPARATOR = "\x1f"  # cannot occur in any part: channel ids, LINE ids, mobiles, numbers


def keyed_id(kind: str, channel: LineChannel, *parts: str) -> str:
    """`<kind>-` and 32 hex characters, the same for the same channel, kind and parts."""
    key = hmac.new(channel.channel_secret.encode(), _PURPOSE, hashlib.sha256).digest()
    message = _SEPARATOR.join((kind, channel.channel_id, *parts)).encode()
    return f"{kind}-{hmac.new(key, message, hashlib.sha256).hexdigest()[:32]}"
