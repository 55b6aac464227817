"""Sessions as Jupyter notebooks: a readable rendering plus a lossless recovery record (SPEC 6).

The cells are for people: they show the conversation the way JupyterLab displays any notebook,
with tool calls as code cells whose outputs hold the results. They are never parsed back,
because a reader may edit them. The whole session travels in ``metadata.nbsession`` instead,
versioned so a later format can still refuse (or migrate) an old export explicitly.

Everything here is a pure function on JSON-shaped dicts: the manager does the I/O.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import nbformat
from nbformat.warnings import DuplicateCellId, MissingIDFieldWarning
from pydantic import ValidationError

from nbsession.errors import InvalidRequest
from nbsession.session import ChatMessage, Item, Message, Session, ToolCall

NOTEBOOK_FORMAT_VERSION = 1
"""Version of the ``metadata.nbsession`` record; bump it when its shape changes."""

_NBFORMAT = 4
_NBFORMAT_MINOR = 5  # the first minor version with cell ids, which JupyterLab 4 writes
_MAX_CELL_ID = 64  # nbformat 4.5: cell ids match ^[a-zA-Z0-9-_]+$, 1 to 64 characters
_CELL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NO_RESULT = "no result (interrupted)\n"
_TOOL_CALL_TAG = "nbsession-tool-call"
# Named so JupyterLab opens an export with the usual Python kernel instead of asking
# "Select Kernel"; the recorded cells never need one, but a reader may add cells of their own.
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
_LANGUAGE_INFO = {"name": "python"}
_SHELL_TOOLS = frozenset({"shell", "bash"})
_PYTHON_TOOLS = frozenset({"python", "run_python", "execute_python", "run_code"})
_DATA_IMAGE = re.compile(
    r"data:image/(?P<subtype>png|jpeg|gif|webp);base64,(?P<data>[A-Za-z0-9+/=]+)"
)
# The runtime's words for a call the user or the permissions refused (nbsession.runtime.loop).
_REFUSALS = (("The user rejected the tool call.", "ToolRejected"), ("Denied: ", "ToolDenied"))


def is_notebook(data: object) -> bool:
    """Whether a request body looks like a notebook rather than a session (SPEC 6 import)."""
    return isinstance(data, Mapping) and "cells" in data and "nbformat" in data


def session_to_notebook(session: Session) -> dict[str, Any]:
    """Render ``session`` as an nbformat 4.5 notebook carrying its own recovery record."""
    return {
        "nbformat": _NBFORMAT,
        "nbformat_minor": _NBFORMAT_MINOR,
        "metadata": {
            "kernelspec": dict(KERNELSPEC),
            "language_info": dict(_LANGUAGE_INFO),
            "nbsession": {"version": NOTEBOOK_FORMAT_VERSION, "session": session.to_json()},
        },
        "cells": _Renderer(session).cells(),
    }


def notebook_to_session(data: object) -> Session:
    """Recover the session recorded in an exported notebook.

    Only ``metadata.nbsession`` is read. Any problem raises ``InvalidRequest`` whose ``field``
    names the offending part, so a client can tell a damaged notebook from a foreign one.
    """
    if not isinstance(data, Mapping):
        raise InvalidRequest(
            f"A notebook must be a JSON object, not {_json_type(data)}.", field="notebook"
        )
    for key in ("cells", "nbformat"):
        if key not in data:
            raise InvalidRequest(f"This is not a notebook: {key!r} is missing.", field=key)
    if data["nbformat"] != _NBFORMAT or isinstance(data["nbformat"], bool):
        raise InvalidRequest(
            f"Only nbformat {_NBFORMAT} notebooks can be imported, not {data['nbformat']!r}.",
            field="nbformat",
        )
    _validate_nbformat(data)

    record = data.get("metadata", {}).get("nbsession")
    if not isinstance(record, Mapping):
        raise InvalidRequest(
            "The notebook has no nbsession record (metadata.nbsession): "
            "only notebooks exported from a session can be imported.",
            field="metadata.nbsession",
        )
    version = record.get("version")
    if type(version) is int and version > NOTEBOOK_FORMAT_VERSION:
        raise InvalidRequest(
            f"The notebook was exported by a newer nbsession (record version {version}; this "
            f"one reads version {NOTEBOOK_FORMAT_VERSION}): upgrade nbsession to import it.",
            field="metadata.nbsession.version",
        )
    if type(version) is not int or version != NOTEBOOK_FORMAT_VERSION:
        raise InvalidRequest(
            f"Unsupported nbsession record version {version!r} "
            f"(this server reads version {NOTEBOOK_FORMAT_VERSION}).",
            field="metadata.nbsession.version",
        )
    recorded = record.get("session")
    if not isinstance(recorded, Mapping):
        raise InvalidRequest(
            f"metadata.nbsession.session must be a JSON object, not {_json_type(recorded)}.",
            field="metadata.nbsession.session",
        )
    try:
        session = Session.model_validate(recorded)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(["metadata.nbsession.session", *(str(part) for part in first["loc"])])
        raise InvalidRequest(
            f"The session recorded in the notebook is invalid at {field}: {first['msg']}.",
            field=field,
        ) from None
    check_tool_results(session, "metadata.nbsession.session")
    return session


def check_tool_results(session: Session, where: str = "") -> None:
    """Refuse a record whose tool results answer no earlier call of the same (sub-)session.

    Models refuse such a history (every provider pairs a result with its call), so importing
    it would create a session whose next turn fails; the damage is named instead. ``where``
    is the record's path in the imported document ("" when the session is the document).
    """
    called: set[str] = set()
    for index, item in enumerate(session.messages):
        if item.sub_session is not None:
            check_tool_results(item.sub_session, _joined(where, f"messages.{index}.sub_session"))
        chat = item.message.message if item.message is not None else None
        if chat is None:
            continue
        called.update(call.id for call in chat.tool_calls or [])
        if chat.role == "tool" and chat.tool_call_id not in called:
            field = _joined(where, f"messages.{index}.message.message.tool_call_id")
            raise InvalidRequest(
                f"The recorded session is inconsistent at {field}: the tool "
                f"result {chat.tool_call_id!r} answers no earlier tool call.",
                field=field,
            )


def _joined(where: str, path: str) -> str:
    return f"{where}.{path}" if where else path


def json_cut_short(text: str, error: json.JSONDecodeError) -> bool:
    """Whether ``text`` failed to parse only because it ends too early (an interrupted copy,
    download or upload), rather than because it is not JSON at all.

    The decoder then either reaches the end wanting more, or a string runs into the end.
    """
    ended = error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated string")
    return bool(text.strip()) and ended


def session_record(notebook: Mapping[str, Any]) -> Mapping[str, Any]:
    """The raw session record of a notebook that ``notebook_to_session`` accepted."""
    return notebook["metadata"]["nbsession"]["session"]


def _validate_nbformat(data: Mapping[str, Any]) -> None:
    """Check ``data`` against the nbformat schema without touching the caller's object.

    ``nbformat.validate`` mutates its input (it fills in missing or duplicate cell ids) and
    warns about it; cells are not read back here, so that repair is harmless and silenced.
    Shapes the schema code cannot even walk are rejected first.
    """
    minor = data.get("nbformat_minor")
    if type(minor) is not int:
        raise InvalidRequest(
            f"The notebook is not valid nbformat: nbformat_minor must be an integer, "
            f"not {_json_type(minor)}.",
            field="nbformat_minor",
        )
    cells = data["cells"]
    if not isinstance(cells, list) or not all(isinstance(cell, Mapping) for cell in cells):
        raise InvalidRequest(
            "The notebook is not valid nbformat: cells must be a list of objects.",
            field="cells",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            warnings.simplefilter("ignore", DuplicateCellId)
            nbformat.validate(copy.deepcopy(dict(data)))
    except nbformat.ValidationError as exc:
        path = ".".join(str(part) for part in exc.absolute_path)
        where = f" (at {path})" if path else ""
        # jsonschema's message quotes the offending value, which may be a whole cell.
        problem = exc.message if len(exc.message) <= 160 else exc.message[:157] + "..."
        raise InvalidRequest(
            f"The notebook is not valid nbformat: {problem}{where}.", field=path or None
        ) from None


def _json_type(value: object) -> str:
    """The JSON name of a value's type, for messages written to a client."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


