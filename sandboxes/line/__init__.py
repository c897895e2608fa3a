"""A local imitation of the LINE platform: Messaging API endpoints plus signed webhooks.

Tests, the local run command and benchmarks point linecap at it instead of api.line.me, and
use ``/sandbox/*`` to play a user adding or blocking the account.
"""

from .config import LineSandboxConfig
from .factory import create_line_sandbox_app
from .signing import sign_body

__all__ = ["LineSandboxConfig", "create_line_sandbox_app", "sign_body"]
