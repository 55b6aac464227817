"""An exported session opened in JupyterLab (real server, Debian's chromium): its cells render
with their outputs, the Python kernel starts by itself, and no dialog (no "Select Kernel", no
widget or load error) appears.

Marked ``browser``: ``pytest -m "not browser"`` skips it where no chromium is installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser_lab import TIMEOUT_MS, Lab, chromium, start_lab

pytestmark = pytest.mark.browser


def _events(lab: Lab, session_id: str, since: int) -> Iterator[dict[str, Any]]:
    """The session's events after ``since``, as ``/events`` streams them."""
    headers = {"Last-Event-ID": str(since)}
    with lab.api.stream("GET", f"/api/sessions/{session_id}/events", headers=headers) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])


def _turn(lab: Lab, session_id: str, prompt: str, answer: dict[str, str] | None) -> None:
    """One detached turn; a tool approval it asks for gets ``answer`` over ``/resume``."""
    since = lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["last_event_seq"]
    body = {"messages": [{"role": "user", "content": prompt}]}
    url = f"/api/sessions/{session_id}/agent/default"
    with lab.api.stream("POST", url, json=body, params={"detach": "true"}) as response:
        response.raise_for_status()
    for event in _events(lab, session_id, since):
        if event["type"] == "tool_call_confirmation":
            assert answer is not None, "an approval nobody expected"
            lab.api.post(f"/api/sessions/{session_id}/resume", json=answer).raise_for_status()
        if event["type"] == "stream_stopped":
            return


def test_an_exported_session_opens_in_jupyterlab_without_errors(tmp_path: Path) -> None:
    with start_lab(tmp_path) as lab:
        created = lab.api.post("/api/sessions", json={"title": "Exported for reading"})
        session_id = created.json()["id"]
        _turn(lab, session_id, "what is 17*23", None)
        _turn(lab, session_id, "run `echo hello from bash`", {"confirmation": "approve"})
        reject = {"confirmation": "reject", "reason": "not today"}
        _turn(lab, session_id, "run `date`", reject)
        notebook = lab.api.get(f"/api/sessions/{session_id}/notebook").json()
        (lab.root / "exported.ipynb").write_text(json.dumps(notebook))

        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{lab.url}lab/tree/exported.ipynb?reset&token={lab.token}")
            panel = page.locator(".jp-NotebookPanel:visible")
            expect(panel).to_be_visible(timeout=TIMEOUT_MS)
            # The kernel named in the export starts by itself: no "Select Kernel" dialog.
            page.wait_for_function(
                "() => { const k = window.jupyterapp.shell.currentWidget?.sessionContext"
                "?.session?.kernel; return k && k.connectionStatus === 'connected'"
                " && k.status === 'idle'; }",
                timeout=TIMEOUT_MS,
            )
            cells = panel.locator(".jp-Cell")
            expect(cells.first).to_contain_text("Exported for reading")
            expect(panel).to_contain_text("echo hello from bash")
            expect(panel).to_contain_text("%%bash")
            outputs = panel.locator(".jp-OutputArea-output")
            expect(outputs.filter(has_text="hello from bash").first).to_be_visible()
            rejected = panel.locator(".jp-RenderedText[data-mime-type*='stderr']")
            expect(rejected.filter(has_text="ToolRejected")).to_have_count(1)
            expect(panel).to_contain_text("391")
            assert cells.count() == len(notebook["cells"])
            expect(page.locator(".jp-Dialog")).to_have_count(0)
            page.screenshot(path=str(tmp_path / "exported.png"))
