"""The JupyterLab sidebar in a real browser: JupyterLab served by a real server, Debian's
chromium, no kernel anywhere.

The panel lists a session created over REST, shows the approval of a detached turn started
over REST (and the waiting badge on its tab), runs the tool when ``Approve`` is clicked, and
exports the session as a notebook that opens in a tab. Screenshots go to the test's tmp dir.

Marked ``browser``: ``pytest -m "not browser"`` skips these where no chromium is installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_lab import DOCS, Lab, start_detached_turn, wait_for

from .conftest import TAB, open_lab
from .conftest import session_row as _row

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)


def _tool_results(lab: Lab, session_id: str) -> list[str]:
    messages = lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["messages"]
    return [m["message"]["content"] for m in messages if m["message"]["role"] == "tool"]


def test_a_session_made_over_rest_is_approved_and_exported_from_the_sidebar(
    lab: Lab, page: Page, tmp_path: Path
) -> None:
    sidebar = page.locator("#nbsession-sidebar")
    expect(sidebar.get_by_role("button", name="New session", exact=True)).to_be_visible()
    expect(sidebar.get_by_label("Agent")).to_have_value("default")

    # Created over REST: the list shows it at the next poll (about a second).
    created = time.monotonic()
    session = lab.api.post("/api/sessions", json={"title": "Made over REST"}).json()
    row = _row(page, session["id"])
    expect(row).to_contain_text("Made over REST")
    print(f"listed {time.monotonic() - created:.2f} s after its creation over REST")
    page.screenshot(path=str(tmp_path / "1-listed.png"))

    # A detached turn started over REST asks for approval: the panel shows it.
    start_detached_turn(lab, session["id"], "list the files")
    row.locator(".nbsession-sidebar-row-open").click()
    approve = sidebar.get_by_role("button", name="Approve", exact=True)
    expect(approve).to_be_visible()
    tab = page.locator(TAB)
    expect(tab).to_have_attribute("data-nbsession-waiting", "1")
    expect(tab).to_have_class(re.compile(r"\bnbsession-waiting\b"))
    page.screenshot(
        path=str(tmp_path / "2-waiting-for-approval.png"),
        clip={"x": 0, "y": 0, "width": 760, "height": 900},
    )

    approve.click()
    results = wait_for(lambda: _tool_results(lab, session["id"]), "the tool's result")
    assert "notes.txt" in results[0]
    expect(sidebar.locator(".nbsession-pane-status")).to_contain_text("Done")
    expect(tab).not_to_have_attribute("data-nbsession-waiting", "1")
    expect(approve).to_have_count(0)
    sidebar.screenshot(path=str(tmp_path / "3-done.png"))

    # Export: the notebook is saved in the server's root and opens in a tab.
    sidebar.get_by_role("button", name="Export", exact=True).click()
    notebook_tab = page.locator(".jp-NotebookPanel:visible")
    expect(notebook_tab).to_be_visible()
    expect(notebook_tab.locator(".jp-Cell").first).to_contain_text("Made over REST")
    exported = sorted(lab.root.glob("made-over-rest-*.ipynb"))
    assert len(exported) == 1
    nbformat.validate(nbformat.read(exported[0], as_version=4))
    page.screenshot(path=str(tmp_path / "4-exported.png"))
    if os.environ.get("NBSESSION_DOCS_SCREENSHOTS") == "1":  # refresh the README's picture
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "2-waiting-for-approval.png", DOCS / "sidebar.png")


def test_new_star_rename_delete_and_import_from_the_sidebar(lab: Lab, page: Page) -> None:
    sidebar = page.locator("#nbsession-sidebar")
    before = {s["id"] for s in lab.api.get("/api/sessions").json()}

    # The palette's command makes a session and opens it in the panel.
    page.evaluate("window.jupyterapp.commands.execute('nbsession:new-session')")
    back = sidebar.get_by_role("button", name="Back to the session list")
    expect(back).to_be_visible()
    made = wait_for(
        lambda: {s["id"] for s in lab.api.get("/api/sessions").json()} - before, "a new session"
    )
    (session_id,) = made

    # Star and rename (a JupyterLab dialog), checked over REST.
    sidebar.get_by_role("button", name="☆ Star").click()
    wait_for(lambda: _summary(lab, session_id)["starred"], "the star")
    sidebar.get_by_role("button", name="Rename", exact=True).click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("input").fill("Renamed in the sidebar")
    dialog.locator("input").press("Enter")
    wait_for(lambda: _summary(lab, session_id)["title"] == "Renamed in the sidebar", "the title")
    back.click()
    row = _row(page, session_id)
    expect(row).to_contain_text("Renamed in the sidebar")
    expect(row.get_by_role("button", name="Unstar Renamed in the sidebar")).to_be_visible()

    # Delete asks first: cancelling keeps the session, confirming deletes it.
    row.locator(".nbsession-sidebar-row-open").click()
    sidebar.get_by_role("button", name="Delete", exact=True).click()
    page.locator(".jp-Dialog").get_by_role("button", name="Cancel").click()
    assert _summary(lab, session_id)
    sidebar.get_by_role("button", name="Delete", exact=True).click()
    page.locator(".jp-Dialog").get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert lab.api.get(f"/api/sessions/{session_id}").status_code == 404

    # Import: the file browser's context menu on an exported notebook recreates the session.
    source = lab.api.post("/api/sessions", json={"title": "To be imported"}).json()["id"]
    exported = lab.api.get(f"/api/sessions/{source}/notebook").content
    (lab.root / "to-import.ipynb").write_bytes(exported)
    (lab.root / "broken.ipynb").write_text(json.dumps(nbformat.v4.new_notebook()))
    page.evaluate("window.jupyterapp.commands.execute('filebrowser:refresh')")
    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()
    before = {s["id"] for s in lab.api.get("/api/sessions").json()}
    page.locator('.jp-DirListing-item[title*="to-import.ipynb"]').click(button="right")
    page.locator(".lm-Menu-item", has_text="Import as Agent Session").click()
    imported = wait_for(
        lambda: {s["id"] for s in lab.api.get("/api/sessions").json()} - before, "the import"
    )
    assert len(imported) == 1
    expect(sidebar).to_be_visible()
    expect(sidebar.locator(".nbsession-sidebar-session-title")).to_have_text("To be imported")

    # A notebook without nbsession's record: the server's reason is shown, nothing is made.
    page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()
    page.locator('.jp-DirListing-item[title*="broken.ipynb"]').click(button="right")
    page.locator(".lm-Menu-item", has_text="Import as Agent Session").click()
    expect(page.locator(".jp-Dialog")).to_contain_text("Import of broken.ipynb failed")
    page.locator(".jp-Dialog").get_by_role("button").last.click()


def _summary(lab: Lab, session_id: str) -> dict[str, Any]:
    rows = lab.api.get("/api/sessions").json()
    return next(row for row in rows if row["id"] == session_id)


def test_the_badge_counts_sessions_waiting_that_are_not_open(lab: Lab, page: Page) -> None:
    sidebar = page.locator("#nbsession-sidebar")
    tab = page.locator(TAB)
    quiet = lab.api.post("/api/sessions", json={"title": "Quiet"}).json()["id"]
    asking = lab.api.post("/api/sessions", json={"title": "Asking"}).json()["id"]
    _row(page, quiet).locator(".nbsession-sidebar-row-open").click()
    expect(sidebar.get_by_role("button", name="Back to the session list")).to_be_visible()
    expect(tab).not_to_have_attribute("data-nbsession-waiting", re.compile(".*"))

    # A turn started elsewhere asks for approval in a session the panel does not show.
    start_detached_turn(lab, asking, "list the files")
    expect(tab).to_have_attribute("data-nbsession-waiting", "1")
    expect(tab).to_have_class(re.compile(r"\bnbsession-waiting\b"))
    sidebar.get_by_role("button", name="Back to the session list").click()
    expect(_row(page, asking).locator(".nbsession-sidebar-row-waiting")).to_be_visible()
    expect(_row(page, quiet).locator(".nbsession-sidebar-row-waiting")).to_be_hidden()

    # Answered elsewhere: the badge goes as the list says the turn no longer waits.
    lab.api.post(f"/api/sessions/{asking}/resume", json={"confirmation": "reject"})
    expect(tab).not_to_have_attribute("data-nbsession-waiting", re.compile(".*"))
    expect(_row(page, asking).locator(".nbsession-sidebar-row-waiting")).to_be_hidden()


def test_load_more_pages_in_older_sessions_and_the_list_stays_live(
    lab: Lab, browser: Browser
) -> None:
    # A page is 50 rows: more than two pages' worth, made before the panel first reads them
    # (sessions made while it shows the list are added to it, pushing none out).
    have = len(lab.api.get("/api/sessions").json())
    for n in range(max(0, 105 - have)):
        lab.api.post("/api/sessions", json={"title": f"Paged {n}"})
    listed = lab.api.get("/api/sessions").json()
    page = open_lab(browser, lab.url, lab.token)
    sidebar = page.locator("#nbsession-sidebar")
    rows = sidebar.locator("li.nbsession-sidebar-row")
    load_more = sidebar.get_by_role("button", name="Load more", exact=True)

    expect(rows.first).to_have_attribute("data-session-id", listed[0]["id"])
    expect(rows).to_have_count(50)
    expect(load_more).to_be_visible()
    load_more.click()
    expect(rows).to_have_count(100)
    load_more.click()
    expect(rows).to_have_count(len(listed))
    expect(load_more).to_be_hidden()
    ids = [rows.nth(i).get_attribute("data-session-id") for i in range(len(listed))]
    assert ids == [row["id"] for row in listed]  # newest first, each once

    # The paged-in rows stay live: a rename of the oldest and a new session both show.
    oldest = listed[-1]["id"]
    lab.api.patch(f"/api/sessions/{oldest}/title", json={"title": "Oldest, renamed"})
    expect(_row(page, oldest)).to_contain_text("Oldest, renamed")
    newest = lab.api.post("/api/sessions", json={"title": "After paging"}).json()["id"]
    expect(rows.first).to_have_attribute("data-session-id", newest)
    expect(rows).to_have_count(len(listed) + 1)


PLANS_AGENT = """\
agents:
  root:
    model: demo/offline
    toolsets: [{type: plan}, {type: todo}]
