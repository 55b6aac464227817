"""Clients: ``AsyncClient`` and its sync twin ``Client``, over HTTP or a local manager.

``nbsession.connect()`` and ``nbsession.local()`` build a ``Client``; ``await
AsyncClient.connect()`` and ``await AsyncClient.local()`` build the async one. Both have the
same methods (awaited or not) and return ``Session`` / ``AsyncSession`` handles.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from ..notebook import json_cut_short
from ._runner import LoopThread, shared_loop
from .discovery import find_server, kernel_origin
from .errors import NBSessionError
from .results import AgentInfo, BatchReport, FileOutcome, SessionInfo, SessionPage
from .session import DEFAULT_AGENT, AsyncSession, Session
from .transport import Transport


def _http(url: str | None, token: str | None, timeout: float) -> Transport:
    from .transport_http import HTTPTransport

    server = find_server(url, token)
    return HTTPTransport(server.url, server.token, uds=server.uds, timeout=timeout)


def _local(db_path: str | os.PathLike[str] | None, agents_dir: str | None) -> Transport:
    from .transport_local import LocalTransport

    return LocalTransport(os.fspath(db_path) if db_path is not None else None, agents_dir)


class AsyncClient:
    """Sessions of one server (or of this process), for ``await``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    @classmethod
    async def connect(
        cls, url: str | None = None, token: str | None = None, *, timeout: float = 30.0
    ) -> AsyncClient:
        """The server at ``url`` (or found as ``nbsession.connect`` says), checked to answer."""
        client = cls(_http(url, token, timeout))
        try:
            await client._transport.ping()
        except BaseException:
            await client.aclose()
            raise
        return client

    @classmethod
    async def local(
        cls, db_path: str | os.PathLike[str] | None = None, agents_dir: str | None = None
    ) -> AsyncClient:
        """A session manager in this process (see ``nbsession.local``)."""
        return cls(await asyncio.to_thread(_local, db_path, agents_dir))

    @property
    def where(self) -> str:
        """The API URL (``.../nbsession``) or ``local:<store>``."""
        return self._transport.where

    def __repr__(self) -> str:
        return f"<AsyncClient {self.where}>"

    async def agents(self) -> list[AgentInfo]:
        return [AgentInfo.from_json(a) for a in await self._transport.list_agents()]

    async def sessions(self, limit: int | None = None, before: str | None = None) -> SessionPage:
        """Session summaries, newest first: at most ``limit`` of them, older than the cursor
        ``before`` (a page's ``next_cursor``) when given."""
        if limit is not None and limit < 0:
            raise ValueError("limit cannot be negative.")
        rows, cursor = await self._transport.list_sessions(limit, before)
        return SessionPage([SessionInfo.from_json(row) for row in rows[:limit]], cursor)

    async def session(self, session_id: str, agent: str = DEFAULT_AGENT) -> AsyncSession:
        """The session ``session_id`` (``UnknownSession`` if there is none)."""
        await self._transport.status(session_id)
        return AsyncSession(self._transport, session_id, agent)

    async def create_session(self, agent: str = DEFAULT_AGENT, **template: Any) -> AsyncSession:
        """A new session whose runs use the agent source ``agent``.

        ``template`` takes the SPEC's creation fields: ``title``, ``working_dir``,
        ``tools_approved``, ``permissions``, ``max_iterations``, ``agent_model_overrides``.
        Created in a kernel, the session records it (``kernel_id``, ``notebook_path``),
        unless ``template`` says otherwise.
        """
        created = await self._transport.create_session({**kernel_origin(), **template})
        return AsyncSession(self._transport, created["id"], agent)

    async def import_notebook(
        self, path: str | os.PathLike[str], agent: str = DEFAULT_AGENT
    ) -> AsyncSession:
        """Recreate a session from an exported .ipynb (or a recovery JSON file)."""
        data = await asyncio.to_thread(_read, os.fspath(path))
        created = await self._transport.import_session(data)
        return AsyncSession(self._transport, created["id"], agent)

    async def export_all(
        self,
        folder: str | os.PathLike[str],
        sessions: Iterable[SessionInfo | str] | None = None,
    ) -> BatchReport:
        """Every session (or those given, as ids or list rows) as a notebook in ``folder``.

        The folder is created if needed; each file is named by ``notebook_filename`` (an
        existing file of that name is replaced: exporting again refreshes it). A session that
        cannot be exported (deleted meanwhile, a full disk) is reported and the rest go on.
        """
        target = Path(folder)
        await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
        rows = await self.sessions() if sessions is None else list(sessions)
        outcomes = []
        for row in rows:
            session_id, title = (row, "") if isinstance(row, str) else (row.id, row.title)
            path = target / notebook_filename(session_id, title)
            try:
                await AsyncSession(self._transport, session_id, DEFAULT_AGENT).export_notebook(path)
            except (NBSessionError, OSError) as exc:
                outcomes.append(FileOutcome(str(path), session_id, _reason(exc)))
            else:
                outcomes.append(FileOutcome(str(path), session_id))
        return BatchReport("exported", str(target), tuple(outcomes))

    async def import_folder(
        self, folder: str | os.PathLike[str], agent: str = DEFAULT_AGENT
    ) -> BatchReport:
        """Import every ``*.ipynb`` of ``folder`` (not its sub-folders), in name order.

        A file that is refused (not an export, damaged, truncated: see ``import_notebook``)
        is reported with its reason and creates nothing; the others are still imported.
        ``FileNotFoundError`` if ``folder`` is not a folder.
        """
        source = Path(folder)
        if not await asyncio.to_thread(source.is_dir):
            raise FileNotFoundError(f"{source} is not a folder.")
        paths = await asyncio.to_thread(
            lambda: sorted(p for p in source.iterdir() if p.suffix == ".ipynb" and p.is_file())
        )
        outcomes = []
        for path in paths:
            try:
                session = await self.import_notebook(path, agent)
            except (NBSessionError, OSError, ValueError) as exc:
                outcomes.append(FileOutcome(str(path), None, _reason(exc)))
            else:
                outcomes.append(FileOutcome(str(path), session.id))
        return BatchReport("imported", str(source), tuple(outcomes))

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


