"""The seam between ``session.run()`` and whatever can show a turn live (the widgets layer).

A display layer registers a *pane factory*. ``run()`` calls it, in the caller's thread (so a
notebook display lands in the running cell), with the session and the just-started turn
(``Session``/``Turn`` from sync code, ``AsyncSession``/``AsyncTurn`` from async code). The
factory returns a pane object, or None when it cannot show one here (no front end, say). While
a pane is shown, ``run()`` leaves approvals and questions to it; without one it prints a hint
saying what the turn waits for and how to answer.

The pane follows the turn itself: ``turn.session`` and ``turn.start_seq`` say where its events
are (``/events`` after that seq, or ``session.events(since=...)`` in the kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PaneFactory = Callable[[Any, Any], Any]

_factory: PaneFactory | None = None


def set_pane_factory(factory: PaneFactory | None) -> PaneFactory | None:
    """Register (or with None remove) the pane factory; returns the previous one."""
    global _factory
    previous, _factory = _factory, factory
    return previous


def get_pane_factory() -> PaneFactory | None:
    return _factory


def open_pane(session: Any, turn: Any) -> Any:
    """The pane the registered factory shows for ``turn``, or None."""
    factory = _factory
    return factory(session, turn) if factory is not None else None
