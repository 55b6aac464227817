"""The event pane in a real browser: JupyterLab served by a real server, Debian's chromium.

A notebook cell displays an ``EventPane`` bound to a session; a detached turn started over
REST asks for approval; the test clicks ``Approve`` in the page (the pane posts to the REST
API itself, with the login cookie and XSRF header) and sees the tool result and the answer.

Marked ``browser``: ``pytest -m "not browser"`` skips these where no chromium is installed;
CI installs it (.ci/run) and runs them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_lab import (
    DOCS,
    KERNEL_IDLE,
    TIMEOUT_MS,
    Lab,
    open_notebook,
    run_all_cells,
    start_detached_turn,
    wait_for,
    write_notebook,
)

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)


def _new_notebook(lab: Lab, browser: Browser, source: str, copies: int = 1) -> tuple[Page, str]:
    """A fresh page on a new notebook of ``copies`` cells of ``source``, its cells started (one
    may block); and the notebook's name."""
    name = f"nb-{secrets.token_hex(4)}.ipynb"
    write_notebook(lab.root / name, [source] * copies)
    page = open_notebook(browser, lab, name)
    run_all_cells(page)
    return page, name


def _open_pane(lab: Lab, browser: Browser, session_id: str, panes: int = 1) -> Page:
    """A fresh page on a new notebook whose cells each show an EventPane of the session."""
    cell = (
        "from nbsession.widgets import EventPane\n"
        f"EventPane(session_id={session_id!r}, base_url='auto')"
    )
    page, _name = _new_notebook(lab, browser, cell, copies=panes)
    expect(page.locator(".nbsession-pane:visible")).to_have_count(panes)
    return page


def _save_and_reload(page: Page) -> None:
    """Save the notebook (its outputs keep the panes' views) and load the page again."""
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
    page.reload()
    page.wait_for_function(KERNEL_IDLE, timeout=TIMEOUT_MS)


def _new_session(lab: Lab) -> str:
    return str(lab.api.post("/api/sessions", json={}).json()["id"])


def _streaming(lab: Lab, session_id: str) -> bool:
    return bool(lab.api.get(f"/api/sessions/{session_id}/status").json()["streaming"])


def test_approve_in_the_browser_runs_the_tool_and_shows_the_answer(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    session_id = _new_session(lab)
    page = _open_pane(lab, browser, session_id)
    try:
        pane = page.locator(".nbsession-pane:visible")
        expect(pane.locator(".nbsession-pane-status")).to_have_text("Idle")

        start_detached_turn(lab, session_id, "list the files")
        approve = pane.get_by_role("button", name="Approve", exact=True)
        expect(approve).to_be_visible()
        for label in ("Approve for session", "Always allow this tool", "Reject", "Stop"):
            expect(pane.get_by_role("button", name=label, exact=True)).to_be_visible()
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Waiting for approval")
        page.screenshot(path=str(tmp_path / "1-waiting-for-approval.png"))

        approve.click()
        card = pane.locator(".nbsession-pane-tool")
        expect(card.locator(".nbsession-pane-tool-state")).to_have_text("done · approved")
        card.locator("summary").click()
        expect(card.locator(".nbsession-pane-tool-result")).to_contain_text("notes.txt")
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Done")
        expect(pane.locator(".nbsession-pane-answer").last).not_to_be_empty()
        expect(approve).to_have_count(0)
        expect(pane.locator(".nbsession-pane-footer")).to_contain_text("tokens")
        pane.screenshot(path=str(tmp_path / "2-done.png"))
    finally:
        page.close()

    # The click reached the server: the tool ran and its result is stored.
    messages = lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["messages"]
    results = [m["message"] for m in messages if m["message"]["role"] == "tool"]
    assert len(results) == 1
    assert "notes.txt" in results[0]["content"]
    if os.environ.get("NBSESSION_DOCS_SCREENSHOTS") == "1":  # refresh the README's picture
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "2-done.png", DOCS / "pane.png")


