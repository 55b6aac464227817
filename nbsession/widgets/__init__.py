"""Notebook widgets (needs the ``widgets`` extra: anywidget, ipywidgets).

The core never imports this package; it sits on top of the SDK.
"""

from .pane import EventPane

__all__ = ["EventPane"]