_UNSAFE_NAME = re.compile(r"[^\w.-]+")


def notebook_filename(session_id: str, title: str = "") -> str:
    """``<title>-<id>.ipynb``: a file name that says what the session was and stays unique.

    The title is shortened and stripped of characters file systems or shells dislike; the id
    keeps two sessions of the same title apart.
    """
    slug = _UNSAFE_NAME.sub("-", title).strip("-.")[:40].rstrip("-.")
    safe_id = _UNSAFE_NAME.sub("-", session_id)
    return f"{slug}-{safe_id}.ipynb" if slug else f"{safe_id}.ipynb"


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _read(path: str) -> Any:
    """The JSON in ``path``; a file cut short (an interrupted copy) is called truncated."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        if json_cut_short(text, exc):
            raise ValueError(
                f"{path} is truncated: its JSON stops after {len(text)} characters, "
                "before the notebook is complete."
            ) from None
        raise ValueError(f"{path} is not JSON: {exc}") from None


class Client:
    """Sessions of one server (or of this process), sync: safe in notebook cells."""

    def __init__(self, aio: AsyncClient, runner: LoopThread | None = None) -> None:
        self._aio = aio
        self._runner = runner or shared_loop()

    @property
    def aio(self) -> AsyncClient:
        """The ``AsyncClient`` underneath (it lives on the SDK's loop thread)."""
        return self._aio

    @property
    def where(self) -> str:
        return self._aio.where

    def __repr__(self) -> str:
        return f"<Client {self.where}>"

    def _session(self, aio: AsyncSession) -> Session:
        return Session(aio, self._runner)

    def agents(self) -> list[AgentInfo]:
        return self._runner.run(self._aio.agents())

    def sessions(self, limit: int | None = None, before: str | None = None) -> SessionPage:
        """Session summaries, newest first (see ``AsyncClient.sessions``)."""
        return self._runner.run(self._aio.sessions(limit, before))

    def session(self, session_id: str, agent: str = DEFAULT_AGENT) -> Session:
        """The session ``session_id`` (``UnknownSession`` if there is none)."""
        return self._session(self._runner.run(self._aio.session(session_id, agent)))

    def create_session(self, agent: str = DEFAULT_AGENT, **template: Any) -> Session:
        """A new session whose runs use the agent source ``agent`` (see ``AsyncClient``)."""
        return self._session(self._runner.run(self._aio.create_session(agent, **template)))

    def import_notebook(self, path: str | os.PathLike[str], agent: str = DEFAULT_AGENT) -> Session:
        """Recreate a session from an exported .ipynb (or a recovery JSON file)."""
        return self._session(self._runner.run(self._aio.import_notebook(path, agent)))

    def export_all(
        self,
        folder: str | os.PathLike[str],
        sessions: Iterable[SessionInfo | str] | None = None,
    ) -> BatchReport:
        """Every session (or those given) as a notebook in ``folder`` (see ``AsyncClient``)."""
        return self._runner.run(self._aio.export_all(folder, sessions))

    def import_folder(
        self, folder: str | os.PathLike[str], agent: str = DEFAULT_AGENT
    ) -> BatchReport:
        """Import every ``*.ipynb`` of ``folder``, reporting refused files (see ``AsyncClient``)."""
        return self._runner.run(self._aio.import_folder(folder, agent))

    def close(self) -> None:
        self._runner.run(self._aio.aclose())

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def connect(url: str | None = None, token: str | None = None, *, timeout: float = 30.0) -> Client:
    """A client of an nbsession server.

    With no arguments, inside a kernel a Jupyter server started, it finds that server and its
    token; elsewhere it reads ``NBSESSION_URL`` / ``NBSESSION_TOKEN``. ``url`` is the server's
    base URL (``http://host:8888/``) or the API's (``.../nbsession``). Raises
    ``ServerNotFound``, ``ConnectionFailed`` or ``Unauthorized`` at once if it cannot talk
    to the server.
    """
    runner = shared_loop()
    return Client(runner.run(AsyncClient.connect(url, token, timeout=timeout)), runner)


def local(db_path: str | os.PathLike[str] | None = None, agents_dir: str | None = None) -> Client:
    """A session manager inside this process, with the same API and no server.

    ``db_path`` is a SQLite file (None: in memory, gone with the process); ``agents_dir``
    adds agent files to the bundled offline ``default`` agent (None: the server's default
    directory, when it exists). The manager runs on an event loop of its own thread.
    """
    runner = shared_loop()
    return Client(runner.run(AsyncClient.local(db_path, agents_dir)), runner)
