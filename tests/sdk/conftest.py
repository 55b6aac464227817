"""One real ``jupyter server`` (kernels included) for the SDK tests, and clients of it.

The server runs with Jupyter's directories in a temporary home, so its runtime file
(``jpserver-<pid>.json``) and the kernels it starts are this test run's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import nbsession
from tests.server.test_live_server import EXT_TOKEN, JUPYTER, SERVER_TOKEN, Server, start

__all__ = ["EXT_TOKEN", "SERVER_TOKEN"]


@pytest.fixture(scope="session")
def sdk_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sdk")


@pytest.fixture(scope="session")
def live(sdk_home: Path) -> Iterator[Server]:
    running = start(sdk_home, [JUPYTER, "server"], name="sdk-server")
    yield running
    running.stop()


@pytest.fixture
def client(live: Server) -> Iterator[nbsession.Client]:
    with nbsession.connect(live.url, EXT_TOKEN) as connected:
        yield connected
