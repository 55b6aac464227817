"""The jupyter toolset's host inside a Jupyter server: its kernel, contents and session managers.

The kernels are the server's own (the user's notebook kernels, and kernels the toolset starts,
listed in JupyterLab like any other); notebooks are read and saved through the contents
manager, so whatever stores them (files, a database) and its hooks apply. Both managers may
be sync or async (jupyter-server's are async by default).
"""

from __future__ import annotations

from typing import Any

from ..tools.jupyter import (
    Entry,
    KernelInfo,
    NotebookNotFound,
    UnknownKernel,
    client_of,
    maybe_await,
)
from . import file_events


class ServerJupyterHost:
    """`JupyterHost` over a ``ServerApp``'s managers."""

    def __init__(self, serverapp: Any) -> None:
        self._app = serverapp
        file_events.register(serverapp.event_logger)

    @property
    def root_dir(self) -> str:
        return str(self._app.root_dir)

    @property
    def _kernels(self) -> Any:
        return self._app.kernel_manager

    @property
    def _contents(self) -> Any:
        return self._app.contents_manager

    def _check(self, kernel_id: str) -> None:
        if kernel_id not in self._kernels.list_kernel_ids():
            raise UnknownKernel(kernel_id)

    async def start_kernel(self, kernel_name: str, cwd: str) -> str:
        options = {"kernel_name": kernel_name} if kernel_name else {}
        return str(await maybe_await(self._kernels.start_kernel(path=cwd, **options)))

    async def shutdown_kernel(self, kernel_id: str) -> None:
        if kernel_id in self._kernels.list_kernel_ids():
            await maybe_await(self._kernels.shutdown_kernel(kernel_id))

    async def interrupt_kernel(self, kernel_id: str) -> None:
        self._check(kernel_id)
        await maybe_await(self._kernels.interrupt_kernel(kernel_id))

    def kernel_client(self, kernel_id: str) -> Any:
        self._check(kernel_id)
        return client_of(self._kernels.get_kernel(kernel_id))

    async def _notebooks(self) -> dict[str, list[str]]:
        """Kernel id -> API paths of the notebooks whose server sessions use it."""
        sessions = await maybe_await(self._app.session_manager.list_sessions())
        found: dict[str, list[str]] = {}
        for session in sessions:
            kernel = session.get("kernel") or {}
            if kernel.get("id") and session.get("path"):
                found.setdefault(kernel["id"], []).append(session["path"])
        return found

    async def list_kernels(self) -> list[KernelInfo]:
        notebooks = await self._notebooks()
        return [
            _info(model, notebooks.get(model["id"], []))
            for model in await maybe_await(self._kernels.list_kernels())
        ]

    async def kernel(self, kernel_id: str) -> KernelInfo:
        self._check(kernel_id)
        model = self._kernels.kernel_model(kernel_id)
        return _info(model, (await self._notebooks()).get(kernel_id, []))

    async def read_notebook(self, path: str) -> dict[str, Any]:
        if not await maybe_await(self._contents.file_exists(path)):
            raise NotebookNotFound(path)
        model = await maybe_await(self._contents.get(path, content=True, type="notebook"))
        return dict(model["content"])

    async def write_notebook(self, path: str, notebook: dict[str, Any]) -> None:
        model = {"type": "notebook", "format": "json", "content": notebook}
        await maybe_await(self._contents.save(model, path))

    async def checkpoint(self, path: str) -> None:
        await maybe_await(self._contents.create_checkpoint(path))

    async def list_dir(self, path: str) -> list[Entry]:
        if not await maybe_await(self._contents.dir_exists(path)):
            raise NotebookNotFound(path)
        model = await maybe_await(self._contents.get(path, content=True, type="directory"))
        return [Entry(entry["path"], entry["type"]) for entry in model["content"]]

    def file_written(self, os_path: str) -> None:
        file_events.emit_written(self._app.event_logger, self.root_dir, os_path)

    async def close(self) -> None:
        """Nothing to release: the managers belong to the server."""


def _info(model: dict[str, Any], notebooks: list[str]) -> KernelInfo:
    return KernelInfo(
        id=model["id"],
        name=model.get("name", ""),
        execution_state=model.get("execution_state") or "unknown",
        notebooks=tuple(notebooks),
    )
