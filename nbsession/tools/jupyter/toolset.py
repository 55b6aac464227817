"""The ``jupyter`` toolset: run code in kernels, read and edit notebooks (SPEC 11).

Kernels: ``run_code`` runs in the kernel of the notebook the session is bound to (a session
created from a notebook's kernel records it), in a kernel given by id, or in a kernel of the
toolset's own (``kernel_name`` option), started on first use and shut down with the session.
A kernel busy with the user's cell (often the one that started this turn, ``%%agent``) runs
the code in a subshell beside it (`kernel.KernelConnection`: one subshell per toolset and
kernel, deleted when the toolset closes); a busy kernel without subshells is refused at once
rather than queued behind that cell. The user's running cell is never interrupted.

Notebooks are read and saved through the host (the server's contents manager), confined to its
root directory like the filesystem toolset's paths. Each edit's confirmation carries the
unified diff of the cells; every edit keeps the previous version, and ``undo_last_edit`` puts
it back unless the cells changed since (the user's own edits are never overwritten). The
previous versions are the session's undo history in the session store (``tools/undo.py``), so
an edit can be undone after the runtime was released or the server restarted; the version each
edit replaces is also saved as the notebook's Jupyter checkpoint (JupyterLab's File > Revert
Notebook to Checkpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from ...errors import StoreError, UnknownSession
from ...store.base import UndoEntry
from ..base import FixedToolset, FunctionTool, Tool, ToolContext, ToolResult, ToolsetEnv
from ..filesystem import PathEscape, resolve_inside
from ..undo import LocalUndoHistory
from . import notebooks
from .host import JupyterHost, NotebookNotFound, StandaloneHost, UnknownKernel
from .kernel import Execution, KernelBusy, KernelConnection, KernelUnreachable, StillRunning
from .outputs import bounded, outputs_text

OWN = "own"
MAX_LISTED = 500  # notebooks list_notebooks shows
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


class JupyterOptions(BaseModel):
    """The ``jupyter`` entry's options."""

    model_config = ConfigDict(extra="ignore")

    kernel: Literal["notebook", "own"] = Field(
        "notebook",
        description="Where run_code runs by default: the session's notebook kernel when it has "
        "one (else the toolset's own kernel), or always the toolset's own kernel",
    )
    kernel_name: str = Field("", description="Kernel spec of the toolset's own kernel")
    timeout: PositiveFloat = Field(60.0, description="Seconds a run may take before interrupt")
    max_output: PositiveInt = Field(20_000, description="Characters of output a result keeps")
    images_dir: str = Field(
        ".nbsession/outputs",
        description="Where images from run_code are saved, under the working dir ('' : not)",
    )


class RunCodeArgs(BaseModel):
    code: str = Field(description="Code to run, as in a notebook cell")
    kernel_id: str = Field(
        "",
        description="Kernel to run in: an id from list_kernels, 'own' for this toolset's own "
        "kernel, or empty for the default (the kernel of the notebook this session belongs "
        "to, else the toolset's own)",
    )
    timeout: PositiveFloat | None = Field(
        None,
        le=3600,
        description="Seconds before the run is interrupted (default: 60); a run beside the "
        "user's busy cell is not interrupted but left to finish",
    )


class NoArgs(BaseModel):
    pass


class ListNotebooksArgs(BaseModel):
    path: str = Field("", description="Directory to search, recursively (default: the root)")


class NotebookArgs(BaseModel):
    path: str = Field(
        "", description="Notebook path (default: the notebook this session belongs to)"
    )


class ReadNotebookArgs(NotebookArgs):
    start: int = Field(0, ge=0, description="First cell to show (0-based)")
    limit: PositiveInt | None = Field(None, description="Cells to show (default: all)")
    outputs: bool = Field(True, description="Show the cells' outputs")


class InsertCellArgs(NotebookArgs):
    index: int = Field(-1, description="Position of the new cell (0-based; -1: at the end)")
    source: str = Field(description="The cell's text")
    cell_type: notebooks.CellType = Field("code", description="code, markdown or raw")


class ReplaceCellArgs(NotebookArgs):
    index: int = Field(description="Cell to replace (0-based; -1: the last)")
    source: str = Field(description="The cell's new text")
    cell_type: notebooks.CellType | None = Field(None, description="New type (default: same)")


