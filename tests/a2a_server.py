"""A tiny real A2A agent for the tests (a2a-sdk's server, JSON-RPC): ``python a2a_server.py PORT``.

Its card, ``Echo``, names two skills, ``echo`` and ``Summarise.v2``. A message answers at once with
``echo: <text>``, except that ``task: <text>`` runs a task (a working status with a message,
then the answer as two artifact chunks, then completed) and ``fail`` ends a task as failed.
When the environment variable ``A2A_TEST_TOKEN`` is set, a request without ``Authorization:
Bearer <it>`` gets 401, the card included.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from a2a.helpers import new_task, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2 as a2a
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response


class Echo(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        task_id, context_id = context.task_id or "", context.context_id or ""
        if not (text.startswith("task: ") or text == "fail"):
            reply = new_text_message(f"echo: {text}", context_id=context_id, task_id=task_id)
            await event_queue.enqueue_event(reply)
            return
        submitted = a2a.TaskState.TASK_STATE_SUBMITTED
        await event_queue.enqueue_event(new_task(task_id, context_id, submitted))
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.start_work(updater.new_agent_message([new_text_part("working... ")]))
        if text == "fail":
            await updater.failed(updater.new_agent_message([new_text_part("it broke")]))
            return
        await updater.add_artifact([new_text_part("done: ")], artifact_id="a1")
        await updater.add_artifact([new_text_part(text[6:])], artifact_id="a1", append=True)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        raise NotImplementedError


class RequireToken(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        token = os.environ.get("A2A_TEST_TOKEN")
        if token and request.headers.get("Authorization") != f"Bearer {token}":
            return PlainTextResponse("unauthorized", status_code=401)
        return await call_next(request)


def app(port: int) -> Starlette:
    card = a2a.AgentCard(
        name="Echo",
        description="Repeats what it is told.",
        version="1.0",
        supported_interfaces=[
            a2a.AgentInterface(
                url=f"http://127.0.0.1:{port}/", protocol_binding="JSONRPC", protocol_version="1.0"
            )
        ],
        capabilities=a2a.AgentCapabilities(streaming=True),
        default_input_modes=["text"],
        default_output_modes=["text"],
        skills=[
            a2a.AgentSkill(id="echo", name="Echo", description="Repeats the message.", tags=["x"]),
            a2a.AgentSkill(
                id="Summarise.v2", name="Summarise", description="Summarises.", tags=["x"]
            ),
        ],
    )
    handler = DefaultRequestHandler(
        agent_executor=Echo(), task_store=InMemoryTaskStore(), agent_card=card
    )
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(handler, "/")
    application = Starlette(routes=routes)
    application.add_middleware(RequireToken)
    return application


if __name__ == "__main__":
    port = int(sys.argv[1])
    uvicorn.run(app(port), host="127.0.0.1", port=port, log_level="warning")