"""


def test_the_sidebar_shows_the_plan_and_the_todo_list_in_place(
    lab: Lab, page: Page, tmp_path: Path
) -> None:
    (lab.agents / "plans.yaml").write_text(PLANS_AGENT)
    session = lab.api.post("/api/sessions", json={"title": "Planned"}).json()
    plan = {"content": "# Steps\n\n1. Read the data\n2. Plot it\n"}
    start_detached_turn(lab, session["id"], f"call `write_plan` with {json.dumps(plan)}", "plans")
    _row(page, session["id"]).locator(".nbsession-sidebar-row-open").click()
    sidebar = page.locator("#nbsession-sidebar")
    sidebar.get_by_role("button", name="Approve", exact=True).click()  # write_plan asks

    shown = sidebar.locator(".nbsession-pane-plan")
    expect(shown.locator("summary")).to_have_text(f"Plan · {session['id']}.md")  # its file
    expect(shown.locator("h1")).to_have_text("Steps")
    expect(shown.locator("li")).to_have_text(["Read the data", "Plot it"])
    expect(sidebar.locator(".nbsession-pane-status")).to_contain_text("Done")

    # The demo model records "make a plan" as todos: the checklist appears, the plan stays.
    start_detached_turn(lab, session["id"], "make a plan", "plans")
    todos = sidebar.locator(".nbsession-pane-todos")
    expect(todos.locator("summary")).to_have_text("Todos · 0/3 done")
    expect(todos.locator(".nbsession-pane-todo-text")).to_have_text(
        ["Understand the request", "Do the work", "Report the result"]
    )
    expect(sidebar.locator(".nbsession-pane-plan")).to_have_count(1)
    expect(shown.locator("h1")).to_have_text("Steps")
    sidebar.screenshot(path=str(tmp_path / "plan-and-todos.png"))
