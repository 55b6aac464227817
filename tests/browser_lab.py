"""JupyterLab in Debian's chromium, for the browser tests (pytest marker ``browser``).

Loaded as a pytest plugin by tests/conftest.py: its fixtures ``lab`` (one JupyterLab per test
module) and ``browser`` (a fresh chromium per test) serve every browser test module.
``start_lab`` runs ``jupyter lab`` on a loopback port with its own config, data, settings and
workspaces, loading the labextension built in this tree (an editable install holds a copy
made at install time, which may be older); ``chromium`` launches the system's browser
through Playwright (no ``playwright install``).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO = Path(__file__).parents[1]
BUILT_EXTENSION = REPO / "nbsession" / "labextension"
DOCS = REPO / "docs"
TIMEOUT_MS = 60_000


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    api: httpx.Client
    # The server's agents directory (empty at start: the bundled `default` agent is served).
    agents: Path


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``condition`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def start_lab(tmp_path: Path) -> Iterator[Lab]:
    assert (BUILT_EXTENSION / "package.json").exists(), (
        "the labextension is not built: `pip install -e .` or `npm run build` in jupyter_extension/"
    )
    token = secrets.token_hex(16)
    port = _free_port()
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_text("hello from the browser test\n")
    agents = tmp_path / "agents"
    agents.mkdir()
    extensions = tmp_path / "labextensions"
    extensions.mkdir()
    (extensions / "nbsession").symlink_to(BUILT_EXTENSION, target_is_directory=True)
    settings = tmp_path / "lab-settings"
    settings.mkdir()
    # No news or update toasts over the page.
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:notification": {
                    "fetchNews": "false",
                    "checkForUpdates": False,
                }
            }
        )
    )
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    log_path = tmp_path / "lab.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            f"--port={port}",
            "--ip=127.0.0.1",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={token}",
            f"--NBSessionApp.db_path={tmp_path / 'sessions.db'}",
            f"--NBSessionApp.agents_dir={agents}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.extra_labextensions_path={extensions}",
            f"--LabApp.app_settings_dir={settings}",
            f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    api = httpx.Client(
        base_url=f"{url}nbsession", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    def ready() -> bool:
        assert server.poll() is None, log_path.read_text()
        try:
            return api.get("/api/ping").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, "jupyter lab to start", timeout=60)
        yield Lab(url=url, token=token, root=root, api=api, agents=agents)
    finally:
        api.close()
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Chromium for one test: Playwright's sync API holds an event loop while it runs, which
    must be gone before pytest-jupyter closes each test's loop."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "chromium is missing: apt-get install -y chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One JupyterLab for the test module (its tests make their own sessions and files)."""
    with start_lab(tmp_path_factory.mktemp("lab")) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


KERNEL_IDLE = (
    "() => { const k = window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel;"
    " return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"
)
"""True in the page once the current notebook's kernel is connected and idle."""


def write_notebook(path: Path, sources: list[str]) -> None:
    """A notebook of code cells with ``sources`` at ``path``, on the python3 kernel (a notebook
    without a kernelspec makes JupyterLab ask which kernel to start)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)


def open_notebook(browser: Browser, lab: Lab, path: str) -> Page:
    """A fresh page on the notebook ``path`` of the lab's root, once its kernel is idle."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{lab.url}lab/tree/{path}?reset&token={lab.token}")
    expect(page.locator(".jp-NotebookPanel:visible")).to_be_visible(timeout=TIMEOUT_MS)
    page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS)
    return page


def run_all_cells(page: Page) -> None:
    """Start every cell of the page's notebook; not awaited (the command's promise settles only
    once the last cell has finished, and a cell may block)."""
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def start_detached_turn(lab: Lab, session_id: str, prompt: str, agent: str = "default") -> None:
    """Start a turn of ``agent`` over REST that goes on after its run stream is closed."""
    body = {"messages": [{"role": "user", "content": prompt}]}
    url = f"/api/sessions/{session_id}/agent/{agent}"
    with lab.api.stream("POST", url, json=body, params={"detach": "true"}) as response:
        response.raise_for_status()
