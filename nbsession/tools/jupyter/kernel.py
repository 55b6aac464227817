"""Running code in a kernel and collecting what it sends back, as a notebook cell would.

A request's outputs are the IOPub messages whose parent is that request, until the kernel
reports itself idle for it: other clients' messages on the same kernel (the user's notebook)
are skipped.

Where a request runs. The kernel of the session's notebook is often busy with the very cell
that started the turn (``%%agent``, a blocking ``session.run()``): queued behind that cell, our
code would never start. So the connection follows the main shell's state itself, and when the
main shell is busy runs the code in a kernel subshell of its own (ipykernel 7+, JEP 91: a
thread of the same kernel, with the same namespace, that runs beside the main shell; created
on the control channel, addressed by ``subshell_id`` in a request's header). When the main
shell is idle the code runs there, as a cell. A kernel without subshells (its
``kernel_info_reply`` lacks the ``kernel subshells`` feature) that stays busy is refused.

The main shell's state comes from the IOPub ``status`` messages this connection reads, not
from jupyter-server's ``execution_state``: any subshell's idle status sets that one idle while
the main shell still runs. A status is the main shell's when its parent is an
``execute_request`` whose header has no ``subshell_id`` (control requests, such as a front
end's usage or interrupt requests, report busy and idle too and must not count). What ran
before we connected is learnt from a ``kernel_info_request`` sent to the main shell: it is
answered at once by an idle main shell and waits behind a running cell; unanswered within
``PROBE_GRACE`` the main shell counts as busy until that answer, or the end of the running
cell, shows it free. Guessing busy only costs a run in the subshell; guessing idle would
queue our code behind the user's cell.

Stopping. On the main shell, past the deadline the kernel is interrupted, then given a short
grace to stop; a cancelled call (the turn was stopped) interrupts it too. A request the kernel
never began (it stayed busy with someone else's cell) is not interrupted: that would stop the
other cell. A subshell cannot be stopped: ipykernel 7.4's ``interrupt_request`` sends SIGINT,
which Python delivers to the main thread only, so it would stop the user's running cell and
not our code, and there is no per-subshell cancel. Such a request is left to finish, and until
it has the connection refuses new code (`StillRunning`): at most one request of ours runs in
the user's kernel, never a pile of runaway threads. The subshell is deleted when the
connection closes, once it is idle: ipykernel joins a subshell's thread when deleting it,
which would stall the kernel's shell channel (the user's next cells, interrupts) until a
running request ended.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from queue import Empty
from typing import Any, Literal

# How long an interrupted request may take to report itself idle.
INTERRUPT_GRACE = 5.0
# How long a request at its deadline (or cancelled) may take to show it began.
START_GRACE = 1.0
READY_TIMEOUT = 30.0
# How long the control channel may take to answer kernel_info before the shell is tried (a
# kernel predating JEP 80 answers kernel_info on the shell channel only).
CONTROL_GRACE = 2.0
# How long an idle main shell may take to answer the probe (see the module's docstring).
PROBE_GRACE = 1.0
# How long earlier code of ours (interrupted, say), or the busy main shell of a kernel without
# subshells, may take to end before a run is refused.
BUSY_GRACE = 5.0
# How long the kernel may take to answer a subshell request on its control channel.
CONTROL_TIMEOUT = 10.0
# How often a wait on a condition also reads the shell replies.
REPLY_POLL = 0.2
# How often a closed connection whose subshell still runs our code checks the kernel lives.
LINGER_POLL = 5.0
SUBSHELLS = "kernel subshells"

Status = Literal["ok", "error", "timeout", "not_started"]


class KernelBusy(Exception):
    """The main shell is busy and the kernel has no subshells to run code beside it."""


class StillRunning(Exception):
    """Code this connection sent earlier has not finished (it timed out or its call was
    cancelled); ``subshell`` says whether it runs in the subshell or the main shell."""

    def __init__(self, subshell: bool) -> None:
        super().__init__("subshell" if subshell else "main shell")
        self.subshell = subshell


class KernelUnreachable(Exception):
    """The kernel did not answer a request on its control channel (the message says which)."""


@dataclass
class Execution:
    """What one request produced: nbformat outputs, and how it ended."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    status: Status = "ok"
    execution_count: int | None = None
    stopped: bool = True  # after a timeout: the kernel reported the request finished
    subshell: bool = False  # it ran in the connection's subshell, beside a busy main shell
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


