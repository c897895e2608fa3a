"""Build the sandbox Flask app; one app = one independent fake Capillary."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask

from .config import SandboxConfig
from .control import control
from .pipeline import install_pipeline
from .routes import api
from .state import EXTENSION_KEY, SandboxState


def create_sandbox_app(
    config: SandboxConfig | None = None, *, clock: Callable[[], float] | None = None
) -> Flask:
    """A Flask app imitating Capillary; ``clock`` (seconds) is injectable for tests."""
    app = Flask("linecap_capillary_sandbox")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = SandboxState(config or SandboxConfig(), clock or time.time)
    install_pipeline(app)
    app.register_blueprint(api)
    app.register_blueprint(control)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
