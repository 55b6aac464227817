"""The handlers of SPEC 2: parse, call the manager, reply. No session rule lives here.

Each class serves one row (or one path) of the route table in ``routes.py``; path parameters
arrive as keyword arguments named as in the table's path templates. ``NBSessionHandler.prepare``
has authenticated the request (or answered 401) before any method runs; the decorators state
that decision for jupyter-server, which refuses to load endpoints that do not.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated
from pydantic import TypeAdapter
from tornado import web

from ..errors import NotFound
from ..manager import LIST_SLICE
from ..session import SessionSummary, is_safe_id
from .base import NBSessionHandler, dump_json
from .errors import status_reply
from .schemas import (
    BatchRequest,
    ElicitationRequest,
    ForkRequest,
    MessageRequest,
    MessagesRequest,
    PermissionsRequest,
    ResumeRequest,
    RunRequest,
    StarredRequest,
    SummaryRequest,
    TitleRequest,
    TokensRequest,
)
from .sse import BATCH_INTERVAL, Ending, send_events
from .wire import session_response

_SUMMARIES = TypeAdapter(list[SessionSummary])

START_SEQ_HEADER = "X-Start-Seq"
"""Run-stream reply header: the session's last event seq before the turn (SDKs resume after it)."""
DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_DELETE_TIMEOUT = 10.0


def _encode_summaries(summaries: list[SessionSummary]) -> bytes:
    return _SUMMARIES.dump_json(summaries, by_alias=True)


def _messages(request: RunRequest | MessagesRequest) -> list[dict[str, Any]]:
    return [message.model_dump(exclude_none=True) for message in request.messages]


# -- service ------------------------------------------------------------------------------


class HealthHandler(NBSessionHandler):
    @allow_unauthenticated
    def get(self) -> None:
        self.reply({"status": "ok"})


class ReadyHandler(NBSessionHandler):
    @allow_unauthenticated
    async def get(self) -> None:
        # A store that fails to open is what this route reports, not an error.
        with contextlib.suppress(Exception):
            await self.manager()
        status = await self.app.manager.ready_status()
        self.reply(status, 200 if status["ready"] else 503)


class PingHandler(NBSessionHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply({"status": "ok"})


class SessionsReadyHandler(NBSessionHandler):
    @web.authenticated
    async def get(self) -> None:
        timeout = self.duration_arg("timeout", DEFAULT_READY_TIMEOUT)
        if await (await self.manager()).wait_ready(timeout):
            self.reply({"status": "ready"})
            return
        message = f"No session was created or attached within {timeout:g} s."
        self.send_reply(status_reply(503, message))


class OpenAPIHandler(NBSessionHandler):
    @web.authenticated
    def get(self) -> None:
        # Imported here: the document is built from the route table, which imports this module.
        from .openapi import openapi_document

        self.reply(openapi_document(self.base_url))


# -- agents -------------------------------------------------------------------------------


class AgentsHandler(NBSessionHandler):
    @web.authenticated
    def get(self) -> None:
        self.reply([agent.to_json() for agent in self.manager_unstarted().list_agents()])


class AgentHandler(NBSessionHandler):
    @web.authenticated
    def get(self, agent_id: str) -> None:
        self.reply(self.manager_unstarted().get_agent_config(agent_id))


class AgentToolCountHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, agent_id: str, agent_name: str) -> None:
        count = await self.manager_unstarted().get_agent_tool_count(agent_id, agent_name)
        self.reply({"available_tools": count})


# -- sessions -----------------------------------------------------------------------------


class SessionsHandler(NBSessionHandler):
    @web.authenticated
    async def get(self) -> None:
        limit = self.count_arg("limit")
        before = self._query("before")
        manager = await self.manager()
        self.set_header("Content-Type", "application/json")
        loop = asyncio.get_running_loop()
        if limit is not None:  # one page (at most MAX_COUNT), read a slice at a time
            summaries, cursor = await manager.get_session_page(limit, before)
            if cursor is not None:
                self.set_header("X-Next-Cursor", cursor)
            self.finish(await loop.run_in_executor(None, _encode_summaries, summaries))
            return
        # The whole list (after ``before``), streamed a slice at a time: each read, checked
        # and encoded on the store's thread and flushed before the next is read, so 100,000
        # sessions never hold the event loop for more than a write, nor the server's memory
        # for more than a slice.
        opened = False
        async for part in manager.session_slices(LIST_SLICE, before):
            self.write(b"," + part.items if opened else b"[" + part.items)
            opened = True
            await self.flush()
        self.finish(b"]" if opened else b"[]")

    @web.authenticated
    async def post(self) -> None:
        template = self.json_object() if self.request.body.strip() else None
        session = await (await self.manager()).create_session(template)
        self.reply(session.to_json())


class SessionHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        self.reply(session_response(await (await self.manager()).get_session(session_id)))

    @web.authenticated
    async def delete(self, session_id: str) -> None:
        wait = self.flag_arg("wait")
        timeout = self.duration_arg("timeout", DEFAULT_DELETE_TIMEOUT)
        manager = await self.manager()
        await manager.delete_session(session_id)
        if wait and not await manager.wait_stopped(session_id, timeout):
            self.reply({"message": "session deleted, stop still in progress"}, 202)
            return
        self.reply({"message": "session deleted"})


class SessionStatusHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        wait = self.duration_arg("wait", None)
        self.reply(await (await self.manager()).get_session_status(session_id, wait))


class SnapshotHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        self.reply(await (await self.manager()).get_session_snapshot(session_id))


class RecoveryHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        self.reply(await (await self.manager()).export_session_for_recovery(session_id))


class NotebookHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        manager = await self.manager()
        notebook = await manager.export_session_notebook(session_id)
        # Only a safe id goes into the header: no quote, separator or ";" can add a parameter
        # or a path to it (ids stored before import checked them may not be).
        name = session_id if is_safe_id(session_id) else "session"
        self.set_header("Content-Disposition", f'attachment; filename="{name}.ipynb"')
        self.finish(dump_json(notebook), set_content_type="application/x-ipynb+json")


class ImportHandler(NBSessionHandler):
    @web.authenticated
    async def post(self) -> None:
        session = await (await self.manager()).import_session(self.json_object())
        self.reply(session.to_json(), 201)


class ForkHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(ForkRequest)
        manager = await self.manager()
        fork = await manager.fork_session(session_id, request.user_message_index)
        self.reply(fork.to_json())


class BatchDeleteHandler(NBSessionHandler):
    @web.authenticated
    async def post(self) -> None:
        request = self.body(BatchRequest)
        self.reply(await (await self.manager()).batch_delete_sessions(request.session_ids))


class BatchExportHandler(NBSessionHandler):
    @web.authenticated
    async def post(self) -> None:
        request = self.body(BatchRequest)
        self.reply(await (await self.manager()).batch_export_sessions(request.session_ids))


# -- session fields -----------------------------------------------------------------------


class TitleHandler(NBSessionHandler):
    @web.authenticated
    async def patch(self, session_id: str) -> None:
        request = self.body(TitleRequest)
        session = await (await self.manager()).update_session_title(session_id, request.title)
        self.reply({"id": session.id, "title": session.title})


class PermissionsHandler(NBSessionHandler):
    @web.authenticated
    async def patch(self, session_id: str) -> None:
        request = self.body(PermissionsRequest)
        await (await self.manager()).update_session_permissions(session_id, request.permissions)
        self.reply({"message": "session permissions updated"})


class TokensHandler(NBSessionHandler):
    @web.authenticated
    async def patch(self, session_id: str) -> None:
        request = self.body(TokensRequest)
        manager = await self.manager()
        await manager.update_session_tokens(
            session_id, request.input_tokens, request.output_tokens, request.cost
        )
        self.reply({"status": "updated"})


class StarredHandler(NBSessionHandler):
    @web.authenticated
    async def patch(self, session_id: str) -> None:
        request = self.body(StarredRequest)
        await (await self.manager()).set_session_starred(session_id, request.starred)
        self.reply({"status": "updated"})


class ToolsToggleHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        approved = await (await self.manager()).toggle_tool_approval(session_id)
        self.reply({"tools_approved": approved})


class MessagesHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(MessageRequest)
        message = await (await self.manager()).add_message(session_id, request.message.to_json())
        self.reply({"status": "added", "id": message.id}, 201)


class MessageHandler(NBSessionHandler):
    @web.authenticated
    async def patch(self, session_id: str, msg_id: str) -> None:
        request = self.body(MessageRequest)
        await (await self.manager()).update_message(session_id, msg_id, request.message.to_json())
        self.reply({"status": "updated"})


class SummariesHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(SummaryRequest)
        manager = await self.manager()
        await manager.add_summary(session_id, request.summary, request.first_kept_entry)
        self.reply({"status": "added"}, 201)


# -- turns --------------------------------------------------------------------------------


class RunHandler(NBSessionHandler):
    """Runs a turn and streams it; the client leaving cancels it unless ``?detach=true``."""

    @web.authenticated
    async def post(self, session_id: str, agent_id: str, agent_name: str = "") -> None:
        value = self.json_value()
        request = self.body(RunRequest, {"messages": value} if isinstance(value, list) else value)
        detach = self.flag_arg("detach")
        manager = await self.manager()
        stream = await manager.run_session(
            session_id, agent_id, agent_name, _messages(request), request.model
        )
        self.set_header(START_SEQ_HEADER, str(stream.start_seq))
        ending = Ending.CLIENT_GONE
        with self.app.open_stream():
            try:
                ending = await send_events(
                    self, stream, self.app.heartbeat_interval, stream.wait_dropped()
                )
            finally:
                stream.close()
                # A client that left cancels its turn (docker-agent's rule); one the server let
                # go for falling behind resumes on /events, so its turn goes on.
                if ending is Ending.CLIENT_GONE and not detach and stream.cancel():
                    self.log.info(
                        "nbsession: the run stream of session %s was closed by its client; "
                        "its turn is cancelled",
                        session_id,
                    )
            if ending is Ending.FINISHED:
                self.finish(set_content_type="text/event-stream")


class EventsHandler(NBSessionHandler):
    """The session's event log: replay after ``?since=`` / ``Last-Event-ID``, then tail."""

    @web.authenticated
    async def get(self, session_id: str) -> None:
        since = self.seq_arg("since", "Last-Event-ID")
        subscription = await (await self.manager()).subscribe_events(session_id, since)
        with self.app.open_stream():
            try:
                ending = await send_events(
                    self,
                    subscription,
                    self.app.heartbeat_interval,
                    subscription.wait_dropped(),
                    batch=BATCH_INTERVAL,
                )
            finally:
                subscription.close()
            if ending is Ending.FINISHED:
                self.finish(set_content_type="text/event-stream")


class CancelHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        await (await self.manager()).cancel_session(session_id)
        self.reply({"message": "session cancelled"})


class ResumeHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(ResumeRequest)
        await (await self.manager()).resume_session(
            session_id, request.confirmation, request.reason, request.tool_name
        )
        self.reply({"message": "session resumed"})


class ElicitationHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(ElicitationRequest)
        await (await self.manager()).resume_elicitation(
            session_id, request.action, request.content, request.elicitation_id
        )
        self.reply({"message": "elicitation answered"})


class SteerHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(MessagesRequest)
        await (await self.manager()).steer_session(session_id, _messages(request))
        self.reply({"status": "queued"}, 202)


class FollowUpHandler(NBSessionHandler):
    @web.authenticated
    async def post(self, session_id: str) -> None:
        request = self.body(MessagesRequest)
        key = self.request.headers.get("Idempotency-Key", "")
        manager = await self.manager()
        result = await manager.follow_up_session(session_id, _messages(request), key)
        self.reply(result.to_json(), 202)


class ModelsHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        self.reply(await (await self.manager()).available_session_models(session_id))


class QueueHandler(NBSessionHandler):
    @web.authenticated
    async def get(self, session_id: str) -> None:
        self.reply(await (await self.manager()).queue_status(session_id))


class NotFoundHandler(NBSessionHandler):
    """Any other path under the prefix: a JSON 404 (after authentication, like every route)."""

    async def prepare(self) -> None:
        await super().prepare()
        raise NotFound(f"No route {self.request.path!r}; see api/openapi.json.")
