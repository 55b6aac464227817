"""Running code in a kernel and collecting what it sends back, as a notebook cell would.

A request's outputs are the IOPub messages whose parent is that request, until the kernel
reports itself idle for it: other clients' messages on the same kernel (the user's notebook)
are skipped. Past the deadline the kernel is interrupted, then given a short grace to stop;
a cancelled call (the turn was stopped) interrupts it too. A request the kernel never began
(it stayed busy with someone else's cell) is not interrupted: that would stop the other cell.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from queue import Empty
from typing import Any, Literal

# How long an interrupted request may take to report itself idle.
INTERRUPT_GRACE = 5.0
# How long a request at its deadline (or cancelled) may take to show it began.
START_GRACE = 1.0
READY_TIMEOUT = 30.0

Status = Literal["ok", "error", "timeout", "not_started"]


@dataclass
class Execution:
    """What one request produced: nbformat outputs, and how it ended."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    status: Status = "ok"
    execution_count: int | None = None
    stopped: bool = True  # after a timeout: the kernel reported the request finished
    _clear_pending: bool = False

    def add(self, msg_type: str, content: dict[str, Any]) -> None:
        """Fold one IOPub message into the outputs (``clear_output`` included)."""
        if msg_type == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self.outputs.clear()
            return
        if msg_type not in ("stream", "display_data", "execute_result", "error"):
            return
        if self._clear_pending:
            self.outputs.clear()
            self._clear_pending = False
        if msg_type == "stream":
            last = self.outputs[-1] if self.outputs else None
            if last and last["output_type"] == "stream" and last["name"] == content["name"]:
                last["text"] += content["text"]
            else:
                self.outputs.append(
                    {"output_type": "stream", "name": content["name"], "text": content["text"]}
                )
        elif msg_type == "error":
            self.status = "error"
            self.outputs.append(
                {
                    "output_type": "error",
                    "ename": content.get("ename", ""),
                    "evalue": content.get("evalue", ""),
                    "traceback": list(content.get("traceback") or []),
                }
            )
        else:
            output = {
                "output_type": msg_type,
                "data": content.get("data") or {},
                "metadata": content.get("metadata") or {},
            }
            if msg_type == "execute_result":
                output["execution_count"] = content.get("execution_count")
            self.outputs.append(output)


class KernelConnection:
    """One client connection to a kernel, reused across calls, one request at a time."""

    def __init__(self, client: Any, interrupt: Callable[[], Awaitable[None]]) -> None:
        self._client = client
        self._interrupt = interrupt
        self._ready = False
        self.lock = asyncio.Lock()

    async def _connect(self) -> None:
        if not self._ready:
            self._client.start_channels()
            await self._client.wait_for_ready(timeout=READY_TIMEOUT)
            self._ready = True

    async def execute(self, code: str, timeout: float) -> Execution:
        """Run ``code``; at most ``timeout`` seconds (then interrupt). Callers hold ``lock``."""
        await self._connect()
        msg_id = self._client.execute(code, allow_stdin=False, stop_on_error=False)
        result = Execution()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        started = False
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if not (started or await self._began(msg_id, result)):
                        result.status = "not_started"
                        return result
                    await self._interrupt()
                    result.stopped = await self._drain(msg_id, result, INTERRUPT_GRACE)
                    result.status = "timeout"  # the interrupt's KeyboardInterrupt is no error
                    return result
                try:
                    msg = await self._client.get_iopub_msg(timeout=remaining)
                except Empty:
                    continue
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                msg_type, content = msg["header"]["msg_type"], msg["content"]
                if msg_type == "status":
                    if content.get("execution_state") == "busy":
                        started = True
                    elif content.get("execution_state") == "idle":
                        return result
                elif msg_type == "execute_input":
                    started = True
                    result.execution_count = content.get("execution_count")
                else:
                    result.add(msg_type, content)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._stop(msg_id, result, started))
            raise

    async def _stop(self, msg_id: str, result: Execution, started: bool) -> None:
        """Interrupt a cancelled request if the kernel began it (its busy status may still be
        on its way to us: the code can run before we read that it does)."""
        if started or await self._began(msg_id, result):
            await self._interrupt()

    async def _began(self, msg_id: str, result: Execution) -> bool:
        """Whether the kernel reports beginning ``msg_id`` within ``START_GRACE`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_GRACE
        while (remaining := deadline - loop.time()) > 0:
            try:
                msg = await self._client.get_iopub_msg(timeout=remaining)
            except Empty:
                return False
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            msg_type, content = msg["header"]["msg_type"], msg["content"]
            if msg_type == "execute_input" or (
                msg_type == "status" and content.get("execution_state") == "busy"
            ):
                return True
            result.add(msg_type, content)
        return False

    async def _drain(self, msg_id: str, result: Execution, grace: float) -> bool:
        """Collect the interrupted request's last outputs; whether it reported idle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (remaining := deadline - loop.time()) > 0:
            try:
                msg = await self._client.get_iopub_msg(timeout=remaining)
            except Empty:
                break
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            msg_type, content = msg["header"]["msg_type"], msg["content"]
            if msg_type == "status" and content.get("execution_state") == "idle":
                return True
            if msg_type != "status":
                result.add(msg_type, content)
        return False

    def close(self) -> None:
        if self._ready:
            self._client.stop_channels()
            self._ready = False
