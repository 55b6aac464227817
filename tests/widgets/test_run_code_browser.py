"""``%%agent`` in JupyterLab, in a real browser: the agent runs code in the kernel of the very
cell that waits for it (a kernel subshell beside that cell), and the cell's pane shows it.

The notebook defines a variable, then an ``%%agent jupyter`` cell asks the offline model to
``run_code`` with it. The test clicks ``Approve`` in the cell's pane; the code runs while the
cell still blocks, the tool card shows the value computed from the notebook's variable, and
the cell ends.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser_lab import (
    KERNEL_IDLE,
    TIMEOUT_MS,
    Lab,
    open_notebook,
    run_all_cells,
    write_notebook,
)

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)


def test_an_agent_cell_runs_code_in_its_own_kernel_while_it_waits(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    name = f"agent-{secrets.token_hex(4)}.ipynb"
    prompt = "call `run_code` with " + json.dumps({"code": "print(answer + 1)"})
    write_notebook(
        lab.root / name, ["%load_ext nbsession\nanswer = 41", f"%%agent jupyter\n{prompt}"]
    )
    page = open_notebook(browser, lab, name)
    try:
        run_all_cells(page)  # not awaited: the cells end after the approval
        pane = page.locator(".nbsession-pane:visible")
        approve = pane.get_by_role("button", name="Approve", exact=True)
        expect(approve).to_be_visible()
        page.screenshot(path=str(tmp_path / "1-waiting-for-approval.png"))
        approve.click()

        card = pane.locator(".nbsession-pane-tool")
        expect(card.locator(".nbsession-pane-tool-state")).to_have_text("done · approved")
        card.locator("summary").click()
        expect(card.locator(".nbsession-pane-tool-result")).to_have_text("42")
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Done")
        # The cell itself ended, with the turn's result as its value.
        page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS)
        outputs = page.locator(".jp-OutputArea-output:visible")
        expect(outputs.filter(has_text="<TurnResult normal")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "2-done.png"))
    finally:
        page.close()

    # The cell's session (the module's JupyterLab has no other) is bound to the notebook's
    # kernel, and its stored tool result is the value.
    [listed] = lab.api.get("/api/sessions").json()
    session = lab.api.get(f"/api/sessions/{listed['id']}").json()
    assert session["notebook_path"] == name and session["kernel_id"]
    messages = [item["message"] for item in session["messages"]]
    assert [m["content"] for m in messages if m["role"] == "tool"] == ["42"]
