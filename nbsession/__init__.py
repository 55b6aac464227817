"""nbsession: a Jupyter-native home for LLM agent sessions.

Importing the package is cheap: the engine, the server extension and the SDK load on demand.
``nbsession.connect()`` / ``nbsession.local()`` and the SDK's classes are found here on first
use (see ``nbsession.sdk``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_SDK_NAMES = frozenset(
    {
        "AsyncClient",
        "AsyncSession",
        "Client",
        "Event",
        "Session",
        "TurnResult",
        "connect",
        "local",
    }
)

if TYPE_CHECKING:
    from .sdk import AsyncClient as AsyncClient
    from .sdk import AsyncSession as AsyncSession
    from .sdk import Client as Client
    from .sdk import Event as Event
    from .sdk import Session as Session
    from .sdk import TurnResult as TurnResult
    from .sdk import connect as connect
    from .sdk import local as local


def __getattr__(name: str) -> Any:
    """The SDK's public names, imported when first used (``import nbsession`` stays light)."""
    if name in _SDK_NAMES:
        from . import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'nbsession' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SDK_NAMES])


def notebook_pane_factory() -> Any:
    """The pane factory for a notebook kernel with the widgets installed, else None.

    ``session.run()`` asks for it when no factory was registered: in an IPython kernel the
    turn gets a live pane (``nbsession.widgets.live``); in a script, a terminal IPython or
    without ipywidgets/anywidget, the plain SDK output. Nothing is imported unless needed.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if getattr(shell, "kernel", None) is None:
        return None
    try:
        from .widgets.live import show_turn
    except ImportError:
        return None
    return show_turn


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbsession``: the ``%%agent`` cell magic."""
    from .widgets.magic import load

    load(ipython)


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """Where jupyter-server finds the extension (enabled by the shipped config file)."""
    from .server.app import NBSessionApp

    return [{"module": "nbsession.server.app", "app": NBSessionApp}]
