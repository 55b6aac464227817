"""The local transport: a ``SessionManager`` in this process, on an event loop of its own.

The manager lives on a ``LoopThread`` for its whole life, so its asyncio state is only ever
touched there: a coroutine from any other loop (a kernel's, a script's, the SDK's) is handed
over with ``run_coroutine_threadsafe`` and awaited through ``wrap_future``. Errors are the
manager's own classes, with the ``status`` HTTP would have answered.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import NBSessionError
from ._runner import LoopThread
from .errors import with_status
from .results import Event
from .transport import StreamDropped

if TYPE_CHECKING:
    from ..eventlog import EventSubscription
    from ..manager import SessionManager, TurnStream

T = TypeVar("T")


def default_agents_dir() -> str | None:
    """The server's default agents directory, when it exists, so local() sees the same agents."""
    from jupyter_core.paths import jupyter_data_dir

    path = os.path.join(jupyter_data_dir(), "nbsession", "agents")
    return path if os.path.isdir(path) else None


class LocalEventSource:
    """A subscription to a session's log (or a run's stream), read from another loop."""

    def __init__(
        self,
        transport: LocalTransport,
        source: EventSubscription | TurnStream,
        start_seq: int | None = None,
    ) -> None:
        self._transport = transport
        self._source = source
        self.start_seq = start_seq

    async def read_batch(self) -> list[Event] | None:
        entries = await self._transport.call(self._take)
        if entries is None:
            return None
        return [Event.parse(entry.seq, entry.data) for entry in entries]

    async def _take(self) -> list[Any] | None:
        from ..eventlog import SubscriberDropped

        try:
            first = await self._source.__anext__()
            return [first, *self._source.take_ready()]
        except StopAsyncIteration:
            return None
        except SubscriberDropped as exc:  # fell a full log behind: resume like an HTTP client
            raise StreamDropped(str(exc)) from exc

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):  # the client (and its loop) closed first
            self._transport.runner.loop.call_soon_threadsafe(self._source.close)


class LocalTransport:
    """Sessions in this process: a store file (or memory) and agent files, no server."""

    def __init__(self, db_path: str | None = None, agents_dir: str | None = None) -> None:
        self.where = f"local:{db_path or ':memory:'}"
        self.runner = LoopThread("nbsession-local")
        self._manager: SessionManager | None = None
        try:
            self._manager = self.runner.run(self._open(db_path, agents_dir))
        except BaseException:
            self.runner.close()
            raise
        # A script that never closes its client still ends its turns and store cleanly.
        atexit.register(_close_at_exit, weakref.ref(self))

    @staticmethod
    async def _open(db_path: str | None, agents_dir: str | None) -> SessionManager:
        from ..manager import ManagerConfig, SessionManager

        manager = SessionManager(
            ManagerConfig(
                db_path=db_path or ":memory:",
                agents_dir=agents_dir if agents_dir is not None else default_agents_dir(),
                working_dir=os.getcwd(),
            )
        )
        await manager.start()
        return manager

    @property
    def manager(self) -> SessionManager:
        if self._manager is None:
            raise RuntimeError("This local client is closed.")
        return self._manager

    async def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run ``function()`` on the manager's loop and await it from the caller's loop."""
        try:
            if self.runner.in_loop:
                return await function()
            future = asyncio.run_coroutine_threadsafe(_awaited(function), self.runner.loop)
            return await asyncio.wrap_future(future)
        except NBSessionError as error:
            raise with_status(error) from None

    async def _do(self, method: str, *args: Any) -> Any:
        async def invoke() -> Any:
            result = getattr(self.manager, method)(*args)
            return await result if asyncio.iscoroutine(result) else result

        return await self.call(invoke)

    # -- operations -----------------------------------------------------------------------

    async def ping(self) -> None:
        self.manager  # noqa: B018 (raises once closed)

    async def list_agents(self) -> list[dict[str, Any]]:
        return [agent.to_json() for agent in await self._do("list_agents")]

    async def list_sessions(
        self, limit: int | None, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        if limit is None and before is None:
            summaries, cursor = await self._do("get_sessions"), None
        else:
            summaries, cursor = await self._do("get_session_page", limit, before)
        return [s.to_json() for s in summaries], cursor

    async def create_session(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return (await self._do("create_session", dict(template))).to_json()

    async def import_session(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return (await self._do("import_session", data)).to_json()

    async def delete_session(self, session_id: str) -> None:
        async def delete() -> None:
            await self.manager.delete_session(session_id)
            await self.manager.wait_stopped(session_id, 10.0)

        await self.call(delete)

    async def snapshot(self, session_id: str) -> dict[str, Any]:
        return await self._do("get_session_snapshot", session_id)

    async def recovery(self, session_id: str) -> dict[str, Any]:
        return await self._do("export_session_for_recovery", session_id)

    async def status(self, session_id: str) -> dict[str, Any]:
        return await self._do("get_session_status", session_id)

    async def notebook(self, session_id: str) -> dict[str, Any]:
        return await self._do("export_session_notebook", session_id)

    async def start_turn(
        self,
        session_id: str,
        agent: str,
        messages: Sequence[Mapping[str, Any]],
        model: str,
    ) -> LocalEventSource:
        stream = await self._do("run_session", session_id, agent, "", list(messages), model)
        return LocalEventSource(self, stream, stream.start_seq)

    async def events(self, session_id: str, since: int | None) -> LocalEventSource:
        return LocalEventSource(self, await self._do("subscribe_events", session_id, since))

    async def cancel(self, session_id: str) -> None:
        await self._do("cancel_session", session_id)

    async def resume(self, session_id: str, confirmation: str, reason: str, tool_name: str) -> None:
        await self._do("resume_session", session_id, confirmation, reason, tool_name)

    async def elicitation(
        self,
        session_id: str,
        action: str,
        content: Mapping[str, Any] | None,
        elicitation_id: str,
    ) -> None:
        await self._do("resume_elicitation", session_id, action, content, elicitation_id)

    async def steer(self, session_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        await self._do("steer_session", session_id, list(messages))

    async def follow_up(
        self, session_id: str, messages: Sequence[Mapping[str, Any]], idempotency_key: str
    ) -> dict[str, Any]:
        result = await self._do("follow_up_session", session_id, list(messages), idempotency_key)
        return result.to_json()

    async def models(self, session_id: str) -> dict[str, Any]:
        return await self._do("available_session_models", session_id)

    async def set_title(self, session_id: str, title: str) -> None:
        await self._do("update_session_title", session_id, title)

    async def set_starred(self, session_id: str, starred: bool) -> None:
        await self._do("set_session_starred", session_id, starred)

    async def aclose(self) -> None:
        """Stop the manager (running turns are cancelled and kept) and its loop thread."""
        if self.runner.in_loop:
            raise RuntimeError("A local client cannot be closed from its manager's own loop.")
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """``aclose()`` from a thread that runs no loop of this client's."""
        manager, self._manager = self._manager, None
        if manager is None:
            return
        try:
            with contextlib.suppress(Exception):
                self.runner.run(manager.shutdown())
        finally:
            self.runner.close()


def _close_at_exit(ref: weakref.ref[LocalTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport.close()


async def _awaited(function: Callable[[], Awaitable[T]]) -> T:
    return await function()