class DeleteCellArgs(NotebookArgs):
    index: int = Field(description="Cell to delete (0-based; -1: the last)")


class _Refused(Exception):
    """A call the model should read about as an error result."""


@dataclass(frozen=True)
class _Change:
    """A notebook edit worked out before it happens: what the preview shows and the call does;
    ``undoes`` is the history entry an undo takes back."""

    path: str
    before: dict[str, Any]
    after: dict[str, Any]
    done: str
    undoes: UndoEntry | None = None


class JupyterToolset(FixedToolset):
    """Kernels and notebooks of the Jupyter server hosting the session (or of its own).

    ``env.jupyter`` is the host's seam (None: a `StandaloneHost` over the working dir, owned
    and closed by the toolset). Building one does no I/O: kernels start on first use.
    """

    type: ClassVar[str] = "jupyter"
    options_model = JupyterOptions

    def __init__(
        self, options: Mapping[str, Any] | None = None, env: ToolsetEnv | None = None
    ) -> None:
        env = env or ToolsetEnv()
        self._options = JupyterOptions.model_validate(dict(options or {}))
        self._env = env
        self._served = env.jupyter is not None  # inside a Jupyter server
        self._host: JupyterHost | None = env.jupyter
        self._own_kernel = ""
        self._kernel_lock = asyncio.Lock()  # starting the own kernel once
        self._connections: dict[str, KernelConnection] = {}
        self._edit_lock = asyncio.Lock()  # one read-modify-write of a notebook at a time
        self._undo = env.undo or LocalUndoHistory()
        self._tools: list[Tool] = [
            self.function_tool(
                "run_code",
                "Run code in a Jupyter kernel and return its outputs (streams, results, "
                "displays, errors with tracebacks; images are saved as files and referenced). "
                "By default it runs in the kernel of the notebook this session belongs to, so "
                "it sees the user's variables.",
                RunCodeArgs,
                self._run_code,
                title="Run Code",
                read_only=False,
                refused=(_Refused,),
            ),
            self.function_tool(
                "list_kernels",
                "List the running kernels: id, kernel name, state and the notebooks using them.",
                NoArgs,
                self._list_kernels,
                title="List Kernels",
                read_only=True,
                refused=(_Refused,),
            ),
            self.function_tool(
                "list_notebooks",
                "List the notebooks under a directory, recursively.",
                ListNotebooksArgs,
                self._list_notebooks,
                title="List Notebooks",
                read_only=True,
                refused=(_Refused,),
            ),
            self.function_tool(
                "read_notebook",
                "Read a notebook's cells (numbered from 0, with ids) and their outputs.",
                ReadNotebookArgs,
                self._read_notebook,
                title="Read Notebook",
                read_only=True,
                refused=(_Refused,),
            ),
            _EditTool(
                self,
                "insert_cell",
                "Insert Cell",
                "Insert a new cell into a notebook.",
                InsertCellArgs,
                self._plan_insert,
            ),
            _EditTool(
                self,
                "replace_cell",
                "Replace Cell",
                "Replace a cell's source (a code cell's outputs are cleared).",
                ReplaceCellArgs,
                self._plan_replace,
            ),
            _EditTool(
                self,
                "delete_cell",
                "Delete Cell",
                "Delete a cell from a notebook.",
                DeleteCellArgs,
                self._plan_delete,
            ),
            _EditTool(
                self,
                "undo_last_edit",
                "Undo Last Edit",
                "Undo this session's last edit of a notebook (of the given one, or of any), "
                "unless its cells changed since.",
                NotebookArgs,
                self._plan_undo,
            ),
        ]

    # -- where things are ---------------------------------------------------------------

    def host(self, ctx: ToolContext) -> JupyterHost:
        if self._host is None:
            self._host = StandaloneHost(self._env.working_dir or ctx.working_dir)
        return self._host

    def _api_path(self, ctx: ToolContext, path: str) -> str:
        """``path`` (relative to the root, or absolute inside it) as an API path; raises
        `_Refused` for one outside the root, lexically or through a link."""
        root = self.host(ctx).root_dir
        try:
            real = resolve_inside(root, path)
        except PathEscape as exc:
            raise _Refused(str(exc).replace("working directory", "Jupyter root")) from None
        relative = os.path.relpath(real, os.path.realpath(root))
        return "" if relative == "." else relative.replace(os.sep, "/")

    def _notebook_path(self, ctx: ToolContext, path: str) -> str:
        if not path:
            path = self._env.notebook_path
            if not path:
                raise _Refused(
                    "No notebook given, and this session belongs to no notebook: pass a path "
                    "(list_notebooks shows them)."
                )
        api = self._api_path(ctx, path)
        if not api.endswith(".ipynb"):
            raise _Refused(f"{path!r} is not a notebook (.ipynb)")
        return api

    async def _read(self, ctx: ToolContext, path: str) -> dict[str, Any]:
        try:
            return await self.host(ctx).read_notebook(path)
        except NotebookNotFound:
            raise _Refused(f"notebook not found: {path}") from None

    # -- kernels ------------------------------------------------------------------------

    async def _target(self, ctx: ToolContext, requested: str) -> str:
        """The kernel id a run goes to (whether it is busy is the connection's business)."""
        bound = self._env.kernel_id if self._served else ""
        if requested == OWN or (not requested and (self._options.kernel == OWN or not bound)):
            return await self._own(ctx)
        kernel_id = requested or bound
        try:
            await self.host(ctx).kernel(kernel_id)
        except UnknownKernel:
            whose = "given" if requested else "of this session's notebook"
            raise _Refused(
                f"The kernel {whose} ({kernel_id}) is not running: pick one from list_kernels "
                f"or pass kernel_id {OWN!r} for this toolset's own kernel."
            ) from None
        return kernel_id

    async def _own(self, ctx: ToolContext) -> str:
        async with self._kernel_lock:
            if not self._own_kernel:
                host = self.host(ctx)
                cwd = ""
                with contextlib.suppress(_Refused):
                    cwd = self._api_path(ctx, ctx.working_dir or host.root_dir)
                self._own_kernel = await host.start_kernel(self._options.kernel_name, cwd)
            return self._own_kernel

    def _connection(self, ctx: ToolContext, kernel_id: str) -> KernelConnection:
        connection = self._connections.get(kernel_id)
        if connection is None:
            host = self.host(ctx)
            try:
                client = host.kernel_client(kernel_id)
            except UnknownKernel:
                raise _Refused(f"kernel {kernel_id} is not running") from None
            connection = KernelConnection(client, lambda: host.interrupt_kernel(kernel_id))
            self._connections[kernel_id] = connection
        return connection

    async def _run_code(self, args: RunCodeArgs, ctx: ToolContext) -> ToolResult:
        kernel_id = await self._target(ctx, args.kernel_id.strip())
        timeout = args.timeout or self._options.timeout
        connection = self._connection(ctx, kernel_id)
        async with connection.lock:
            try:
                execution = await connection.execute(args.code, timeout)
            except KernelBusy:
                raise _Refused(
                    f"Kernel {kernel_id} is busy running another cell (perhaps the one that "
                    "started this turn) and does not support kernel subshells (ipykernel 7 "
                    "does), so the code cannot run beside it; try again once it is idle, or "
                    f"pass kernel_id {OWN!r} to run in this toolset's own kernel."
                ) from None
            except StillRunning as exc:
                raise _Refused(_still_running(kernel_id, exc.subshell)) from None
            except KernelUnreachable as exc:
                raise _Refused(f"Kernel {kernel_id}: {exc}") from None
        text = outputs_text(execution.outputs, self._image_saver(ctx))
        return ToolResult(
            bounded(_with_status(text, execution, timeout, kernel_id), self._options.max_output),
            is_error=execution.status != "ok",
        )

    def _image_saver(self, ctx: ToolContext) -> Callable[[str, bytes], str]:
        """Saves each image under ``images_dir`` and answers with its path (relative to the
        working dir); without a usable ``images_dir``, only the type and size are told."""

        def save(mime: str, data: bytes) -> str:
            described = f"[{mime}, {len(data)} bytes"
            if not self._options.images_dir:
                return described + "]"
            root = ctx.working_dir or self.host(ctx).root_dir
            name = f"{uuid.uuid4().hex[:12]}.{EXTENSIONS.get(mime, 'svg')}"
            try:
                folder = resolve_inside(root, self._options.images_dir)
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, name), "wb") as file:
                    file.write(data)
            except (PathEscape, OSError) as exc:
                return f"{described}, not saved: {exc}]"
            relative = os.path.relpath(os.path.join(folder, name), os.path.realpath(root))
            return f"{described}, saved to {relative}]"

        return save

    async def _list_kernels(self, _args: NoArgs, ctx: ToolContext) -> str:
        kernels = await self.host(ctx).list_kernels()
        if not kernels:
            return "No kernels are running."
        lines = []
        for kernel in kernels:
            line = f"{kernel.id}  {kernel.name}  {kernel.execution_state}"
            if kernel.notebooks:
                line += "  notebooks: " + ", ".join(kernel.notebooks)
            if kernel.id == self._own_kernel:
                line += "  (this toolset's own kernel)"
            elif self._served and kernel.id == self._env.kernel_id:
                line += "  (this session's notebook kernel: the default)"
            lines.append(line)
        return "\n".join(lines)

    # -- reading notebooks --------------------------------------------------------------

    async def _list_notebooks(self, args: ListNotebooksArgs, ctx: ToolContext) -> str:
        host = self.host(ctx)
        start = self._api_path(ctx, args.path)
        found: list[str] = []
        pending = [start]
        while pending and len(found) < MAX_LISTED:
            directory = pending.pop(0)
            try:
                entries = await host.list_dir(directory)
            except NotebookNotFound:
                if directory == start:
                    raise _Refused(f"not a directory: {args.path}") from None
                continue
            for entry in entries:
                try:
                    self._api_path(ctx, entry.path)  # a link out of the root is left out
                except _Refused:
                    continue
                if entry.type == "directory":
                    pending.append(entry.path)
                elif entry.type == "notebook":
                    found.append(entry.path)
        if not found:
            return "No notebooks found."
        more = "\n...more notebooks not listed" if len(found) >= MAX_LISTED else ""
        return "\n".join(found[:MAX_LISTED]) + more

    async def _read_notebook(self, args: ReadNotebookArgs, ctx: ToolContext) -> str:
        path = self._notebook_path(ctx, args.path)
        notebook = await self._read(ctx, path)
        count = len(notebooks.cells(notebook))
        kernel = notebooks.kernel_name(notebook)
        head = f"{path}: {count} cells" + (f", kernel {kernel}" if kernel else "")
        body = notebooks.render(notebook, outputs=args.outputs, start=args.start, limit=args.limit)
        return bounded(f"{head}\n\n{body}", self._options.max_output)

    # -- editing notebooks --------------------------------------------------------------

    async def _plan_insert(self, args: InsertCellArgs, ctx: ToolContext) -> _Change:
        path = self._notebook_path(ctx, args.path)
        before = await self._read(ctx, path)
        after, index = _edit(notebooks.insert_cell, before, args.index, args.source, args.cell_type)
        done = f"Inserted a {args.cell_type} cell at {index} in {path}"
        return _Change(path, before, after, done)

    async def _plan_replace(self, args: ReplaceCellArgs, ctx: ToolContext) -> _Change:
        path = self._notebook_path(ctx, args.path)
        before = await self._read(ctx, path)
        after, index = _edit(
            notebooks.replace_cell, before, args.index, args.source, args.cell_type
        )
        return _Change(path, before, after, f"Replaced cell {index} in {path}")

    async def _plan_delete(self, args: DeleteCellArgs, ctx: ToolContext) -> _Change:
        path = self._notebook_path(ctx, args.path)
        before = await self._read(ctx, path)
        after, index = _edit(notebooks.delete_cell, before, args.index)
        return _Change(path, before, after, f"Deleted cell {index} of {path}")

    async def _plan_undo(self, args: NotebookArgs, ctx: ToolContext) -> _Change:
        wanted = self._api_path(ctx, args.path) if args.path else ""
        last = await self._undo.last(self.type, wanted)
        if last is None:
            where = f" of {wanted}" if wanted else ""
            raise _Refused(f"Nothing to undo: this session made no edit{where} (or undid it).")
        current = await self._read(ctx, last.target)
        if _digest(current) != last.current:
            raise _Refused(
                f"{last.target} changed since the edit ({last.summary}); undo refused so those "
                "changes are not lost. Edit the cells instead."
            )
        previous = json.loads(last.previous)
        return _Change(last.target, current, previous, f"Undone: {last.summary}", last)

    async def apply(self, change: _Change, ctx: ToolContext) -> str:
        """Save a planned edit, the version it replaces kept as the notebook's checkpoint;
        remember the previous version in the undo history (or forget the undone one)."""
        host = self.host(ctx)
        await host.checkpoint(change.path)
        await host.write_notebook(change.path, change.after)
        count = len(notebooks.cells(change.after))
        done = f"{change.done} (now {count} cells)."
        try:
            if change.undoes is not None:
                await self._undo.drop(change.undoes)
            else:
                previous = json.dumps(change.before)
                entry = UndoEntry(
                    self.type, change.path, change.done, previous, _digest(change.after)
                )
                await self._undo.push(entry)
        except (StoreError, UnknownSession):  # the edit stands; only its undo is lost
            return f"{done} It cannot be undone: the session store did not keep it."
        return done

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
        if self._host is not None:
            if self._own_kernel:
                with contextlib.suppress(Exception):
                    await self._host.shutdown_kernel(self._own_kernel)
            if not self._served:
                await self._host.close()
                self._host = None
        self._own_kernel = ""


