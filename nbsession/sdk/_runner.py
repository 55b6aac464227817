"""An event loop on a thread of ours, where the sync API runs its coroutines.

A notebook cell runs while the kernel's own loop is running, so a sync call cannot run a loop
in the calling thread (``asyncio.run`` refuses, nesting loses messages). Instead every sync
call submits its coroutine to this loop and waits for the answer: the kernel's loop is never
touched, so nothing deadlocks, and a ``KeyboardInterrupt`` in the waiting thread cancels the
coroutine before it propagates.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """A daemon thread running one asyncio loop until ``close()``."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @property
    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result, from any thread but the loop's."""
        if self.in_loop:
            coro.close()
            raise RuntimeError(
                "A sync nbsession call was made on the SDK's own loop thread; use the async "
                "API (AsyncClient / AsyncSession) from coroutines."
            )
        return wait(self.submit(coro))

    def close(self, timeout: float = 5.0) -> None:
        """Cancel what still runs on the loop (open streams, followed turns), then stop it."""
        if self.loop.is_closed() or not self._thread.is_alive():
            return
        if self.in_loop:
            self.loop.call_soon(self.loop.stop)
            return
        with contextlib.suppress(Exception):
            self.submit(_cancel_all(timeout)).result(timeout + 1)
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


async def _cancel_all(timeout: float) -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)


def wait(future: concurrent.futures.Future[T]) -> T:
    """The future's result; an interrupt of the waiting thread cancels the work first."""
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise


_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def shared_loop() -> LoopThread:
    """The loop every sync HTTP client of this process shares (started on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoopThread("nbsession-sdk")
            atexit.register(_close_shared)
        return _shared


def _close_shared() -> None:
    with contextlib.suppress(Exception):
        if _shared is not None:
            _shared.close()
