"""The model picker and the session browser in a real kernel, driven by front-end messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient

from .test_pane_widget import execute, output, running_kernel, send_from_front_end


@pytest.fixture(scope="module")
def kernel() -> Iterator[BlockingKernelClient]:
    with running_kernel() as client:
        execute(
            client,
            "import json, nbsession\n"
            "from nbsession.widgets.browse import ModelPicker, SessionBrowser\n"
            "client = nbsession.local()",
        )
        yield client


def update(client: BlockingKernelClient, comm_id: str, state: dict[str, Any]) -> None:
    """A front end's change of a widget's value: a comm message with method ``update``."""
    msg = client.session.msg(
        "comm_msg", {"comm_id": comm_id, "data": {"method": "update", "state": state}}
    )
    client.shell_channel.send(msg)


def printed(client: BlockingKernelClient, code: str) -> Any:
    return json.loads(output(execute(client, code)))


def test_picker_shows_errors_and_the_current_model(kernel: BlockingKernelClient) -> None:
    status = printed(
        kernel,
        "fresh = client.create_session(custom_models_used=['openai/gpt-4o'])\n"
        "print(json.dumps(ModelPicker(fresh).status.value))",
    )
    assert "SessionNotRunning" in status  # shown in the widget, not raised into the cell
    state = printed(
        kernel,
        "fresh.run('what is 1+1', display=False)\n"
        "picker = ModelPicker(fresh)\n"
        "print(json.dumps([picker.dropdown.model_id, picker.dropdown.value,"
        " [ref for _, ref in picker.dropdown.options]]))",
    )
    assert state[1:] == ["demo/offline", ["demo/offline", "openai/gpt-4o"]]
    update(kernel, state[0], {"index": 1})  # the user picks the second model
    chosen = printed(kernel, "print(json.dumps([picker.status.value, fresh.aio._next_model]))")
    assert chosen == ["openai/gpt-4o from the next turn on", "openai/gpt-4o"]


def test_browser_stars_renames_and_deletes_after_confirmation(
    kernel: BlockingKernelClient,
) -> None:
    ids = printed(
        kernel,
        "target = client.create_session(title='old name')\n"
        "browser = SessionBrowser(client)\n"
        "row = next(r for r in browser.rows.children if r.session_id == target.id)\n"
        "title, star, open_, rename, export, delete, confirm = row.children\n"
        "print(json.dumps([w.model_id for w in row.children]))",
    )
    title, star, _open, rename, _export, delete, confirm = ids
    update(kernel, star, {"value": True})
    update(kernel, title, {"value": "new name"})
    send_from_front_end(kernel, rename, {"event": "click"})
    send_from_front_end(kernel, delete, {"event": "click"})  # asks first
    info = printed(
        kernel,
        "i = next(i for i in client.sessions() if i.id == target.id)\n"
        "print(json.dumps([i.starred, i.title, confirm.layout.display]))",
    )
    assert info == [True, "new name", None]
    send_from_front_end(kernel, confirm, {"event": "click"})
    gone = printed(kernel, "print(json.dumps(target.id in [i.id for i in client.sessions()]))")
    assert gone is False


def test_browser_exports_every_session_into_a_folder_and_imports_it(
    kernel: BlockingKernelClient, tmp_path: Path
) -> None:
    folder = tmp_path / "exported"
    ids = printed(
        kernel,
        "first = client.create_session(title='first')\n"
        "second = client.create_session(title='second')\n"
        "browser = SessionBrowser(client)\n"
        "print(json.dumps([browser.export_folder.model_id, browser.export_all_button.model_id,"
        " browser.import_path.model_id, browser.import_button.model_id]))",
    )
    folder_box, export_all, import_box, import_button = ids
    update(kernel, folder_box, {"value": str(folder)})
    send_from_front_end(kernel, export_all, {"event": "click"})
    status = printed(kernel, "print(json.dumps(browser.status.value))")
    sessions = printed(kernel, "print(json.dumps([s.id for s in client.sessions()]))")
    assert status.startswith(f"exported {len(sessions)} sessions")
    files = sorted(path.name for path in folder.iterdir())
    assert len(files) == len(sessions)
    assert any(name.startswith("first-") for name in files)

    (folder / "broken.ipynb").write_text('{"cells": [')
    update(kernel, import_box, {"value": str(folder)})
    send_from_front_end(kernel, import_button, {"event": "click"})
    status = printed(kernel, "print(json.dumps(browser.status.value))")
    assert status.startswith(f"imported {len(sessions)} sessions")
    assert "1 failed:<br>" in status and "broken.ipynb: ValueError:" in status
    after = printed(kernel, "print(json.dumps(len(client.sessions())))")
    assert after == 2 * len(sessions)
    shown = printed(kernel, "print(json.dumps(len(browser.rows.children)))")
    assert shown == min(after, 20)  # the list was re-read