class _EditTool(FunctionTool[Any]):
    """A notebook edit: planned for the confirmation's diff, planned again when it runs
    (the notebook may have changed while the person read the confirmation)."""

    def __init__(
        self,
        toolset: JupyterToolset,
        name: str,
        title: str,
        description: str,
        args: type[BaseModel],
        plan: Callable[[Any, ToolContext], Awaitable[_Change]],
    ) -> None:
        self._toolset = toolset
        self._plan = plan
        super().__init__(
            name=name,
            description=description,
            args=args,
            func=self._run,
            title=title,
            category=toolset.type,
        )

    async def _run(self, args: Any, ctx: ToolContext) -> ToolResult:
        async with self._toolset._edit_lock:
            try:
                change = await self._plan(args, ctx)
                return ToolResult(await self._toolset.apply(change, ctx))
            except _Refused as exc:
                return ToolResult(str(exc), is_error=True)

    async def preview(self, arguments: Mapping[str, Any], ctx: ToolContext) -> str:
        try:
            change = await self._plan(self._args.model_validate(dict(arguments)), ctx)
        except (ValueError, _Refused):
            return ""  # the call itself will report what is wrong
        return notebooks.diff(change.before, change.after, change.path)


def _edit(edit: Callable[..., tuple[dict[str, Any], int]], *args: Any) -> tuple[Any, int]:
    try:
        return edit(*args)
    except notebooks.CellError as exc:
        raise _Refused(str(exc)) from None


