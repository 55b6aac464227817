"""``NBSessionApp``: the extension that serves docker-agent's session API from jupyter-server.

Installed, it is enabled for every ``jupyter server`` / ``jupyter lab`` by the config file the
package ships; ``jupyter nbsession`` starts a server with this extension alone. One
``SessionManager`` per server holds every session rule; the handlers only translate HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.utils import url_path_join
from traitlets import Float, Int, List, TraitError, Unicode, default, validate

from ..runtime.deltas import DEFAULT_INTERVAL
from .routes import tornado_handlers

if TYPE_CHECKING:
    from ..manager import SessionManager

STREAM_DRAIN_SECONDS = 5.0
"""How long a stopping server waits for open SSE responses to write their final events."""

CORE_LOGGER = "nbsession"
"""The parent of every logger of the core (``nbsession.manager``, ``nbsession.config``...)."""


class ServerLogHandler(logging.Handler):
    """Hands the core's records to the hosting server's own log handlers, so they come out as
    the server's lines do (level, timestamp, logger name) instead of bare text on stderr.

    The core stays free of jupyter-server: it logs to ``logging.getLogger("nbsession.*")``
    and this handler, attached while the extension runs, is the only bridge. Records go to
    the server's handlers directly (not through its logger), so nothing is emitted twice.
    """

    def __init__(self, server_log: logging.Logger) -> None:
        super().__init__()
        self.server_log = server_log

    def emit(self, record: logging.LogRecord) -> None:
        for handler in self.server_log.handlers:
            if record.levelno >= handler.level:
                handler.handle(record)

    @classmethod
    def attach(cls, server_log: logging.Logger) -> ServerLogHandler:
        """Route the core's records to ``server_log``'s handlers, replacing an earlier route
        (one process may host several servers in turn, as tests do)."""
        core = logging.getLogger(CORE_LOGGER)
        for old in [h for h in core.handlers if isinstance(h, cls)]:
            core.removeHandler(old)
        bridge = cls(server_log)
        core.addHandler(bridge)
        if core.level == logging.NOTSET or core.level > logging.INFO:
            core.setLevel(logging.INFO)  # root's WARNING would drop the info lines
        return bridge


class NBSessionApp(ExtensionApp):
    """The nbsession jupyter-server extension (``jupyter nbsession`` runs it standalone)."""

    name = "nbsession"
    description = "docker-agent's session API (HTTP + SSE) as a jupyter-server extension."
    extension_url = "/nbsession/health"
    load_other_extensions = False  # standalone, serve the API and nothing else

    agents_dir = Unicode(
        help="Directory of agent source YAML files (docker-agent format), served beside the "
        "bundled offline agent. Default: <jupyter data dir>/nbsession/agents.",
    ).tag(config=True)

    db_path = Unicode(
        help="SQLite file of the session store (WAL mode); ':memory:' keeps sessions in this "
        "process only. Default: <jupyter data dir>/nbsession/sessions.db.",
    ).tag(config=True)

    allowed_roots = List(
        Unicode(),
        help="Directories a session's working_dir may lie in besides the server's root_dir "
        "(ServerApp.root_dir, the default working dir). A working_dir elsewhere is refused "
        "with 400, on create and on import.",
    ).tag(config=True)

    auth_token = Unicode(
        help="A bearer token accepted besides the jupyter-server's own, for API clients that "
        "should not hold the server's token. Default: the NBSESSION_TOKEN environment variable.",
    ).tag(config=True)

    max_request_bytes = Int(
        1 << 20,
        help="Request bodies larger than this many bytes are refused with 413 before parsing.",
    ).tag(config=True)

    event_log_capacity = Int(
        1024,
        help="Events kept per session for replay; a client further behind gets a gap event "
        "(and a reader that falls this far behind live is disconnected). Keep it above the "
        "events of one turn: a run stream that falls behind its own turn is dropped too.",
    ).tag(config=True)

    max_unsent_bytes = Int(
        512 * 1024,
        help="An SSE client that leaves this many bytes of events unsent (appended while its "
        "socket would take no more) is disconnected and resumes with Last-Event-ID, as one a "
        "full log behind is; so a client that never reads is let go within about one log of "
        "events. Keep it above the largest single event worth streaming without a drop.",
    ).tag(config=True)

    heartbeat_interval = Float(
        15.0,
        help="Seconds of silence after which an SSE stream sends a ': ping' comment, which "
        "keeps proxies from closing it and finds clients that are gone.",
    ).tag(config=True)

    refresh_interval = Float(
        0.0,
        help="Minimum seconds between re-scans of the agent sources for changed files; "
        "0 re-scans on every use (a directory listing, not a re-parse).",
    ).tag(config=True)

    steer_capacity = Int(
        8, help="Steer messages a running turn can hold; more is a 429 with Retry-After."
    ).tag(config=True)

    max_live_runtimes = Int(
        64,
        help="Session runtimes kept in memory; beyond this the least recently used idle ones "
        "are released and rebuilt from the store on their next use (event ids continue).",
    ).tag(config=True)

    followup_capacity = Int(
        8, help="Follow-up messages a session can hold; more is a 429 with Retry-After."
    ).tag(config=True)

    title_model = Unicode(
        "",
        help="The model that writes session titles: empty uses the session's own model (its "
        "override if it has one), a model ref (provider/model, or a name from the agent "
        "file's models) uses that one, and 'off' makes no model call (the title is the "
        "first message, shortened).",
    ).tag(config=True)

    delta_flush_interval = Float(
        DEFAULT_INTERVAL,
        help="Seconds over which a model's streamed deltas are merged into one "
        "agent_choice (or agent_choice_reasoning, or one call's partial_tool_call) event: at "
        "most ~1/interval such events a second per session, so the event stream costs about "
        "the text's size, not an envelope per token. The first delta after a pause goes out "
        "at once; 0 sends one event per delta.",
    ).tag(config=True)

    lease_ttl = Float(
        30.0,
        help="Seconds a running turn's lease in the store lasts unless renewed. Servers "
        "sharing a store answer 409 session_busy for a session whose lease another holds; "
        "after a crash its sessions run again once this has passed.",
    ).tag(config=True)

    lease_renew_interval = Float(
        10.0, help="Seconds between renewals of a running turn's lease (below lease_ttl)."
    ).tag(config=True)

    manager: SessionManager
    _start: asyncio.Future[None] | None = None
    _streams: set[asyncio.Future[None]]
    _log_bridge: ServerLogHandler | None = None

    @default("agents_dir")
    def _default_agents_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "nbsession", "agents")

    @default("db_path")
    def _default_db_path(self) -> str:
        return os.path.join(jupyter_data_dir(), "nbsession", "sessions.db")

    @default("auth_token")
    def _default_auth_token(self) -> str:
        return os.environ.get("NBSESSION_TOKEN", "")

    @default("open_browser")
    def _default_open_browser(self) -> bool:
        return False  # an API has no page to open

    @validate(
        "max_request_bytes",
        "event_log_capacity",
        "max_unsent_bytes",
        "steer_capacity",
        "followup_capacity",
        "max_live_runtimes",
    )
    def _positive_int(self, proposal: Any) -> int:
        if proposal["value"] < 1:
            raise TraitError(f"NBSessionApp.{proposal['trait'].name} must be at least 1.")
        return int(proposal["value"])

    @validate("lease_renew_interval")
    def _renew_before_expiry(self, proposal: Any) -> float:
        value = float(proposal["value"])
        if not 0 < value < self.lease_ttl:
            raise TraitError("NBSessionApp.lease_renew_interval must be between 0 and lease_ttl.")
        return value

    @validate("delta_flush_interval")
    def _non_negative_interval(self, proposal: Any) -> float:
        if proposal["value"] < 0:
            raise TraitError("NBSessionApp.delta_flush_interval cannot be negative.")
        return float(proposal["value"])

    @validate("heartbeat_interval")
    def _positive_interval(self, proposal: Any) -> float:
        if proposal["value"] <= 0:
            raise TraitError("NBSessionApp.heartbeat_interval must be positive.")
        return float(proposal["value"])

    def initialize_settings(self) -> None:
        """Build the manager (no I/O yet: the store opens once the loop runs)."""
        from ..manager import ManagerConfig, SessionManager
        from .jupyter_host import ServerJupyterHost

        assert self.serverapp is not None
        self._streams = set()
        self._log_bridge = ServerLogHandler.attach(self.serverapp.log)
        self.manager = SessionManager(
            ManagerConfig(
                db_path=self.db_path,
                agents_dir=self.agents_dir or None,
                working_dir=self.serverapp.root_dir,
                allowed_roots=tuple(self.allowed_roots),
                event_log_capacity=self.event_log_capacity,
                max_unsent_bytes=self.max_unsent_bytes,
                steer_capacity=self.steer_capacity,
                followup_capacity=self.followup_capacity,
                refresh_interval=self.refresh_interval,
                max_live_runtimes=self.max_live_runtimes,
                title_model=self.title_model.strip(),
                delta_flush_interval=self.delta_flush_interval,
                lease_ttl=self.lease_ttl,
                lease_renew_interval=self.lease_renew_interval,
                jupyter=ServerJupyterHost(self.serverapp),
            )
        )
        if not (self.auth_token or self.serverapp.identity_provider.auth_enabled):
            self.log.warning(
                "nbsession: the server has no token or password and NBSessionApp.auth_token "
                "is empty, so every nbsession API request will be refused with 401."
            )

    @property
    def open_streams(self) -> int:
        """SSE responses open now (a stalled client counts until it is let go)."""
        return len(self._streams)

    @contextlib.contextmanager
    def open_stream(self) -> Iterator[None]:
        """Mark an SSE response as open, so a stopping server lets it send its last events."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._streams.add(done)
        try:
            yield
        finally:
            self._streams.discard(done)
            done.set_result(None)

    def initialize_handlers(self) -> None:
        self.handlers.extend(tornado_handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Open the store as soon as the server runs, so /ready is true from the start, and
        say in one line where the API is and what it serves."""
        self.log.info(
            "nbsession: API at %s (db_path=%s, agents_dir=%s)",
            url_path_join(serverapp.connection_url, "nbsession/"),
            self.db_path,
            self.agents_dir,
        )
        with contextlib.suppress(Exception):  # logged by _open; requests retry
            await self.started_manager()

    async def started_manager(self) -> SessionManager:
        """The manager, its store opened once; a failed open is retried by the next caller."""
        failed = self._start is not None and self._start.done() and not self._start.cancelled()
        if self._start is None or (failed and self._start.exception() is not None):
            self._start = asyncio.ensure_future(self._open())
        await asyncio.shield(self._start)
        return self.manager

    async def _open(self) -> None:
        try:
            await self.manager.start()
        except Exception as exc:
            self.log.error("nbsession: cannot open the session store %s: %s", self.db_path, exc)
            raise

    async def stop_extension(self) -> None:
        """Cancel running turns, persist them and end every event log with session_exited."""
        try:
            await self._stop()
        finally:
            if self._log_bridge is not None:
                logging.getLogger(CORE_LOGGER).removeHandler(self._log_bridge)

    async def _stop(self) -> None:
        if self._start is None:
            return
        try:
            await self._start
        except Exception:
            return  # a store that never opened has nothing to stop
        try:
            await self.manager.shutdown(reason="server stopping")
        except Exception:
            self.log.exception("nbsession: shutting down the session manager failed")
        if self._streams:  # each has its session_exited (or stream_stopped) to deliver
            await asyncio.wait(set(self._streams), timeout=STREAM_DRAIN_SECONDS)


main = launch_new_instance = NBSessionApp.launch_instance
