"""The seam between the ``jupyter`` toolset and the kernels and notebooks it works on.

Inside a Jupyter server the toolset must use the server's own kernel manager and contents
manager: the user's notebook kernels live there, and notebooks must be read and saved the way
JupyterLab does (through the contents manager, whatever stores them). The core cannot import
jupyter-server, so it only knows this small protocol; the server extension passes an
implementation over its managers (``nbsession.server.jupyter_host``), and anywhere else (the
SDK's ``local()``, a script) the toolset uses `StandaloneHost`: kernels it starts with
jupyter_client, notebooks read and written with nbformat under the session's working dir.

Paths given to a host are API paths: relative to ``root_dir``, ``/``-separated, already
confined by the toolset.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class UnknownKernel(LookupError):
    """A kernel id the host does not run (never started, or shut down)."""


class NotebookNotFound(LookupError):
    """A notebook path with nothing (or a directory) behind it."""


@dataclass(frozen=True)
class KernelInfo:
    """A running kernel as ``list_kernels`` shows it; ``notebooks`` are the API paths of the
    notebooks attached to it (the server's sessions), ``execution_state`` is ``idle``, ``busy``,
    ``starting`` or ``unknown``."""

    id: str
    name: str
    execution_state: str = "unknown"
    notebooks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entry:
    """A directory entry under the root: ``type`` is ``notebook``, ``directory`` or ``file``."""

    path: str
    type: str


class JupyterHost(Protocol):
    """Kernels and notebooks, as the toolset needs them from whoever hosts it.

    ``root_dir`` is the directory API paths are relative to and the toolset confines them to
    (the server's ``root_dir``).
    """

    @property
    def root_dir(self) -> str: ...

    async def start_kernel(self, kernel_name: str, cwd: str) -> str:
        """Start a kernel (``""``: the default kernel spec) in API directory ``cwd``."""

    async def shutdown_kernel(self, kernel_id: str) -> None: ...

    async def interrupt_kernel(self, kernel_id: str) -> None: ...

    def kernel_client(self, kernel_id: str) -> Any:
        """A new ``jupyter_client`` async kernel client (channels not started) for a running
        kernel; raises `UnknownKernel`."""

    async def list_kernels(self) -> list[KernelInfo]: ...

    async def kernel(self, kernel_id: str) -> KernelInfo:
        """One running kernel; raises `UnknownKernel`."""

    async def read_notebook(self, path: str) -> dict[str, Any]:
        """The notebook's nbformat-4 JSON; raises `NotebookNotFound`."""

    async def write_notebook(self, path: str, notebook: dict[str, Any]) -> None: ...

    async def checkpoint(self, path: str) -> None:
        """Keep the notebook's current version as its Jupyter checkpoint (what JupyterLab's
        File > Revert Notebook to Checkpoint restores), before the toolset overwrites it."""

    async def list_dir(self, path: str) -> list[Entry]:
        """A directory's visible entries; raises `NotebookNotFound` when it is not one.
        (The toolset checks each entry lies under the root before using it.)"""

    def file_written(self, os_path: str) -> None:
        """A tool wrote this file (an absolute path) directly, not through the host: let what
        shows it know (JupyterLab reloads an open, unmodified editor). Called on the event
        loop's thread; a file outside ``root_dir`` is ignored."""

    async def close(self) -> None:
        """Release what the host itself holds (a standalone host's kernels)."""


def client_of(manager: Any) -> Any:
    """A new client of a jupyter_client kernel manager, with a session of its own.

    ``manager.client()`` reuses the manager's session, whose id is the client's ZeroMQ
    identity on the kernel's shell and control sockets: two clients with one identity take
    each other's replies (a second toolset on the same kernel, or the server's own use of the
    manager). Our connections read control replies (subshells), so each gets its own id.
    """
    session = manager.session.clone()
    session.session = str(uuid.uuid4())
    return manager.client(session=session)


async def maybe_await(value: T | Any) -> T:
    """The value of a call that may be sync or async: jupyter-server's managers are async
    by default but a deployment may configure sync ones."""
    if inspect.isawaitable(value):
        return await value
    return value


class StandaloneHost:
    """Kernels started with jupyter_client and notebooks on disk, for a session outside a
    Jupyter server. It runs only the kernels it started and shuts them down on ``close``."""

    def __init__(self, root_dir: str) -> None:
        self._root = os.path.abspath(root_dir or os.getcwd())
        self._kernels: dict[str, Any] = {}  # id -> jupyter_client AsyncKernelManager

    @property
    def root_dir(self) -> str:
        return self._root

    def _os_path(self, path: str) -> str:
        return os.path.join(self._root, *[part for part in path.split("/") if part])

    async def start_kernel(self, kernel_name: str, cwd: str) -> str:
        from jupyter_client.manager import AsyncKernelManager

        manager = AsyncKernelManager(**({"kernel_name": kernel_name} if kernel_name else {}))
        await manager.start_kernel(cwd=self._os_path(cwd))
        kernel_id = str(uuid.uuid4())
        self._kernels[kernel_id] = manager
        return kernel_id

    def _manager(self, kernel_id: str) -> Any:
        try:
            return self._kernels[kernel_id]
        except KeyError:
            raise UnknownKernel(kernel_id) from None

    async def shutdown_kernel(self, kernel_id: str) -> None:
        manager = self._kernels.pop(kernel_id, None)
        if manager is not None:
            await manager.shutdown_kernel(now=True)

    async def interrupt_kernel(self, kernel_id: str) -> None:
        await self._manager(kernel_id).interrupt_kernel()

    def kernel_client(self, kernel_id: str) -> Any:
        return client_of(self._manager(kernel_id))

    async def list_kernels(self) -> list[KernelInfo]:
        return [await self.kernel(kernel_id) for kernel_id in list(self._kernels)]

    async def kernel(self, kernel_id: str) -> KernelInfo:
        manager = self._manager(kernel_id)
        return KernelInfo(id=kernel_id, name=manager.kernel_name)

    # Notebook files are read and written on a thread: a large one must not stall the loop.

    async def read_notebook(self, path: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._read, path)

    async def write_notebook(self, path: str, notebook: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write, path, notebook)

    async def list_dir(self, path: str) -> list[Entry]:
        return await asyncio.to_thread(self._list, path)

    async def checkpoint(self, path: str) -> None:
        await asyncio.to_thread(self._checkpoint, path)

    def _checkpoint(self, path: str) -> None:
        """Jupyter's file checkpoint layout, so a server opened on this folder later offers
        the version to revert to: ``.ipynb_checkpoints/<name>-checkpoint.ipynb``."""
        where = self._os_path(path)
        folder = os.path.join(os.path.dirname(where), ".ipynb_checkpoints")
        stem, extension = os.path.splitext(os.path.basename(where))
        os.makedirs(folder, exist_ok=True)
        shutil.copy2(where, os.path.join(folder, f"{stem}-checkpoint{extension}"))

    def _read(self, path: str) -> dict[str, Any]:
        where = self._os_path(path)
        if not os.path.isfile(where):
            raise NotebookNotFound(path)
        with open(where, encoding="utf-8") as file:
            return json.load(file)  # type: ignore[no-any-return]

    def _write(self, path: str, notebook: dict[str, Any]) -> None:
        import nbformat

        node = nbformat.from_dict(notebook)
        nbformat.validate(node)
        where = self._os_path(path)
        os.makedirs(os.path.dirname(where), exist_ok=True)
        temporary = f"{where}.nbsession-{uuid.uuid4().hex[:8]}"
        with open(temporary, "w", encoding="utf-8") as file:
            nbformat.write(node, file)
        os.replace(temporary, where)  # a reader never sees half a notebook

    def _list(self, path: str) -> list[Entry]:
        where = self._os_path(path)
        if not os.path.isdir(where):
            raise NotebookNotFound(path)
        entries = []
        for entry in sorted(os.scandir(where), key=lambda e: e.name):
            if entry.name.startswith(".") or entry.is_symlink():
                continue  # links are not followed: the toolset stays under the root
            api_path = f"{path.strip('/')}/{entry.name}".lstrip("/")
            if entry.is_dir():
                entries.append(Entry(api_path, "directory"))
            else:
                kind = "notebook" if entry.name.endswith(".ipynb") else "file"
                entries.append(Entry(api_path, kind))
        return entries

    def file_written(self, os_path: str) -> None:
        """Nothing shows files outside a server."""

    async def close(self) -> None:
        for kernel_id in list(self._kernels):
            await self.shutdown_kernel(kernel_id)
