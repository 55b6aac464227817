"""The ``a2a`` toolset: a remote agent, reached over the A2A protocol, as tools (docker-agent's).

The agent's card is fetched from ``url`` when the toolset starts (the first turn that needs it;
a card that cannot be fetched is a ``warning`` and the turn goes on without these tools, as for
an MCP server). Each skill of the card is one tool, named by the skill's id (else its name),
prefixed with ``name_`` when ``name`` is set, lower-cased and reduced to ``[a-z0-9_]``; a card
without skills gives one tool named after the agent. A call sends ``message`` to the agent as
a new conversation, streaming when the agent can, and answers with the text of everything it
sent back (messages, status messages, artifacts); the text also streams as
``tool_call_output`` while the agent works. A task that ends failed, rejected or canceled, an
empty answer or an unreachable agent is an error result.

The calls are not read-only: they ask for approval unless permitted, as in docker-agent.
``headers`` (with ``$VAR`` and ``${env.VAR}`` expanded) go with every request; hosts that are
not public are refused unless ``allow_private_ips``. The A2A client is the official ``a2a-sdk``
(the ``nbsession[a2a]`` extra); without it the toolset's start fails with a warning saying so.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator

from ._http import Refused, check_public_address, check_url, limit_output
from .base import Tool, ToolContext, ToolDefinition, ToolResult, Toolset, expand_env

if TYPE_CHECKING:
    from a2a.client import Client
    from a2a.types.a2a_pb2 import AgentCard, StreamResponse

USER_AGENT = "nbsession-a2a (docker-agent compatible)"
MISSING_SDK = "the a2a toolset needs the A2A SDK: pip install 'nbsession[a2a]'"


class A2AOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, description="The agent's base URL (its card is under it)")
    name: str = Field("", description="A prefix for the tool names")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: PositiveInt = Field(30, description="Seconds a request may wait for the agent")
    allow_private_ips: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if "$" not in url:  # checked again once the environment is expanded, at start
            try:
                check_url(url)
            except Refused as exc:
                raise ValueError(str(exc)) from None
        return url


class A2AToolset(Toolset):
    """One tool per skill of the remote agent (see the module docstring)."""

    type: ClassVar[str] = "a2a"
    options_model = A2AOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = A2AOptions.model_validate(dict(options or {}))
        self._client: Client | None = None
        self._http: httpx.AsyncClient | None = None
        self._tools: list[Tool] = []

    @property
    def started(self) -> bool:
        return self._client is not None

    async def start(self) -> None:
        """Fetch the agent card and connect; raises (the runtime warns) when that fails."""
        try:
            from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
        except ImportError:
            raise RuntimeError(MISSING_SDK) from None
        options = self._options
        url = expand_env(options.url)
        http = httpx.AsyncClient(
            timeout=options.timeout,
            headers={
                "User-Agent": USER_AGENT,
                **{key: expand_env(value) for key, value in options.headers.items()},
            },
        )
        try:
            await self._check(url)
            card = await A2ACardResolver(http, url).get_agent_card()
            for interface in card.supported_interfaces:
                await self._check(interface.url)
            client = ClientFactory(ClientConfig(httpx_client=http)).create(card)
        except (Refused, A2AClientError, ValueError) as exc:
            await http.aclose()
            raise RuntimeError(f"cannot reach the A2A agent at {url}: {exc}") from None
        self._client = client
        self._http = http
        self._tools = [_SkillTool(self, card, skill) for skill in _skills(card)]

    async def _check(self, url: str) -> None:
        check_url(url)
        if not self._options.allow_private_ips:
            await check_public_address(url, "a2a")

    async def tools(self) -> list[Tool]:
        return list(self._tools)

    async def close(self) -> None:
        http, self._http, self._client, self._tools = self._http, None, None, []
        if http is not None:
            await http.aclose()

    async def send(self, message: str, ctx: ToolContext) -> ToolResult:
        """Send ``message`` to the agent as a new conversation; its answer as the result."""
        from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, TaskState
        from a2a.utils.errors import A2AError

        if self._client is None:  # closed while the model was deciding
            return ToolResult("The A2A agent is not connected.", is_error=True)
        request = SendMessageRequest(
            message=Message(
                role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[Part(text=message)]
            )
        )
        pieces: list[str] = []
        state = TaskState.TASK_STATE_UNSPECIFIED
        try:
            async for event in self._client.send_message(request):
                text, state = _text_and_state(event, state)
                if text:
                    pieces.append(text)
                    if ctx.output is not None:
                        ctx.output(text)
        except (A2AError, httpx.HTTPError) as exc:
            return ToolResult(f"A2A call failed: {exc or type(exc).__name__}", is_error=True)
        answer = limit_output("".join(pieces))
        failed = (
            TaskState.TASK_STATE_FAILED,
            TaskState.TASK_STATE_REJECTED,
            TaskState.TASK_STATE_CANCELED,
        )
        if state in failed:
            ended = TaskState.Name(state).removeprefix("TASK_STATE_").lower()
            return ToolResult(f"The agent's task ended {ended}: {answer}".strip(), is_error=True)
        if not answer:
            return ToolResult("No response from agent", is_error=True)
        return ToolResult(answer)


class SendArgs(BaseModel):
    message: str = Field(description="The message or request to send to the agent")


class _SkillTool(Tool):
    def __init__(self, toolset: A2AToolset, card: AgentCard, skill: Any) -> None:
        self._toolset = toolset
        name = skill.id or skill.name
        if toolset._options.name:
            name = f"{toolset._options.name}_{name}"
        name = _tool_name(name)
        self.definition = ToolDefinition(
            name=name,
            description=(
                f"Calls the '{skill.name}' skill of the {card.name} agent. {skill.description}"
            ),
            parameters=SendArgs.model_json_schema(),
            title=name,
            category="a2a",
        )

    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        message = arguments.get("message")
        if not isinstance(message, str):
            return ToolResult("Invalid arguments: message must be a string", is_error=True)
        return await self._toolset.send(message, ctx)


def _skills(card: AgentCard) -> list[Any]:
    """The card's skills, or one standing for the whole agent when it lists none."""
    if card.skills:
        return list(card.skills)
    from a2a.types.a2a_pb2 import AgentSkill

    return [AgentSkill(id=card.name, name=card.name, description=card.description)]


def _text_and_state(event: StreamResponse, state: int) -> tuple[str, int]:
    """The text an event carries (docker-agent's choice: messages, status messages and
    artifacts), and the task's state once the event is taken into account."""
    from a2a.helpers import get_artifact_text, get_message_text

    kind = event.WhichOneof("payload")
    if kind == "message":
        return get_message_text(event.message, ""), state
    if kind == "task":
        texts = [get_artifact_text(artifact, "") for artifact in event.task.artifacts]
        if event.task.status.HasField("message"):
            texts.append(get_message_text(event.task.status.message, ""))
        return "".join(texts), event.task.status.state
    if kind == "status_update":
        status = event.status_update.status
        text = get_message_text(status.message, "") if status.HasField("message") else ""
        return text, status.state
    if kind == "artifact_update":
        return get_artifact_text(event.artifact_update.artifact, ""), state
    return "", state


def _tool_name(name: str) -> str:
    """docker-agent's sanitising: ``[A-Za-z0-9_]`` kept, the rest ``_``, runs of ``_`` merged
    and trimmed, lower case."""
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", name)).strip("_").lower()
