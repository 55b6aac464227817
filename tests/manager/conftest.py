"""Shared set-up of the manager tests.

pytest-jupyter runs the ``async def`` tests but has no async fixtures, so the fixtures here
are sync: they hand out a configuration and a factory of async context managers that each
test enters itself (``async with open_manager() as mgr``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from nbsession.manager import ManagerConfig, SessionManager
from nbsession.store import Store

OpenManager = Callable[..., AbstractAsyncContextManager[SessionManager]]


@pytest.fixture
def manager_config(tmp_path: Path) -> ManagerConfig:
    """A manager on a real SQLite file, with its own (empty) agents directory."""
    (tmp_path / "agents").mkdir()
    return ManagerConfig(
        db_path=str(tmp_path / "s.db"),
        agents_dir=str(tmp_path / "agents"),
        working_dir=str(tmp_path),
    )


@pytest.fixture
def agents_dir(manager_config: ManagerConfig) -> Path:
    assert manager_config.agents_dir is not None
    return Path(manager_config.agents_dir)


@pytest.fixture
def open_manager(manager_config: ManagerConfig) -> OpenManager:
    """``open_manager()`` starts a manager on the test's database and shuts it down after.

    Entering it twice (one after the other) reopens the same file, as a restart would;
    ``store=`` swaps in another backend (a ``MemoryStore``); keyword arguments override
    fields of the configuration (``db_path=``, ``steer_capacity=``...).
    """

    @asynccontextmanager
    async def _open(
        *, store: Store | None = None, **overrides: Any
    ) -> AsyncIterator[SessionManager]:
        mgr = SessionManager(dataclasses.replace(manager_config, **overrides), store=store)
        await mgr.start()
        try:
            yield mgr
        finally:
            await mgr.shutdown()

    return _open