def _digest(notebook: dict[str, Any]) -> str:
    """What undo compares: the cells' types and sources (outputs may change meanwhile)."""
    return hashlib.sha256(notebooks.structure(notebook).encode()).hexdigest()


def _with_status(text: str, execution: Execution, timeout: float, kernel_id: str) -> str:
    if execution.status == "not_started" and execution.subshell:
        return (
            f"Kernel {kernel_id} did not run the code in its subshell (the subshell was gone "
            "twice: is the kernel restarting?). Try again."
        )
    if execution.status == "not_started":
        return (
            f"Kernel {kernel_id} stayed busy with other work for {timeout:g} s: the code did not "
            "start (it is still queued there and will run once the kernel is free)."
        )
    if execution.status == "timeout" and execution.subshell:
        note = (
            f"Timed out after {timeout:g} s: the code may still be running in a subshell of "
            f"kernel {kernel_id}, beside the user's running cell. It was not interrupted (an "
            "interrupt would stop the user's cell instead); run_code in this kernel waits "
            "until it ends."
        )
        return f"{text}\n{note}" if text else note
    if execution.status == "timeout":
        stopped = "" if execution.stopped else " but did not stop within a few seconds"
        note = f"Timed out after {timeout:g} s: the kernel was interrupted{stopped}."
        return f"{text}\n{note}" if text else note
    return text or "(no output)"


def _still_running(kernel_id: str, subshell: bool) -> str:
    if subshell:
        return (
            f"The code this session ran earlier in a subshell of kernel {kernel_id} is still "
            "running (it timed out or its turn was stopped, and a subshell cannot be "
            "interrupted without stopping the user's cell). Run code there once it ends, or "
            f"pass kernel_id {OWN!r} to run in this toolset's own kernel."
        )
    return (
        f"The code this session ran earlier in kernel {kernel_id} has not finished (it timed "
        "out or its turn was stopped, and is still queued, or did not stop when interrupted). "
        f"Run code there once it ends, or pass kernel_id {OWN!r} for this toolset's own kernel."
    )
