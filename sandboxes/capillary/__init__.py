"""A local, honest imitation of Capillary (InTouch) v2 customer APIs, with fault injection.

Run it with ``python -m sandboxes.capillary``.
"""

from .config import SandboxConfig
from .factory import create_sandbox_app

__all__ = ["SandboxConfig", "create_sandbox_app"]
