"""Web2Chat email gateway: settings, reply tokens, store, HTTP API, CLI and composition root."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
