"""Documents open in JupyterLab follow the agents' edits (real server, Debian's chromium).

An agent session (offline model, the ``jupyter`` and ``filesystem`` toolsets, its edits
permitted) edits a notebook or a text file the user has open, with no click in the page:

- an unmodified notebook shows the agent's new cell, without reloading the page;
- a notebook with text the user typed and did not save keeps that text; a notice names the
  file and offers Reload, which shows the agent's cell (the user's choice, nothing was
  overwritten on disk before it);
- a text file open in the editor shows what the ``filesystem`` toolset wrote.

Marked ``browser``: ``pytest -m "not browser"`` skips it where no chromium is installed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import nbformat
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser_lab import KERNEL_IDLE, TIMEOUT_MS, Lab, write_notebook

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)

AGENT = """
agents:
  root:
    model: demo/offline
    toolsets: [{type: jupyter}, {type: filesystem}]
permissions:
  allow: [insert_cell, write_file]
"""
# Resolves once the page's event-bus socket delivers an event: it asks for a directory
# listing (the contents manager emits a `get` for each) until one arrives.
BUS_READY = """async () => {
  const { events, contents } = window.jupyterapp.serviceManager;
  let heard = false;
  const listen = () => { heard = true; };
  events.stream.connect(listen);
  for (let i = 0; i < 300 && !heard; i++) {
    await contents.get('', { content: false });
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  events.stream.disconnect(listen);
  return heard;
}"""
DIRTY = "() => window.jupyterapp.shell.currentWidget.context.model.dirty"


@pytest.fixture(scope="module", autouse=True)
def writer_agent(lab: Lab) -> None:
    (lab.agents / "writer.yaml").write_text(AGENT)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        page.close()


def _open(page: Page, lab: Lab, path: str, widget: str) -> Locator:
    """JupyterLab on ``path`` (a fresh workspace), once its event-bus socket is live and the
    document has nothing unsaved."""
    page.goto(f"{lab.url}lab/tree/{path}?reset&token={lab.token}")
    shown = page.locator(f"{widget}:visible")
    expect(shown).to_be_visible()
    if widget == ".jp-NotebookPanel":
        # The kernel's start marks the notebook changed (its language_info metadata): saved
        # here, as a user would, so the document starts clean.
        page.wait_for_function(KERNEL_IDLE)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_function(f"() => !({DIRTY})()")
    assert page.evaluate(BUS_READY), "the page's event-bus socket never delivered an event"
    # The page is never reloaded: this survives only within one page load.
    page.evaluate("() => { window.nbsessionProbe = 'same page'; }")
    return shown


def _agent_calls(lab: Lab, tool: str, arguments: dict[str, str]) -> None:
    """A turn of a new session of the writer agent that calls ``tool`` (permitted: no
    approval), run to its end over REST."""
    session = lab.api.post("/api/sessions", json={}).json()
    prompt = f"call `{tool}` with {json.dumps(arguments)}"
    body = {"messages": [{"role": "user", "content": prompt}]}
    url = f"/api/sessions/{session['id']}/agent/writer"
    with lab.api.stream("POST", url, json=body) as response:
        response.raise_for_status()
        events = [json.loads(line[6:]) for line in response.iter_lines() if line[:6] == "data: "]
    [result] = [e["result"] for e in events if e["type"] == "tool_call_response"]
    assert not result["isError"], result


def _same_page(page: Page) -> None:
    assert page.evaluate("() => window.nbsessionProbe") == "same page"


def test_an_open_notebook_shows_the_agents_new_cell(lab: Lab, page: Page) -> None:
    write_notebook(lab.root / "reload-clean.ipynb", ["x = 1"])
    notebook = _open(page, lab, "reload-clean.ipynb", ".jp-NotebookPanel")
    cells = notebook.locator(".jp-Cell")
    expect(cells).to_have_count(1)

    _agent_calls(lab, "insert_cell", {"path": "reload-clean.ipynb", "source": "agent_cell = 42"})
    turn_ended = time.monotonic()
    expect(cells).to_have_count(2)
    print(f"the new cell showed {time.monotonic() - turn_ended:.2f} s after the turn ended")
    expect(cells.nth(1)).to_contain_text("agent_cell = 42")
    assert page.evaluate(DIRTY) is False
    expect(page.locator(".Toastify__toast")).to_have_count(0)  # nothing to ask about
    _same_page(page)


def test_unsaved_typing_is_kept_and_a_notice_offers_the_agents_version(
    lab: Lab, page: Page
) -> None:
    write_notebook(lab.root / "reload-typed.ipynb", ["x = 1"])
    notebook = _open(page, lab, "reload-typed.ipynb", ".jp-NotebookPanel")
    cells = notebook.locator(".jp-Cell")
    cells.first.locator(".cm-content").click()
    page.keyboard.press("End")
    page.keyboard.type("  # mine, not saved")
    page.wait_for_function(DIRTY)

    _agent_calls(lab, "insert_cell", {"path": "reload-typed.ipynb", "source": "agent_cell = 7"})
    notice = page.locator(".Toastify__toast", has_text='"reload-typed.ipynb" changed on disk')
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Your unsaved changes are kept")
    # The user's text is still there, the agent's cell is not shown yet, and the disk has
    # the agent's version only.
    expect(cells).to_have_count(1)
    expect(cells.first).to_contain_text("x = 1  # mine, not saved")
    assert page.evaluate(DIRTY) is True
    on_disk = nbformat.read(lab.root / "reload-typed.ipynb", as_version=4)
    assert [cell.source for cell in on_disk.cells] == ["x = 1", "agent_cell = 7"]

    notice.get_by_role("button", name="Reload").click()
    expect(cells).to_have_count(2)
    expect(cells.nth(1)).to_contain_text("agent_cell = 7")
    expect(cells.first).not_to_contain_text("mine")
    expect(notice).to_have_count(0)
    assert page.evaluate(DIRTY) is False
    _same_page(page)


def test_an_open_text_file_shows_what_the_filesystem_toolset_wrote(lab: Lab, page: Page) -> None:
    (lab.root / "reload-notes.txt").write_text("first draft\n")
    editor = _open(page, lab, "reload-notes.txt", ".jp-FileEditor")
    expect(editor.locator(".cm-content")).to_contain_text("first draft")

    _agent_calls(lab, "write_file", {"path": "reload-notes.txt", "content": "agent's version\n"})
    expect(editor.locator(".cm-content")).to_contain_text("agent's version")
    expect(editor.locator(".cm-content")).not_to_contain_text("first draft")
    _same_page(page)