class _Renderer:
    """Turns one session into cells; holds the state that spans items (ids, tool results).

    A sub-session is rendered by a child renderer that shares the cell ids (they must be
    unique in the whole notebook) but pairs calls and results within its own messages.
    """

    def __init__(self, session: Session, used_ids: set[str] | None = None, depth: int = 1) -> None:
        self.session = session
        self.used_ids = set() if used_ids is None else used_ids
        self.depth = depth
        # A tool call's result is a later ``tool`` message: index results by call id so the
        # call's cell can show it, and remember which ones were shown there.
        declared = {
            call.id
            for item in session.messages
            if item.message is not None
            for call in item.message.message.tool_calls or []
        }
        self.results: dict[str, ChatMessage] = {}
        self.attached: set[int] = set()
        for index, item in enumerate(session.messages):
            chat = item.message.message if item.message is not None else None
            if chat is None or chat.role != "tool" or chat.tool_call_id not in declared:
                continue
            if chat.tool_call_id not in self.results:
                self.results[chat.tool_call_id] = chat
                self.attached.add(index)

    def cells(self) -> list[dict[str, Any]]:
        cells = [self._markdown("nbsession-title", self._title())]
        return cells + self._conversation()

    def _conversation(self) -> list[dict[str, Any]]:
        cells = []
        for index, item in enumerate(self.session.messages):
            if index not in self.attached:
                cells.extend(self._item_cells(index, item))
        return cells

    def _title(self) -> str:
        session = self.session
        title = " ".join(session.title.split()) or "Untitled session"
        chats = [item.message for item in session.messages if item.message is not None]
        agents = _distinct(message.agent_name for message in chats)
        models = _distinct(message.message.model or "" for message in chats)
        stamps = [message.message.created_at for message in chats if message.message.created_at]
        dates = f"Created {session.created_at.isoformat(timespec='seconds')}"
        if stamps:
            dates += f" · last message {stamps[-1]}"
        # ``\$``: a bare dollar sign starts LaTeX in JupyterLab's Markdown.
        usage = (
            f"{session.input_tokens} input / {session.output_tokens} output tokens"
            f" · cost \\${session.cost:.4f}"
        )
        lines = [f"# {title}", "", dates, "", usage]
        if agents or models:
            named = []
            if agents:
                named.append("Agents: " + ", ".join(f"`{agent}`" for agent in agents))
            if models:
                named.append("models: " + ", ".join(f"`{model}`" for model in models))
            lines += ["", " · ".join(named)]
        if session.working_dir:
            lines += ["", f"Working dir `{session.working_dir}`"]
        if session.agent_model_overrides:
            overrides = ", ".join(
                f"`{agent}` → `{model}`"
                for agent, model in sorted(session.agent_model_overrides.items())
            )
            lines += ["", f"Model overrides: {overrides}"]
        return "\n".join(lines)

    def _item_cells(self, index: int, item: Item) -> list[dict[str, Any]]:
        if item.message is not None:
            return self._message_cells(item.message)
        if item.sub_session is not None:
            return self._sub_session_cells(item.sub_session)
        if item.error is not None:
            source = "# the turn failed; this cell is a record, not code to run"
            outputs = [_error_output("TurnError", item.error)]
            return [self._code(f"item-{index}-error", source, outputs, {})]
        return [self._markdown(f"item-{index}-summary", f"**Summary**\n\n{item.summary or ''}")]

    def _sub_session_cells(self, sub: Session) -> list[dict[str, Any]]:
        """A heading one level below its parent's, then the sub-session's own conversation."""
        count = sum(1 for entry in sub.messages if entry.message is not None)
        title = " ".join(sub.title.split()) or "Untitled sub-session"
        level = "#" * min(self.depth + 1, 6)
        text = f"{level} Sub-session: {title}\n\n{count} message{'s' if count != 1 else ''}"
        heading = self._markdown(f"{sub.id}-sub-session", text)
        child = _Renderer(sub, self.used_ids, self.depth + 1)
        end = self._markdown(f"{sub.id}-sub-session-end", f"*End of sub-session: {title}*")
        return [heading, *child._conversation(), end]

    def _message_cells(self, message: Message) -> list[dict[str, Any]]:
        chat = message.message
        if chat.role == "user":
            header = "**You**" + (" *(implicit)*" if message.implicit else "")
            text, attachments = _user_text(chat)
            return [self._markdown(message.id, f"{header}\n\n{text}", attachments)]
        if chat.role == "system":
            return [self._markdown(message.id, f"**System**\n\n{chat.content}")]
        if chat.role == "tool":  # a result whose call is not in the session
            source = f"# tool result ({chat.tool_call_id or 'unknown call'})"
            return [self._code(f"{message.id}-result", source, _result_outputs(chat), {})]
        return self._assistant_cells(message)

    def _assistant_cells(self, message: Message) -> list[dict[str, Any]]:
        chat = message.message
        cells = []
        if chat.content or chat.reasoning_content:
            header = "**Assistant**"
            if message.agent_name:
                header += f" ({message.agent_name})"
            if chat.model:
                header += f" · `{chat.model}`"
            parts = [header]
            if chat.reasoning_content:
                parts.append(
                    "<details><summary>Reasoning</summary>\n\n"
                    f"{chat.reasoning_content}\n\n</details>"
                )
            if chat.content:
                parts.append(chat.content)
            cells.append(self._markdown(message.id, "\n\n".join(parts)))
        for position, call in enumerate(chat.tool_calls or []):
            result = self.results.get(call.id)
            outputs = _result_outputs(result)
            marks = {"tool_call_id": call.id, "tool": call.function.name}
            approval = result.approval if result is not None else None
            if approval is not None:
                marks["approval"] = approval
            key = f"{message.id}-call-{position}"
            cells.append(self._code(key, _call_source(call, approval), outputs, marks))
        return cells

    def _markdown(
        self, key: str, source: str, attachments: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        cell = {"cell_type": "markdown", "id": self._cell_id(key), "metadata": {}, "source": source}
        return {**cell, "attachments": attachments} if attachments else cell

    def _code(
        self, key: str, source: str, outputs: list[dict[str, Any]], marks: dict[str, str]
    ) -> dict[str, Any]:
        """A record of a call or a failure: locked against edits, tagged, never executed.

        It stays a code cell (not raw) because only code cells carry outputs, and an error
        output is what JupyterLab shows in red. ``execution_count`` stays null: nothing ran
        in a kernel. The source never starts with a cell magic (see ``_call_source``), so a
        "Run All" cannot replay a command.
        """
        metadata: dict[str, Any] = {"editable": False, "tags": [_TOOL_CALL_TAG]}
        if marks:
            metadata["nbsession"] = marks
        return {
            "cell_type": "code",
            "id": self._cell_id(key),
            "metadata": metadata,
            "execution_count": None,
            "source": source,
            "outputs": outputs,
        }

    def _cell_id(self, key: str) -> str:
        """A stable, unique cell id: the same session always renders the same ids."""
        candidate = _fit_cell_id(key)
        counter = 1
        while candidate in self.used_ids:
            counter += 1
            candidate = _fit_cell_id(f"{key}-{counter}")
        self.used_ids.add(candidate)
        return candidate


def _distinct(values: Iterable[str]) -> list[str]:
    """The non-empty values in first-seen order."""
    return [value for value in dict.fromkeys(values) if value]


def _fit_cell_id(key: str) -> str:
    """Make ``key`` a legal cell id; over-long keys keep a prefix plus a hash to stay unique."""
    safe = _CELL_ID_UNSAFE.sub("-", key) or "cell"
    if len(safe) <= _MAX_CELL_ID:
        return safe
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return f"{safe[: _MAX_CELL_ID - len(digest) - 1]}-{digest}"


def _user_text(chat: ChatMessage) -> tuple[str, dict[str, Any]]:
    """The user's words verbatim, and the images they sent as Markdown cell attachments.

    A ``data:`` image is embedded (the notebook stays readable offline); an image given by
    URL is linked; other attachments are only named.
    """
    if not chat.multi_content:
        return chat.content, {}
    parts = [chat.content] if chat.content else []
    attachments: dict[str, Any] = {}
    for part in chat.multi_content:
        kind = part.get("type")
        if kind == "text":
            if not chat.content:
                parts.append(str(part.get("text", "")))
            continue
        url = _image_url(part) if kind == "image_url" else ""
        embedded = _DATA_IMAGE.fullmatch(url)
        if embedded:
            name = f"image-{len(attachments) + 1}.{embedded['subtype']}"
            attachments[name] = {f"image/{embedded['subtype']}": embedded["data"]}
            parts.append(f"![{name}](attachment:{name})")
        elif url.startswith(("https://", "http://")):
            parts.append(f"![image]({url.replace(')', '%29').replace(' ', '%20')})")
        else:
            parts.append(f"*[attachment: {kind or 'unknown'}]*")
    return "\n\n".join(parts), attachments


def _image_url(part: Mapping[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    return url if isinstance(url, str) else ""


# How the user answered a call's approval prompt, as the call's cell says it.
_APPROVALS = {
    "approve": "approved by the user",
    "approve-session": "approved by the user, with every tool of the session",
    "approve-tool": "approved by the user, and the tool allowed from then on",
    "reject": "rejected by the user",
}


def _call_source(call: ToolCall, approval: str | None = None) -> str:
    """The call as a reader wants it: a header comment, then the call in its own language.

    A shell command follows ``%%bash``, Python code ``%%python``, anything else is pretty
    JSON. The magic comes after the header comments on purpose: IPython only runs a cell magic on a
    cell's first line, so running this cell fails on that line (an unknown line magic)
    before anything below it runs. A reader sees the language; a kernel runs nothing.
    """
    header = f"# tool call: {call.function.name} ({call.id}), recorded: not meant to run"
    if approval is not None:
        header += f"\n# {_APPROVALS.get(approval, approval)}"
    raw = call.function.arguments
    try:
        arguments = json.loads(raw or "{}")
    except ValueError:
        return f"{header}\n# arguments are not valid JSON:\n{raw}"
    code = _code_argument(call.function.name, arguments)
    if code is not None:
        magic, text = code
        return f"{header}\n%%{magic}\n{text}"
    return f"{header}\n{json.dumps(arguments, indent=2, ensure_ascii=False)}"


def _code_argument(tool: str, arguments: object) -> tuple[str, str] | None:
    """``(magic, code)`` when the call is one command or one Python snippet, else ``None``.

    Only a call whose sole argument is the code qualifies: any other argument (a working
    dir, a timeout) would be lost from the cell, so such calls stay JSON.
    """
    if not isinstance(arguments, Mapping) or len(arguments) != 1:
        return None
    ((key, value),) = arguments.items()
    if not isinstance(value, str):
        return None
    if tool in _SHELL_TOOLS and key in ("cmd", "command"):
        return "bash", value
    if tool in _PYTHON_TOOLS and key == "code":
        return "python", value
    return None


def _result_outputs(chat: ChatMessage | None) -> list[dict[str, Any]]:
    """A tool result as cell outputs: stdout text, or an error output JupyterLab shows in red.

    A call without a result (the turn was interrupted) gets a stderr marker, shaded red too:
    an unanswered call must not look like one that printed nothing.
    """
    if chat is None:
        return [_stream(_NO_RESULT, "stderr")]
    if not chat.is_error:
        return [_stream(chat.content)]
    ename = next((name for words, name in _REFUSALS if chat.content.startswith(words)), "ToolError")
    return [_error_output(ename, chat.content)]


def _error_output(ename: str, text: str) -> dict[str, Any]:
    """An error output whose shown text names the kind of failure.

    JupyterLab and nbconvert display only the ``traceback`` lines, so the first one carries
    ``ename`` as a Python traceback's last line would (``ToolRejected: ...``).
    """
    lines = text.splitlines()
    first = lines[0] if lines else ""
    return {
        "output_type": "error",
        "ename": ename,
        "evalue": first,
        "traceback": [f"{ename}: {first}" if first else ename, *lines[1:]],
    }


def _stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}
