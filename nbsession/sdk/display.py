"""The seam between ``session.run()`` and whatever can show a turn live (the widgets layer).

A display layer registers a *pane factory*. ``run()`` calls it, in the caller's thread (so a
notebook display lands in the running cell), with the session and the just-started turn
(``Session``/``Turn`` from sync code, ``AsyncSession``/``AsyncTurn`` from async code). The
factory returns a pane object, or None when it cannot show one here (no front end, say). While
a pane is shown, ``run()`` leaves approvals and questions to it; without one it logs a hint
saying what the turn waits for and how to answer.

When ``run()`` waited for the turn, it then calls the pane's ``finish()`` (if it has one) in
the caller's thread, so whatever the pane records about the ended turn lands in that cell.

Until a factory is set, a kernel's default applies: ``nbsession.notebook_pane_factory`` (the
widgets, imported on the first turn, so ``import nbsession`` stays light).

The pane follows the turn itself: ``turn.session`` and ``turn.start_seq`` say where its events
are (``/events`` after that seq, or ``session.events(since=...)`` in the kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PaneFactory = Callable[[Any, Any], Any]

_UNSET: Any = object()
_factory: PaneFactory | None = _UNSET


def set_pane_factory(factory: PaneFactory | None) -> PaneFactory | None:
    """Register (or with None remove) the pane factory; returns the previous one."""
    global _factory
    previous, _factory = get_pane_factory(), factory
    return previous


def get_pane_factory() -> PaneFactory | None:
    """The registered factory, else the notebook default when this process is a kernel."""
    if _factory is not _UNSET:
        return _factory
    from .. import notebook_pane_factory

    return notebook_pane_factory()


def open_pane(session: Any, turn: Any) -> Any:
    """The pane the registered factory shows for ``turn``, or None."""
    factory = get_pane_factory()
    return factory(session, turn) if factory is not None else None


def finish_pane(pane: Any) -> None:
    """Tell ``pane`` its turn is over, from the thread that ran the turn."""
    finish = getattr(pane, "finish", None)
    if finish is not None:
        finish()
