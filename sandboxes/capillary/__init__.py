"""A model of Capillary's (InTouch) published V2 customer APIs, with org switches and faults.

Each rule cites the document it comes from (the `Capillary/api-documentation` repository's
`source/includes/_customer.md` and `source/index.html.md`, or linecap's reference summary);
what varies by org is a switch whose default is the strictest documented reading
(sandboxes/capillary/org.py). Run it with ``python -m sandboxes.capillary [--org lenient]``.
"""

from .config import SandboxConfig
from .factory import create_sandbox_app
from .org import LENIENT, STRICT, OrgRules

__all__ = ["LENIENT", "STRICT", "OrgRules", "SandboxConfig", "create_sandbox_app"]
