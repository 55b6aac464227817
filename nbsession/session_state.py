"""What one server knows about one session: its runtime, event log, queues and phase.

The manager keeps one ``SessionState`` per session it has touched, so a session's whole state
and its lifecycle read in one place and forgetting a session is dropping one entry.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from .eventlog import RingEventLog
from .runtime.loop import AgentRuntime, Run
from .runtime.recorder import SessionRecorder
from .session import Message

FollowUpInjector = Callable[[str], Awaitable[None]]


class Phase(str, Enum):
    """Where a session is in its life on this server (``SessionState.phase``)."""

    IDLE = "idle"  # no turn; a runtime may or may not be in memory
    STARTING = "starting"  # a run is being started: busy before its runtime is registered
    RUNNING = "running"  # its runtime streams a turn
    STOPPING = "stopping"  # deleted while its turn ran: the turn is ending
    RELEASED = "released"  # idle runtime dropped from memory, rebuilt on next use
    DELETED = "deleted"  # gone from the store; kept as a tombstone so late writers fail


@dataclass
class Live:
    """A session with a runtime on this server: the recorder is its only writer."""

    recorder: SessionRecorder
    runtime: AgentRuntime


@dataclass(eq=False)
class SessionState:
    """One session's state on this server.

    Invariants (kept by the manager, which is the only writer):

    - ``live`` is None while ``released`` or ``deleted``; a released session has a ``binding``
      (the agent it is rebuilt on) and is never ``external`` (attached runtimes stay).
    - ``starting`` is set only after ``busy`` was checked false, and cleared when the start
      settles; ``cancel_requested`` and ``late_fields`` only live while it (or ``reviving``)
      is set, and are cleared with it.
    - The event numbering continues across releases: either ``log`` is in memory, or its last
      sequence number is in ``seq_floor`` and the next log starts after it.
    - ``idle_followups`` are messages queued while no runtime could take them; the next run
      consumes them first.
    - A deleted session keeps only its closing ``log`` and the ``stopping`` run (until it has
      ended); everything else is forgotten, and every later request sees it as unknown.
    - ``lease_holds`` counts what on this server needs the session's store lease (a run, a
      write that needs the session idle); the lease is held in the store, and renewed by
      ``lease_keeper``, exactly while it is positive. Without it, this server neither runs
      nor edits the session (another server may own its turn).
    """

    id: str
    live: Live | None = None
    binding: tuple[str, str] | None = None  # (agent source, agent) it last ran on
    released: bool = False
    external: bool = False  # its runtime was attached by its owner (an in-kernel host)
    log: RingEventLog | None = None
    seq_floor: int = 0  # last seq of a log released from memory
    starting: bool = False
    reviving: bool = False
    cancel_requested: bool = False  # a cancel that arrived while starting
    # Field updates that reached the store while a runtime was built from an older read.
    late_fields: dict[str, Any] = field(default_factory=dict)
    stopping: Run | None = None
    deleted: bool = False
    idle_followups: list[Message] = field(default_factory=list)
    idempotency: OrderedDict[str, None] = field(default_factory=OrderedDict)
    injector: FollowUpInjector | None = None
    pump: asyncio.Task[None] | None = None
    attached: asyncio.Event = field(default_factory=asyncio.Event)
    lease_holds: int = 0
    lease_keeper: asyncio.Task[None] | None = None
    lease_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def phase(self) -> Phase:
        if self.deleted:
            return Phase.STOPPING if self.stopping is not None else Phase.DELETED
        if self.starting:
            return Phase.STARTING
        if self.live is not None and self.live.runtime.streaming:
            return Phase.RUNNING
        if self.released:
            return Phase.RELEASED
        return Phase.IDLE

    @property
    def busy(self) -> bool:
        """A turn is starting or running: the history belongs to it."""
        return self.starting or (self.live is not None and self.live.runtime.streaming)

    def forget(self) -> tuple[Live | None, asyncio.Task[None] | None]:
        """Mark the session deleted and drop what it held; returns its runtime and pump.

        The log stays until the manager closes it (after the turn's last event).
        """
        live, pump = self.live, self.pump
        self.deleted = True
        self.live = self.binding = self.injector = self.pump = None
        self.released = self.external = False
        self.seq_floor = 0
        self.idle_followups.clear()
        self.idempotency.clear()
        return live, pump
