"""Notebooks in JupyterLab (real server, Debian's chromium).

- The README's main job: ``notebooks/quickstart.ipynb`` runs top to bottom in JupyterLab's own
  kernel, which finds the server by itself (no environment variables, unlike the nbval run),
  with its panes rendered and no error output.
- An exported session: its cells render with their outputs, the Python kernel starts by
  itself, and no dialog (no "Select Kernel", no widget or load error) appears.

Marked ``browser``: ``pytest -m "not browser"`` skips it where no chromium is installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser_lab import KERNEL_IDLE, REPO, Lab, open_notebook, run_all_cells, wait_for

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


def test_the_quickstart_runs_in_jupyterlab(lab: Lab, browser: Browser, tmp_path: Path) -> None:
    (lab.root / "quickstart.ipynb").write_bytes((REPO / "notebooks/quickstart.ipynb").read_bytes())
    page = open_notebook(browser, lab, "quickstart.ipynb")
    run_all_cells(page)
    count = len(json.loads((lab.root / "quickstart.ipynb").read_text())["cells"])
    code = (
        "window.jupyterapp.shell.currentWidget.content.widgets.filter(c => c.model.type === 'code')"
    )

    def finished() -> bool:
        counts = page.evaluate(f"() => {code}.map(c => c.model.executionCount)")
        return None not in counts and page.evaluate(KERNEL_IDLE)

    wait_for(finished, "every cell of the quickstart to run", timeout=180)
    errors = page.evaluate(
        f"() => {code}.flatMap(c => c.model.sharedModel.outputs"
        ".filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue))"
    )
    assert errors == []
    panel = page.locator(".jp-NotebookPanel:visible")
    assert panel.locator(".jp-Cell").count() == count
    expect(panel).to_contain_text("approval shell {'cmd': 'ls -la'}")
    expect(panel).to_contain_text("True True")  # the import of the export
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "quickstart.png"), full_page=True)


def test_an_exported_session_opens_in_jupyterlab_without_errors(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    created = lab.api.post("/api/sessions", json={"title": "Exported for reading"})
    session_id = created.json()["id"]
    _turn(lab, session_id, "what is 17*23", None)
    _turn(lab, session_id, "run `echo hello from bash`", {"confirmation": "approve"})
    reject = {"confirmation": "reject", "reason": "not today"}
    _turn(lab, session_id, "run `date`", reject)
    notebook = lab.api.get(f"/api/sessions/{session_id}/notebook").json()
    (lab.root / "exported.ipynb").write_text(json.dumps(notebook))

    # The kernel named in the export starts by itself (_open waits for it): no "Select Kernel".
    page = open_notebook(browser, lab, "exported.ipynb")
    panel = page.locator(".jp-NotebookPanel:visible")
    cells = panel.locator(".jp-Cell")
    expect(cells.first).to_contain_text("Exported for reading")
    expect(panel).to_contain_text("echo hello from bash")
    expect(panel).to_contain_text("%%bash")
    expect(panel).to_contain_text("# approved by the user")
    outputs = panel.locator(".jp-OutputArea-output")
    expect(outputs.filter(has_text="hello from bash").first).to_be_visible()
    rejected = panel.locator(".jp-RenderedText[data-mime-type*='stderr']")
    expect(rejected.filter(has_text="ToolRejected")).to_have_count(1)
    expect(panel).to_contain_text("391")
    assert cells.count() == len(notebook["cells"])
    expect(page.locator(".jp-Dialog")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "exported.png"))
