"""Typed, validated settings read from the environment."""

from config.settings import (
    CapillaryAuth,
    ConfigError,
    LineChannel,
    Settings,
    load_settings,
    settings_or_exit,
)

__all__ = [
    "CapillaryAuth", "ConfigError", "LineChannel", "Settings", "load_settings", "settings_or_exit",
]