@dataclass(frozen=True)
class _Request:
    """A request of ours the kernel has not reported finished."""

    msg_id: str
    subshell: bool


# Connections closed while their subshell still runs our code: they delete it once it ends.
_LINGERING: set[asyncio.Task[None]] = set()


class KernelConnection:
    """One client connection to a kernel, reused across calls, one request at a time
    (callers hold ``lock``).

    IOPub is read while a call runs; what arrived in between is read at the start of the next
    call, so the main shell's state is current when the call picks where to run.
    """

    def __init__(self, client: Any, interrupt: Callable[[], Awaitable[None]]) -> None:
        self._client = client
        self._interrupt = interrupt
        self._ready = False
        self.subshells = False  # the kernel supports subshells
        self._subshell_id = ""  # ours, created when first needed
        self._main_running: set[str] = set()  # main-shell execute_requests begun, not ended
        self._probe = ""  # a kernel_info_request to the main shell, not answered yet
        self._unfinished: _Request | None = None
        self.lock = asyncio.Lock()

    @property
    def main_busy(self) -> bool:
        return bool(self._main_running or self._probe)

    async def execute(self, code: str, timeout: float) -> Execution:
        """Run ``code`` for at most ``timeout`` seconds: in the main shell when it is idle,
        else in our subshell. Raises `StillRunning` while earlier code of ours runs,
        `KernelBusy` for a busy kernel without subshells, `KernelUnreachable`."""
        await self._connect()
        await self._catch_up()
        unfinished = self._unfinished
        if unfinished is not None and not await self._wait(self._finished, BUSY_GRACE):
            raise StillRunning(unfinished.subshell)
        if (
            self.main_busy
            and not self.subshells
            and not await self._wait(lambda: not self.main_busy, BUSY_GRACE)
        ):
            raise KernelBusy
        if not self.main_busy:
            return await self._run(code, timeout, "")
        execution = await self._run(code, timeout, await self._subshell())
        if execution.status == "not_started":  # the subshell was gone: make another, once
            self._subshell_id = ""
            execution = await self._run(code, timeout, await self._subshell())
        return execution

    # -- connecting -----------------------------------------------------------------------

    async def _connect(self) -> None:
        if self._ready:
            return
        self._client.start_channels()
        try:
            info = await self._kernel_info()
        except BaseException:
            self._client.stop_channels()
            raise
        self.subshells = SUBSHELLS in (info.get("supported_features") or [])
        self._ready = True
        self._probe = self._client.kernel_info()  # the shell channel: the main shell answers
        await self._wait(lambda: not self._probe, PROBE_GRACE)

    async def _kernel_info(self) -> dict[str, Any]:
        """The kernel's ``kernel_info_reply`` content, asked on the control channel (JEP 80:
        answered even while a cell runs) until IOPub shows that request's status too: then our
        IOPub subscription is live and no later status is missed. A kernel that does not
        answer on control is waited for the old way, on the shell channel (no subshells)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while loop.time() < deadline:
            try:
                reply = await self._control("kernel_info_request", {}, CONTROL_GRACE)
            except KernelUnreachable:
                try:
                    await self._client.wait_for_ready(timeout=max(deadline - loop.time(), 1.0))
                except RuntimeError as exc:
                    raise KernelUnreachable(str(exc)) from None
                return {}
            if await self._until(partial(_answers, _parent(reply)), START_GRACE):
                return dict(reply["content"])
        raise KernelUnreachable(f"the kernel did not answer within {READY_TIMEOUT:g} s")

    async def _control(self, msg_type: str, content: dict[str, Any], timeout: float) -> Any:
        """Send a request on the control channel and wait for its reply."""
        request = self._client.session.msg(msg_type, content)
        self._client.control_channel.send(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                reply = await self._client.get_control_msg(timeout=remaining)
            except Empty:
                break
            if _parent(reply) == request["header"]["msg_id"]:
                return reply
        raise KernelUnreachable(f"no reply to {msg_type} within {timeout:g} s")

    async def _subshell(self) -> str:
        if not self._subshell_id:
            reply = await self._control("create_subshell_request", {}, CONTROL_TIMEOUT)
            if reply["content"].get("status") != "ok":
                reason = reply["content"].get("evalue", "")
                raise KernelUnreachable(f"the kernel refused a subshell: {reason}")
            self._subshell_id = str(reply["content"]["subshell_id"])
        return self._subshell_id

    # -- following IOPub ------------------------------------------------------------------

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        """The next IOPub message within ``timeout`` seconds (None if none came), once the
        state it tells of is recorded."""
        try:
            msg: dict[str, Any] = await self._client.get_iopub_msg(timeout=timeout)
        except Empty:
            return None
        if msg["header"]["msg_type"] == "status":
            self._track(msg.get("parent_header") or {}, msg["content"].get("execution_state"))
        return msg

    def _track(self, parent: dict[str, Any], state: str | None) -> None:
        """Fold one status into what we know of the kernel (see the module's docstring)."""
        if state == "starting":  # the kernel (re)started: its cells and subshells are gone
            self._main_running.clear()
            self._probe = self._subshell_id = ""
            self._unfinished = None
            return
        msg_id = parent.get("msg_id", "")
        if state == "idle":
            if self._unfinished is not None and msg_id == self._unfinished.msg_id:
                self._unfinished = None
            if msg_id == self._probe:
                self._probe = ""
        if parent.get("msg_type") != "execute_request" or parent.get("subshell_id"):
            return
        if state == "busy":
            self._main_running.add(msg_id)
        elif state == "idle":
            self._main_running.discard(msg_id)
            self._probe = ""  # the cell that was running when we connected (if any) is over

    async def _until(self, done: Callable[[dict[str, Any]], bool], grace: float) -> bool:
        """Read IOPub until ``done(message)`` holds or ``grace`` seconds pass; whether it
        held."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while (remaining := deadline - loop.time()) > 0:
            msg = await self._next(remaining)
            if msg is not None and done(msg):
                return True
        return False

    async def _wait(self, condition: Callable[[], bool], grace: float) -> bool:
        """Read IOPub (and the shell replies) until ``condition()`` holds (it may already) or
        ``grace`` seconds pass; whether it held."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while True:
            await self._replies()
            if condition():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._next(min(remaining, REPLY_POLL))

    def _finished(self) -> bool:
        return self._unfinished is None

    async def _catch_up(self) -> None:
        """Read what IOPub and the shell channel hold already, without waiting for more."""
        while await self._next(0) is not None:
            pass
        await self._replies()

    async def _replies(self) -> None:
        """Read the shell replies that came (they would pile up unread otherwise). The reply
        to our unfinished request also tells it ended: replies are never dropped, whereas a
        subscriber that lags far behind a chatty cell can lose IOPub messages, its status
        among them."""
        while True:
            try:
                reply = await self._client.get_shell_msg(timeout=0)
            except Empty:
                return
            if self._unfinished is not None and _parent(reply) == self._unfinished.msg_id:
                self._unfinished = None
            if _parent(reply) == self._probe:
                self._probe = ""

    # -- running ------------------------------------------------------------------------

    async def _run(self, code: str, timeout: float, subshell_id: str) -> Execution:
        """One execute_request, to the main shell or (``subshell_id``) our subshell."""
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": False,
        }
        request = self._client.session.msg("execute_request", content)
        if subshell_id:
            request["header"]["subshell_id"] = subshell_id
        msg_id = request["header"]["msg_id"]
        self._unfinished = _Request(msg_id, bool(subshell_id))  # until its idle status
        self._client.shell_channel.send(request)
        result = Execution(subshell=bool(subshell_id))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        started = ran = False
        try:
            while (remaining := deadline - loop.time()) > 0:
                msg = await self._next(remaining)
                if msg is None or _parent(msg) != msg_id:
                    continue
                msg_type, content = msg["header"]["msg_type"], msg["content"]
                if msg_type == "status":
                    if content.get("execution_state") == "busy":
                        started = True
                    elif content.get("execution_state") == "idle":
                        if subshell_id and not ran:
                            result.status = "not_started"  # ipykernel: unknown subshell_id
                        return result
                elif msg_type == "execute_input":
                    started = ran = True
                    result.execution_count = content.get("execution_count")
                else:
                    result.add(msg_type, content)
            return await self._expire(msg_id, result, started)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._stop(msg_id, result, started))
            raise

    async def _expire(self, msg_id: str, result: Execution, started: bool) -> Execution:
        """A request at its deadline: interrupted if it runs in the main shell; in a subshell
        (or never begun) it is left to run, and ``_unfinished`` keeps later code out."""
        result.stopped = False
        if result.subshell:
            result.status = "timeout"
            return result
        if not (started or await self._began(msg_id, result)):
            result.status = "not_started"
            return result
        await self._interrupt()

        def ended(msg: dict[str, Any]) -> bool:
            if _parent(msg) == msg_id:
                result.add(msg["header"]["msg_type"], msg["content"])
            return self._finished()

        result.stopped = await self._until(ended, INTERRUPT_GRACE)
        result.status = "timeout"  # the interrupt's KeyboardInterrupt is no error
        return result

    async def _stop(self, msg_id: str, result: Execution, started: bool) -> None:
        """Interrupt a cancelled main-shell request if the kernel began it (its busy status
        may still be on its way to us: the code can run before we read that it does)."""
        if not result.subshell and (started or await self._began(msg_id, result)):
            await self._interrupt()

    async def _began(self, msg_id: str, result: Execution) -> bool:
        """Whether the kernel reports beginning ``msg_id`` within ``START_GRACE`` seconds
        (outputs read meanwhile go to ``result``)."""

        def began(msg: dict[str, Any]) -> bool:
            if _parent(msg) != msg_id:
                return False
            msg_type, content = msg["header"]["msg_type"], msg["content"]
            if msg_type == "execute_input" or content.get("execution_state") == "busy":
                return True
            result.add(msg_type, content)
            return False

        return await self._until(began, START_GRACE)

    async def close(self) -> None:
        """Delete our subshell and close the channels; while our code still runs in the
        subshell, that is left to a task that waits for it to end (or the kernel to go)."""
        if not self._ready:
            return
        if self._unfinished is not None and self._unfinished.subshell:
            task = asyncio.create_task(self._close_when_done())
            _LINGERING.add(task)
            task.add_done_callback(_LINGERING.discard)
            return
        await self._shut()

    async def _close_when_done(self) -> None:
        while not await self._wait(self._finished, LINGER_POLL):
            if not await self._client.is_alive():  # shut down (the server stopping, say)
                self._subshell_id = ""  # gone with its kernel: nothing to delete
                break
        await self._shut()

    async def _shut(self) -> None:
        if self._subshell_id:
            with contextlib.suppress(KernelUnreachable):
                await self._control(
                    "delete_subshell_request", {"subshell_id": self._subshell_id}, CONTROL_TIMEOUT
                )
            self._subshell_id = ""
        self._client.stop_channels()
        self._ready = False


def _parent(msg: dict[str, Any]) -> str:
    return str((msg.get("parent_header") or {}).get("msg_id", ""))


def _answers(msg_id: str, msg: dict[str, Any]) -> bool:
    return _parent(msg) == msg_id
