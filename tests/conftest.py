"""Shared test set-up.

pytest-jupyter's plugin runs ``async def`` tests on a fresh event loop and provides the
``jp_*`` server fixtures; every layer's tests use it so there is one async runner.
"""

from collections.abc import Iterator

import pytest
from peers.openai_server import OpenAIServer

# tests.browser_lab: the browser tests' `lab` and `browser` fixtures.
pytest_plugins = ["pytest_jupyter.jupyter_server", "tests.browser_lab"]


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A loopback OpenAI-compatible endpoint on a free port (``.url``), scripted per request."""
    with OpenAIServer() as server:
        yield server
