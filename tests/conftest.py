"""Shared test set-up.

pytest-jupyter's plugin runs ``async def`` tests on a fresh event loop and provides the
``jp_*`` server fixtures; every layer's tests use it so there is one async runner.
"""

pytest_plugins = ["pytest_jupyter.jupyter_server"]
