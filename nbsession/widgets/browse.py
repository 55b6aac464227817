"""The model picker and the session browser: ipywidgets composites over the SDK.

Every action is an SDK call; an error it raises is shown in the widget's status line, never
raised into the cell (a callback's exception would only reach the kernel's log).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..sdk.client import Client, notebook_filename
from ..sdk.errors import NBSessionError
from ..sdk.results import BatchReport, SessionInfo
from ..sdk.session import Session
from .pane import EventPane


def _guarded(status: w.HTML, action: Callable[[], str]) -> None:
    """Run ``action``; show what it returns, or the error it raised, in ``status``."""
    try:
        status.value = action()
    except (NBSessionError, OSError, ValueError, TypeError) as exc:
        problem = html.escape(f"{type(exc).__name__}: {exc}")
        status.value = f"<span style='color:#b00'>{problem}</span>"


class ModelPicker(w.VBox):
    """A dropdown of the models ``session.models()`` offers; a choice is ``set_model``'d (it
    applies from the session's next turn)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dropdown = w.Dropdown(description="Model")
        self.status = w.HTML()
        super().__init__([self.dropdown, self.status])
        _guarded(self.status, self._load)
        self.dropdown.observe(self._chosen, names="value")

    def _load(self) -> str:
        models = self.session.models()
        self.dropdown.options = [(m.name or m.ref, m.ref) for m in models.models]
        if models.current_model_ref in {m.ref for m in models.models}:
            self.dropdown.value = models.current_model_ref
        return f"agent {models.agent}: {len(models.models)} models"

    def _chosen(self, change: dict[str, Any]) -> None:
        ref = change["new"]
        if ref:
            _guarded(self.status, lambda: self._set(ref))

    def _set(self, ref: str) -> str:
        self.session.set_model(ref)
        return f"{ref} from the next turn on"


class SessionBrowser(w.VBox):
    """Sessions newest first, ``page_size`` at a time: open, rename, star, delete (after a
    confirmation), export as a notebook; import a notebook or a folder of them, and export
    every session into a folder."""

    def __init__(self, client: Client, page_size: int = 20) -> None:
        self.client = client
        self.page_size = page_size
        self._cursors: list[str | None] = [None]  # the cursor of each page shown so far
        self._next: str | None = None
        self.status = w.HTML()
        self.rows = w.VBox()
        self.opened = w.Output()
        self.older = w.Button(description="Older")
        self.newer = w.Button(description="Newer")
        self.older.on_click(lambda _b: self._page(+1))
        self.newer.on_click(lambda _b: self._page(-1))
        self.import_path = w.Text(placeholder="notebook.ipynb or folder to import")
        self.import_button = w.Button(description="Import")
        self.import_button.on_click(lambda _b: _guarded(self.status, self._import))
        self.export_folder = w.Text(value="sessions", description="Folder")
        self.export_all_button = w.Button(description="Export all")
        self.export_all_button.on_click(lambda _b: _guarded(self.status, self._export_all))
        super().__init__(
            [
                w.HBox([self.newer, self.older, self.import_path, self.import_button]),
                w.HBox([self.export_folder, self.export_all_button]),
                self.rows,
                self.status,
                self.opened,
            ]
        )
        _guarded(self.status, self.refresh)

    def refresh(self) -> str:
        """Re-read the page shown."""
        page = self.client.sessions(limit=self.page_size, before=self._cursors[-1])
        self._next = page.next_cursor
        self.rows.children = [self._row(info) for info in page]
        self.older.disabled = self._next is None
        self.newer.disabled = len(self._cursors) == 1
        return f"{len(self.rows.children)} sessions"

    def _page(self, step: int) -> None:
        if step > 0 and self._next is not None:
            self._cursors.append(self._next)
        elif step < 0 and len(self._cursors) > 1:
            self._cursors.pop()
        _guarded(self.status, self.refresh)

    def _import(self) -> str:
        """A notebook, or every notebook of a folder (each refused file listed, not fatal)."""
        path = self.import_path.value
        if Path(path).is_dir():
            report = self.client.import_folder(path)
            self.refresh()
            return _report(report)
        session = self.client.import_notebook(path)
        self.refresh()
        return f"imported as {session.id}"

    def _export_all(self) -> str:
        return _report(self.client.export_all(self.export_folder.value))

    def _row(self, info: SessionInfo) -> w.HBox:
        session = self.client.session(info.id)
        title = w.Text(value=info.title, layout=w.Layout(width="40%"))
        star = w.ToggleButton(value=info.starred, description="★", tooltip="star")
        buttons = {
            name: w.Button(description=name) for name in ("Open", "Rename", "Export", "Delete")
        }
        confirm = w.Button(description="Really delete", button_style="danger")
        confirm.layout.display = "none"

        def act(action: Callable[[], str]) -> Callable[[Any], None]:
            return lambda _b: _guarded(self.status, action)

        def starred(change: dict[str, Any]) -> None:
            _guarded(self.status, lambda: _do(session.star, change["new"], "starred"))

        def ask() -> str:
            confirm.layout.display = None
            return f"delete {info.id}? click Really delete"

        def delete() -> str:
            session.delete()
            self.refresh()
            return f"deleted {info.id}"

        buttons["Open"].on_click(act(lambda: self._open(session)))
        buttons["Rename"].on_click(act(lambda: _do(session.rename, title.value, "renamed")))
        filename = notebook_filename(info.id, info.title)
        buttons["Export"].on_click(act(lambda: session.export_notebook(filename)))
        buttons["Delete"].on_click(act(ask))
        confirm.on_click(act(delete))
        star.observe(starred, names="value")
        row = w.HBox([title, star, *buttons.values(), confirm])
        row.session_id = info.id
        return row

    def _open(self, session: Session) -> str:
        local = session.where.startswith("local:")
        pane = EventPane(session_id=session.id, base_url="" if local else "auto")
        if local:  # the browser cannot read a local session: send its history
            pane.relay({"seq": m.seq, "event": dict(m.data)} for m in _history(session))
        self.opened.clear_output()
        with self.opened:
            from IPython.display import display

            display(pane)
        return f"opened {session.id}"


def _report(report: BatchReport) -> str:
    """A batch's summary for the status line, one refused file per line."""
    return "<br>".join(html.escape(line) for line in str(report).splitlines())


def _do(call: Callable[[Any], None], value: Any, done: str) -> str:
    call(value)
    return done


def _history(session: Session) -> list[Any]:
    """The events a local session still holds, without waiting for new ones."""
    last = session.snapshot().get("last_event_seq") or 0
    events: list[Any] = []
    if not last:
        return events
    with session.events(since=0) as stream:
        for event in stream:
            events.append(event)
            if event.type == "gap" or (event.seq is not None and event.seq >= last):
                break
    return events
