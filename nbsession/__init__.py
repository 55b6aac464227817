"""nbsession: a Jupyter-native home for LLM agent sessions.

Importing the package is cheap: the engine, the server extension and the SDK load on demand.
"""

from __future__ import annotations

__version__ = "0.1.0"


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Where jupyter-server finds the extension (enabled by the shipped config file)."""
    from .server.app import NBSessionApp

    return [{"module": "nbsession.server.app", "app": NBSessionApp}]
