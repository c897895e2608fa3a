"""Bearer API keys for the HTTP endpoints that are not LINE's (ops, server-to-server)."""

from __future__ import annotations

import dataclasses
import functools
import hmac
from collections.abc import Callable

from flask import current_app, jsonify, request

from config import Settings


def require_api_key(setting: str) -> Callable:
    """Refuse the request unless `Authorization: Bearer <key>` is one of settings.<setting>."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            keys = getattr(current_app.config["LINECAP_SETTINGS"], setting)
            if not keys:
                return jsonify({"message": "this endpoint is disabled: no keys are set "
                                           f"({_variable(setting)})"}), 403
            header = request.headers.get("Authorization", "")
            given = header.removeprefix("Bearer ").strip().encode()
            if not header.startswith("Bearer ") or not any(
                hmac.compare_digest(given, key.encode()) for key in keys
            ):
                return jsonify({"message": "missing or invalid API key"}), 401
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _variable(setting: str) -> str:
    """The environment variable of a Settings field, for the operator to set."""
    return next(spec.metadata["env"] for spec in dataclasses.fields(Settings)
                if spec.name == setting)
