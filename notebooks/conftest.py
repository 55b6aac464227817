"""How the suite runs the example notebooks: nbval, against a server started here.

``pytest`` collects ``notebooks/*.ipynb`` with ``--nbval-lax`` (see pyproject): every cell
must run without an error, and the cells tagged ``nbval-check-output`` must print what the
notebook has stored. Before the first notebook's kernel starts, one ``jupyter nbsession``
server is started on a temporary root and store, and the kernels find it the way the SDK's
``connect()`` documents: ``NBSESSION_URL`` and ``NBSESSION_TOKEN`` in their environment.
Model keys are left out of a kernel's environment, so every notebook runs as on a fresh
machine with no key (the cells that need one say so and skip themselves).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
# What the notebooks write next to themselves; exported sessions are records, not examples.
collect_ignore_glob = ["exported/*", "*/exported/*"]
_KEY_SUFFIXES = ("_API_KEY", "_BEARER_TOKEN_BEDROCK")
_STARTUP_TIMEOUT = 60.0


class NotebookServer:
    """A ``jupyter nbsession`` process of its own home, port and token, started on demand."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.home: Path | None = None
        self.url = ""
        self.token = secrets.token_hex(16)

    def ensure_started(self) -> None:
        if self.process is not None:
            return
        self.home = Path(tempfile.mkdtemp(prefix="nbsession-notebooks-"))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTER_", "NBSESSION_")) and not key.endswith(_KEY_SUFFIXES)
        }
        env.update(
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
        )
        (self.home / "root").mkdir()
        command = [
            str(Path(sys.executable).with_name("jupyter-nbsession")),
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.home / 'root'}",
            f"--NBSessionApp.db_path={self.home / 'sessions.db'}",
            "--NBSessionApp.title_model=off",
        ]
        with (self.home / "server.log").open("wb") as log:  # the child keeps its own handle
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/"
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while True:  # polling for start-up only, bounded by the deadline
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter nbsession exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}nbsession/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"jupyter nbsession did not start:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        assert self.home is not None
        return (self.home / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)


_server = NotebookServer()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Around the set-up that starts a notebook's kernel: the server's address in the
    environment the kernel inherits, model keys out of it."""
    _server.ensure_started()
    hidden = {key: os.environ.pop(key) for key in list(os.environ) if key.endswith(_KEY_SUFFIXES)}
    before = {key: os.environ.get(key) for key in ("NBSESSION_URL", "NBSESSION_TOKEN")}
    os.environ.update(NBSESSION_URL=_server.url, NBSESSION_TOKEN=_server.token)
    try:
        yield
    finally:
        os.environ.update(hidden)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pytest_sessionfinish(session: pytest.Session) -> None:
    _server.stop()
