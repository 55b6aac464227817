"""The sidebar's open session in a real browser: the model picker, the message box's errors,
following a stream in a narrow panel, and a stream that the network drops and resumes.

Marked ``browser``: ``pytest -m "not browser"`` skips these where no chromium is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_lab import Lab, start_detached_turn, wait_for
from tests.sdk.helpers import CuttingProxy

from .conftest import open_lab, session_row

pytestmark = pytest.mark.browser
expect.set_options(timeout=30_000)

MODELS_AGENT = """\
version: "2"
models:
  fast:
    provider: demo
    model: offline
  slow:
    provider: demo
    model: slow
agents:
  root:
    model: fast
    description: "The offline demo model, fast or slow"
    toolsets:
      - type: shell
"""

# A turn whose answer streams word by word for several seconds on `demo/slow`.
LONG_WORDS = " ".join(f"word{i}" for i in range(250))
LONG_PROMPT = f'call `think` with {{"thought": "{LONG_WORDS} = done"}}'


def _open(page: Page, session_id: str) -> None:
    session_row(page, session_id).locator(".nbsession-sidebar-row-open").click()
    expect(page.locator("#nbsession-sidebar .nbsession-sidebar-session")).to_be_visible()


def _slow_session(lab: Lab, title: str) -> str:
    """A session whose answers stream slowly and whose tools run without asking."""
    template = {
        "title": title,
        "tools_approved": True,
        "agent_model_overrides": {"root": "demo/slow"},
    }
    return str(lab.api.post("/api/sessions", json=template).json()["id"])


def _last_answer(lab: Lab, session_id: str) -> str:
    messages = lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["messages"]
    return str(
        [m for m in messages if m["message"]["role"] == "assistant"][-1]["message"]["content"]
    )


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _words(text: str) -> list[str]:
    return text.replace("**", "").split()


def test_the_model_picker_sets_the_next_turns_model(lab: Lab, page: Page) -> None:
    (lab.agents / "models.yaml").write_text(MODELS_AGENT)
    page.reload()  # the agent picker reads the agents when the panel starts
    page.locator('.jp-SideBar .lm-TabBar-tab[data-id="nbsession-sidebar"]').click()
    sidebar = page.locator("#nbsession-sidebar")
    sidebar.get_by_label("Agent").select_option("models")
    sidebar.get_by_role("button", name="New session", exact=True).click()
    picker = sidebar.get_by_label("Model", exact=True)
    # Before its first turn the server lists no models for a session: the picker says why.
    expect(sidebar.locator(".nbsession-sidebar-model-note")).to_contain_text("first turn")
    expect(picker).to_be_disabled()
    session_id = wait_for(
        lambda: next(iter(lab.api.get("/api/sessions", params={"limit": 1}).json()), None),
        "the new session",
    )["id"]

    message = sidebar.get_by_label("Message")
    message.fill("hello")
    sidebar.get_by_role("button", name="Send", exact=True).click()
    expect(sidebar.locator(".nbsession-pane-status")).to_contain_text("Done")
    expect(picker).to_be_enabled()
    expect(picker).to_have_value("fast")
    expect(picker.locator("option")).to_have_text(["fast (default)", "slow"])

    # A pick applies from the next turn; the server keeps it for the turns after.
    picker.select_option("slow")
    expect(sidebar.locator(".nbsession-sidebar-model-note")).to_have_text(
        "slow from the next turn on"
    )
    message.fill("hello again")
    sidebar.get_by_role("button", name="Send", exact=True).click()
    wait_for(
        lambda: (
            lab.api.get(f"/api/sessions/{session_id}/recovery").json()["agent_model_overrides"]
            == {"root": "slow"}
        ),
        "the model override",
    )
    expect(sidebar.locator(".nbsession-pane-status")).to_contain_text("Done")
    expect(picker).to_have_value("slow")
    expect(sidebar.locator(".nbsession-sidebar-model-note")).to_have_text("")

    # A model the agent's file dropped meanwhile: the server's refusal is shown under the
    # message box, the message stays there, and nothing was appended.
    picker.select_option("fast")
    (lab.agents / "models.yaml").write_text(
        MODELS_AGENT.replace("  fast:\n    provider: demo\n    model: offline\n", "").replace(
            "model: fast", "model: slow"
        )
    )
    before = len(lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["messages"])
    message.fill("one more")
    sidebar.get_by_role("button", name="Send", exact=True).click()
    error = sidebar.locator(".nbsession-sidebar-composer + .nbsession-sidebar-error")
    expect(error).to_contain_text("fast")
    expect(message).to_have_value("one more")
    assert len(lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["messages"]) == before


def test_a_busy_session_is_said_under_the_message_box(lab: Lab, page: Page) -> None:
    session = lab.api.post("/api/sessions", json={"title": "Busy"}).json()
    start_detached_turn(lab, session["id"], "list the files")
    _open(page, session["id"])
    sidebar = page.locator("#nbsession-sidebar")
    expect(sidebar.get_by_role("button", name="Approve", exact=True)).to_be_visible()

    sidebar.get_by_label("Message").fill("and another thing")
    sidebar.get_by_role("button", name="Send", exact=True).click()
    error = sidebar.locator(".nbsession-sidebar-composer + .nbsession-sidebar-error")
    expect(error).to_contain_text("already processing a request")
    expect(sidebar.get_by_label("Message")).to_have_value("and another thing")

    # Once the turn is answered and over, the same message goes through.
    sidebar.get_by_role("button", name="Reject", exact=True).click()
    expect(sidebar.locator(".nbsession-pane-status")).to_contain_text("Done")
    sidebar.get_by_role("button", name="Send", exact=True).click()
    expect(error).to_have_text("")
    wait_for(
        lambda: (
            "and another thing"
            in [
                m["message"]["content"]
                for m in lab.api.get(f"/api/sessions/{session['id']}/snapshot").json()["messages"]
            ]
        ),
        "the message",
    )


# Per animation frame while a turn streams: where the answer's first and last lines are, and
# where the scrolling entries and the message box are.
_RECORD = """() => {
  const entries = document.querySelector('#nbsession-sidebar .nbsession-pane-entries');
  const panel = document.querySelector('#nbsession-sidebar');
  const box = panel.querySelector('.nbsession-sidebar-composer');
  window.__frames = [];
  const frame = () => {
    const answers = entries.querySelectorAll('.nbsession-pane-answer');
    const answer = answers[answers.length - 1];
    if (answer) {
      const a = answer.getBoundingClientRect();
      const e = entries.getBoundingClientRect();
      window.__frames.push({
        length: answer.textContent.length,
        answerTop: a.top,
        answerBottom: a.bottom,
        entriesTop: e.top,
        entriesBottom: e.bottom,
        boxTop: box.getBoundingClientRect().top,
        panelBottom: panel.getBoundingClientRect().bottom
      });
    }
    if (window.__recording) requestAnimationFrame(frame);
  };
  window.__recording = true;
  requestAnimationFrame(frame);
}"""


def _answer_text(page: Page) -> str:
    """The text of the last answer in the open session (as it streams)."""
    return str(
        page.evaluate(
            "() => [...document.querySelectorAll('#nbsession-sidebar .nbsession-pane-answer')]"
            ".pop()?.textContent ?? ''"
        )
    )


def _answer_length(page: Page) -> int:
    return len(_answer_text(page))


def _frames(page: Page) -> list[dict[str, Any]]:
    return list(
        page.evaluate("() => { const f = window.__frames; window.__frames = []; return f; }")
    )


def test_a_narrow_panel_follows_the_stream_only_from_the_bottom(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    page = open_lab(browser, lab.url, lab.token, width=900)  # the panel is 250 px wide
    try:
        session_id = _slow_session(lab, "Narrow")
        # One answer already there: the next one starts below the fold.
        lab.api.post(f"/api/sessions/{session_id}/agent/default", json=_user("hi"))
        _open(page, session_id)
        sidebar = page.locator("#nbsession-sidebar")
        sidebar.get_by_label("Message").fill(LONG_PROMPT)
        sidebar.get_by_role("button", name="Send", exact=True).click()
        wait_for(lambda: "answer is" in _answer_text(page), "the answer to start")

        # At the bottom: the last line stays in view as the answer grows past the panel.
        page.evaluate(_RECORD)
        start = _answer_length(page)
        wait_for(lambda: _answer_length(page) > start + 400, "the answer to grow", timeout=60)
        following = _frames(page)
        page.screenshot(path=str(tmp_path / "following.png"))
        assert len({f["length"] for f in following}) > 5
        # The last line is on screen, above the message box, in every frame.
        assert all(
            f["answerBottom"] <= min(f["entriesBottom"], f["boxTop"], f["panelBottom"]) + 2
            for f in following
        )
        assert following[-1]["answerTop"] < following[-1]["entriesTop"]  # longer than the view

        # Scrolled up to the answer's first line: nothing moves while the rest streams in.
        page.evaluate(
            "() => { const e = document.querySelector('#nbsession-sidebar "
            ".nbsession-pane-entries'); const a = [...e.querySelectorAll('.nbsession-pane-answer')]"
            ".pop(); e.scrollTop += a.getBoundingClientRect().top - e.getBoundingClientRect().top }"
        )
        _frames(page)
        start = _answer_length(page)
        wait_for(lambda: _answer_length(page) > start + 300, "the answer to grow", timeout=60)
        reading = _frames(page)
        page.screenshot(path=str(tmp_path / "reading.png"))
        assert len({f["length"] for f in reading}) > 5
        assert len({round(f["answerTop"], 1) for f in reading}) == 1, "the text moved"
        assert len({round(f["boxTop"], 1) for f in following + reading}) == 1, "the box moved"
        expect(sidebar.locator(".nbsession-pane-status")).to_contain_text("Done", timeout=90_000)
    finally:
        page.close()


def test_a_dropped_stream_reconnects_and_resumes_without_repeating_text(
    lab: Lab, browser: Browser, tmp_path: Path
) -> None:
    session_id = _slow_session(lab, "Dropped")
    proxy = CuttingProxy(int(lab.url.rsplit(":", 1)[1].strip("/")))
    try:
        page = open_lab(browser, f"http://127.0.0.1:{proxy.port}/", lab.token)
        try:
            _open(page, session_id)
            sidebar = page.locator("#nbsession-sidebar")
            status = sidebar.locator(".nbsession-pane-status")
            start_detached_turn(lab, session_id, LONG_PROMPT)  # straight to the server
            wait_for(lambda: _answer_length(page) > 100, "the answer to start")

            proxy.go_down()
            cut_at = lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["last_event_seq"]
            expect(status).to_contain_text("reconnecting")
            page.screenshot(path=str(tmp_path / "reconnecting.png"))
            # The turn goes on without the browser: what it streams meanwhile is missed.
            wait_for(
                lambda: (
                    lab.api.get(f"/api/sessions/{session_id}/snapshot").json()["last_event_seq"]
                    > cut_at + 20
                ),
                "the turn to stream on",
            )
            proxy.come_back()
            expect(status).not_to_contain_text("reconnecting")
            expect(status).to_contain_text("Done", timeout=90_000)
            shown = page.locator("#nbsession-sidebar .nbsession-pane-answer").last.inner_text()
        finally:
            page.close()
    finally:
        proxy.close()
    assert _words(shown) == _words(_last_answer(lab, session_id))