def test_an_answer_given_elsewhere_closes_every_pane_and_a_reload_rebuilds_it(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    session_id = _new_session(lab)
    page = _open_pane(lab, browser, session_id, panes=2)
    try:
        panes = page.locator(".nbsession-pane:visible")
        start_detached_turn(lab, session_id, "list the files")
        for index in range(2):
            expect(
                panes.nth(index).get_by_role("button", name="Approve", exact=True)
            ).to_be_visible()
        lab.api.post(f"/api/sessions/{session_id}/resume", json={"confirmation": "approve"})
        for index in range(2):
            pane = panes.nth(index)
            # The bound: the prompts close within a second of the REST answer.
            approve = pane.get_by_role("button", name="Approve", exact=True)
            expect(approve).to_have_count(0, timeout=1000)
            expect(pane.locator(".nbsession-pane-status")).to_contain_text("Done")
            expect(pane.locator(".nbsession-pane-tool-state")).to_have_text("done · approved")
        answer = panes.nth(0).locator(".nbsession-pane-answer").last.inner_text()
        assert "offline demo model" in answer

        # Saved, the output keeps the widget's view: the reopened page renders it again from
        # the live kernel's model, and the pane rebuilds its content from the server's log.
        _save_and_reload(page)
        rebuilt = page.locator(".nbsession-pane:visible")
        expect(rebuilt).to_have_count(2)
        for index in range(2):
            expect(rebuilt.nth(index).locator(".nbsession-pane-answer").last).to_have_text(answer)
        page.screenshot(path=str(tmp_path / "reloaded.png"))
    finally:
        page.close()


def test_stop_cancels_a_waiting_turn(lab: Lab, browser: Browser) -> None:
    session_id = _new_session(lab)
    page = _open_pane(lab, browser, session_id)
    try:
        pane = page.locator(".nbsession-pane:visible")
        start_detached_turn(lab, session_id, "list the files")
        expect(pane.get_by_role("button", name="Approve", exact=True)).to_be_visible()
        pane.get_by_role("button", name="Stop", exact=True).click()
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Cancelled")
        expect(pane.get_by_role("button", name="Stop", exact=True)).to_be_hidden()
        assert not _streaming(lab, session_id)
    finally:
        page.close()


# -- a blocking `run()` in a notebook cell --------------------------------------------------

KERNEL_SETTINGS = "lab/api/settings/@jupyterlab/apputils-extension:kernels-settings"
PROMPT = ".jp-Notebook .jp-Cell:visible .jp-InputPrompt"


def _lab_setting(lab: Lab, raw: dict[str, object]) -> None:
    """Save the user's JupyterLab kernel settings as the Settings Editor does."""
    reply = httpx.put(
        f"{lab.url}{KERNEL_SETTINGS}",
        json={"raw": json.dumps(raw)},
        headers={"Authorization": f"Bearer {lab.token}"},
        timeout=30,
    )
    assert reply.status_code == 204, reply.text


def _session_of(lab: Lab, notebook: str) -> dict[str, object]:
    """The session a notebook's kernel created (sessions record their notebook)."""

    def find() -> dict[str, object] | None:
        for summary in lab.api.get("/api/sessions").json():
            session = lab.api.get(f"/api/sessions/{summary['id']}").json()
            if session["notebook_path"] == notebook:
                return dict(session)
        return None

    return dict(wait_for(find, f"a session created from {notebook}"))


@pytest.mark.parametrize("comms", ["perCommTarget", "disabled"])
def test_approve_while_the_cell_blocks_in_run(
    lab: Lab, browser: Browser, tmp_path: Path, comms: str
) -> None:
    """The issue's case: `run()` blocks the cell; Approve in its pane lets the turn go on.

    Run with JupyterLab's default (widget messages on kernel subshells) and with
    `commsOverSubshells` disabled: the pane's buttons post to the REST API from the browser,
    so neither setting matters."""
    _lab_setting(lab, {"commsOverSubshells": comms})
    source = (
        "import nbsession\n"
        "result = nbsession.connect().create_session().run('list the files')\n"
        "print('turn ended:', result.stop_reason)"
    )
    page, notebook = _new_notebook(lab, browser, source)
    try:
        kernel = "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
        assert page.evaluate(f"{kernel}.commsOverSubshells") == comms
        pane = page.locator(".nbsession-pane:visible")
        expect(pane).to_have_count(1)
        expect(pane.locator(".nbsession-pane-answer").first).to_contain_text("I'll run ls -la")
        approve = pane.get_by_role("button", name="Approve", exact=True)
        expect(approve).to_be_visible()
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Waiting for approval")
        page.screenshot(path=str(tmp_path / f"1-blocked-{comms}.png"))

        prompt = page.locator(PROMPT)
        assert prompt.inner_text() == "[*]:", "the cell must still be running at the click"
        approve.click()

        card = pane.locator(".nbsession-pane-tool")
        expect(card.locator(".nbsession-pane-tool-state")).to_have_text("done · approved")
        card.locator("summary").click()
        expect(card.locator(".nbsession-pane-tool-result")).to_contain_text("notes.txt")
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Done")
        expect(pane.locator(".nbsession-pane-answer").last).to_contain_text("offline demo")
        expect(prompt).to_have_text("[1]:")
        expect(page.locator(".jp-OutputArea-output:visible").last).to_contain_text(
            "turn ended: normal"
        )
        page.screenshot(path=str(tmp_path / f"2-finished-{comms}.png"))

        # The session is bound to the notebook (relative to the server's root) and kernel.
        session = _session_of(lab, notebook)
        assert session["kernel_id"] == page.evaluate(f"{kernel}.id")
    finally:
        page.close()
        _lab_setting(lab, {})


def test_stop_ends_a_long_turn_while_the_cell_blocks(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    source = (
        "import nbsession\n"
        "session = nbsession.connect().create_session(tools_approved=True)\n"
        "result = session.run('run `sleep 300`')\n"
        "print('turn ended:', result.stop_reason)"
    )
    page, notebook = _new_notebook(lab, browser, source)
    try:
        pane = page.locator(".nbsession-pane:visible")
        expect(pane.locator(".nbsession-pane-tool-name")).to_have_text("shell")
        session_id = _session_of(lab, notebook)["id"]

        def sleeping() -> bool:
            status = lab.api.get(f"/api/sessions/{session_id}/status").json()
            return status.get("activity", {}).get("state") == "running_tool"

        wait_for(sleeping, "the shell tool to run")
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Running")
        assert page.locator(PROMPT).inner_text() == "[*]:"
        pane.get_by_role("button", name="Stop", exact=True).click()
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Cancelled")
        expect(page.locator(PROMPT)).to_have_text("[1]:")
        expect(page.locator(".jp-OutputArea-output:visible").last).to_contain_text(
            "turn ended: canceled"
        )
        page.screenshot(path=str(tmp_path / "stopped.png"))
    finally:
        page.close()


@pytest.mark.parametrize("comms", ["perCommTarget", "disabled"])
def test_a_local_session_blocking_the_cell_in_relay_mode(
    lab: Lab, browser: Browser, tmp_path: Path, comms: str
) -> None:
    """`local()`: the browser cannot reach the session, the kernel relays its events.

    The pane shows the prompt although its view rendered while the cell was blocked. With
    JupyterLab's widget messages on subshells (the default) a click reaches the busy kernel
    and the turn goes on; with them off the click cannot reach it before the cell ends, and
    the pane says so and what else works."""
    _lab_setting(lab, {"commsOverSubshells": comms})
    source = (
        "import nbsession\n"
        f"session = nbsession.local().create_session(working_dir={str(lab.root)!r})\n"
        "result = session.run('list the files')\n"
        "print('turn ended:', result.stop_reason)"
    )
    page, _name = _new_notebook(lab, browser, source)
    try:
        pane = page.locator(".nbsession-pane:visible")
        approve = pane.get_by_role("button", name="Approve", exact=True)
        expect(approve).to_be_visible()
        expect(pane.locator(".nbsession-pane-answer").first).to_contain_text("I'll run ls -la")
        prompt = page.locator(PROMPT)
        assert prompt.inner_text() == "[*]:", "the cell must still be running at the click"
        approve.click()
        notice = pane.locator(".nbsession-pane-notice")
        if comms == "disabled":
            expect(notice).to_contain_text("Kernel Comms over subshells")
            assert prompt.inner_text() == "[*]:"
            page.screenshot(path=str(tmp_path / "relay-waiting-for-the-kernel.png"))
            page.evaluate("window.jupyterapp.commands.execute('notebook:interrupt-kernel')")
            expect(prompt).to_have_text("[1]:")
            return
        card = pane.locator(".nbsession-pane-tool")
        expect(card.locator(".nbsession-pane-tool-state")).to_have_text("done · approved")
        expect(notice).to_be_hidden()
        expect(pane.locator(".nbsession-pane-status")).to_contain_text("Done")
        expect(prompt).to_have_text("[1]:")
        expect(page.locator(".jp-OutputArea-output:visible").last).to_contain_text(
            "turn ended: normal"
        )
        page.screenshot(path=str(tmp_path / "relay-finished.png"))
    finally:
        page.close()
        _lab_setting(lab, {})


def test_a_reload_while_a_turn_waits_shows_the_prompt_again(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    """The rebuilt pane reads the pending approval (the snapshot's `pending`) and it works."""
    session_id = _new_session(lab)
    page = _open_pane(lab, browser, session_id)
    try:
        pane = page.locator(".nbsession-pane:visible")
        start_detached_turn(lab, session_id, "list the files")
        expect(pane.get_by_role("button", name="Approve", exact=True)).to_be_visible()
        snapshot = lab.api.get(f"/api/sessions/{session_id}/snapshot").json()
        assert snapshot["pending"]["type"] == "tool_call_confirmation"
        _save_and_reload(page)
        rebuilt = page.locator(".nbsession-pane:visible")
        expect(rebuilt.locator(".nbsession-pane-status")).to_contain_text("Waiting for approval")
        expect(rebuilt.locator(".nbsession-pane-answer").first).to_contain_text("I'll run ls -la")
        page.screenshot(path=str(tmp_path / "reloaded-waiting.png"))
        rebuilt.get_by_role("button", name="Approve", exact=True).click()
        expect(rebuilt.locator(".nbsession-pane-tool-state")).to_have_text("done · approved")
        expect(rebuilt.locator(".nbsession-pane-status")).to_contain_text("Done")
    finally:
        page.close()
