"""The bundled offline model: deterministic, no network, no key.

It is a pydantic-ai ``FunctionModel`` so it goes through exactly the code path a real provider
does (streamed parts, tool calls, usage). It recognises a few requests and answers them with a
tool call, so approvals and tool cards can be tried anywhere:

- "list the files" / "ls"            -> ``shell`` with ``ls -la`` (needs approval)
- "run `<cmd>`"                       -> ``shell`` with that command (needs approval)
- "what is 17*23"                     -> ``think`` (read-only, runs without asking), then the answer
- "make a plan" / "todo"              -> ``create_todos``
- "call `<tool>` with {json}"         -> that tool with those arguments (any tool of the agent),
                                         streamed in 64-character pieces when long
- "stream 10000 words"                -> that many words, one streamed delta each (flood tests)
Anything else gets an honest answer saying this is an offline demo model.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    SystemPromptPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import (
    AgentInfo,
    DeltaThinkingPart,
    DeltaToolCall,
    FunctionModel,
)

from .title import TITLE_PROMPT

# The title request is recognised by the start of its system prompt.
TITLE_MARKER = TITLE_PROMPT[:24]

# Seconds between streamed chunks, by model name: `demo/slow` makes streaming visible.
_CHUNK_DELAYS = {"slow": 0.05}

_CALL = re.compile(r"\bcall\s+`([\w.-]+)`(?:\s+with\s+(\{.*\}))?\s*$", re.IGNORECASE | re.DOTALL)
_RUN = re.compile(r"run\s+`([^`]+)`", re.IGNORECASE)
_LIST = re.compile(r"\blist (the |my |all )?files\b|^\s*ls\s*$", re.IGNORECASE)
_MATH = re.compile(
    r"what(?: is|'s)\s+(-?\d+(?:\.\d+)?)\s*([-+*/x\u00d7])\s*(-?\d+(?:\.\d+)?)", re.IGNORECASE
)
_PLAN = re.compile(r"\b(todo|to-do|make a plan|plan)\b", re.IGNORECASE)
_STREAM = re.compile(r"\bstream\s+(\d+)\s+words\b", re.IGNORECASE)
MAX_STREAMED_WORDS = 100_000
ARGUMENT_PIECE = 64
"""Characters per streamed piece of a long tool-call argument (a provider streams tokens)."""
_WORDS = ("a", "long", "answer", "streamed", "to", "the", "pane", "word", "by", "word")


@dataclass(frozen=True)
class _Plan:
    reasoning: str
    text: str
    tool: str = ""
    args: str = ""


def build_demo_model(name: str) -> FunctionModel:
    """The offline model; ``name`` picks a variant (``offline``, ``slow``)."""
    delay = _CHUNK_DELAYS.get(name, 0.0)

    async def stream(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[object]:
        async for chunk in _respond(messages, info):
            if delay:
                await asyncio.sleep(delay)
            yield chunk

    return FunctionModel(stream_function=stream, model_name=f"demo-{name}")


async def _respond(messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[object]:
    last = messages[-1]
    if _is_title_request(messages):
        for chunk in _chunks(_title_for(_last_user_text(messages))):
            yield chunk
        return
    returns = [p for p in last.parts if isinstance(p, ToolReturnPart)] if last.parts else []
    if returns and isinstance(last, ModelRequest) and not _has_user_text(last):
        for chunk in _chunks(_after_tools(returns, messages)):
            yield chunk
        return
    plan = _plan_for(_last_user_text(messages), {t.name for t in info.function_tools})
    if plan.reasoning:
        yield {0: DeltaThinkingPart(content=plan.reasoning)}
    for chunk in _chunks(plan.text):
        yield chunk
    if plan.tool:
        call_id = f"call_{_count_calls(messages) + 1}"
        yield {10: DeltaToolCall(name=plan.tool, json_args=None, tool_call_id=call_id)}
        # Arguments arrive in pieces, as they do from a real provider.
        for piece in _argument_pieces(plan.args):
            yield {10: DeltaToolCall(json_args=piece)}


def _plan_for(prompt: str, tools: set[str]) -> _Plan:
    stream = _STREAM.search(prompt)
    if stream:
        count = min(int(stream.group(1)), MAX_STREAMED_WORDS)
        return _Plan(reasoning="", text=_streamed_words(count))
    call = _CALL.search(prompt)
    if call and call.group(1) in tools:
        name, args = call.group(1), call.group(2) or "{}"
        return _Plan(
            reasoning=f"The user asked for the {name} tool by name.",
            text=f"I'll call `{name}`.",
            tool=name,
            args=args,
        )
    run = _RUN.search(prompt)
    if (run or _LIST.search(prompt)) and "shell" in tools:
        cmd = run.group(1) if run else "ls -la"
        return _Plan(
            reasoning=f"The user wants me to run a command. I'll call the shell tool with `{cmd}`.",
            text=f"I'll run `{cmd}` in the session's working directory.",
            tool="shell",
            args=json.dumps({"cmd": cmd}),
        )
    math = _MATH.search(prompt)
    if math and "think" in tools:
        left, op, right = math.groups()
        thought = f"{left} {op} {right} = {_compute(float(left), op, float(right))}"
        return _Plan(
            reasoning="Arithmetic: I'll work it out in the think tool first.",
            text="Let me work that out.",
            tool="think",
            args=json.dumps({"thought": thought}),
        )
    if _PLAN.search(prompt) and "create_todos" in tools:
        steps = ["Understand the request", "Do the work", "Report the result"]
        return _Plan(
            reasoning="A plan helps here; I'll record it as todos.",
            text="Here is a plan, recorded as todos.",
            tool="create_todos",
            args=json.dumps({"descriptions": steps}),
        )
    return _Plan(
        reasoning="",
        text=(
            "I'm **nbsession's offline demo model**: no network, no API key, and no real "
            f"understanding of your message ({_quote(prompt)}).\n\n"
            "I can still show how a session works. Try:\n"
            "- *list the files* (runs the `shell` tool, which asks for your approval)\n"
            "- *run `date`*\n"
            "- *what is 17*23* (uses the read-only `think` tool)\n"
        ),
    )


def _after_tools(returns: list[ToolReturnPart], messages: list[ModelMessage]) -> str:
    parts: list[str] = []
    for ret in returns:
        content = str(ret.content)
        if content.startswith(("The user rejected", "Denied", "Interrupted")):
            parts.append(f"Understood: the `{ret.tool_name}` call did not run ({content}).")
        elif ret.tool_name == "think":
            thought = _call_args(messages, ret.tool_call_id).get("thought", "")
            answer = thought.rsplit("=", 1)[-1].strip() if "=" in thought else thought
            parts.append(f"The answer is **{answer}** ({thought}).")
        elif ret.tool_name == "shell":
            cmd = _call_args(messages, ret.tool_call_id).get("cmd", "")
            parts.append(f"Here is the output of `{cmd}`:\n\n```\n{content.rstrip()}\n```")
        else:
            parts.append(f"`{ret.tool_name}` said:\n\n{content}")
    parts.append("\n(Answered by the offline demo model.)")
    return "\n\n".join(parts)


def _streamed_words(count: int) -> str:
    """``count`` words, which ``_chunks`` streams as ``count`` deltas."""
    return " ".join(_WORDS[i % len(_WORDS)] for i in range(count)) + "."


def _compute(left: float, op: str, right: float) -> str:
    if op in "x*\u00d7":
        value = left * right
    elif op == "+":
        value = left + right
    elif op == "-":
        value = left - right
    elif right == 0:
        return "undefined (division by zero)"
    else:
        value = left / right
    return str(int(value)) if value == int(value) else f"{value:.6g}"


def _argument_pieces(args: str) -> list[str]:
    """Two halves, or pieces of ``ARGUMENT_PIECE`` characters for long arguments."""
    if len(args) <= 2 * ARGUMENT_PIECE:
        half = len(args) // 2
        return [args[:half], args[half:]]
    return [args[i : i + ARGUMENT_PIECE] for i in range(0, len(args), ARGUMENT_PIECE)]


def _chunks(text: str) -> list[str]:
    """Split text into small pieces, keeping whitespace, so it streams in visible deltas."""
    return re.findall(r"\S+\s*|\s+", text)


def _title_for(prompt: str) -> str:
    words = prompt.split()
    title = " ".join(words[:6]).strip(" .?!:,;")
    return (title[:60] or "New session").capitalize() if title else "New session"


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return f'"{text[:80]}…"' if len(text) > 80 else f'"{text}"'


def _is_title_request(messages: list[ModelMessage]) -> bool:
    first = messages[0]
    return isinstance(first, ModelRequest) and any(
        isinstance(p, SystemPromptPart) and TITLE_MARKER in p.content for p in first.parts
    )


def _has_user_text(request: ModelRequest) -> bool:
    return any(isinstance(p, UserPromptPart) for p in request.parts)


def _last_user_text(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in reversed(message.parts):
                if isinstance(part, UserPromptPart):
                    content = part.content
                    return content if isinstance(content, str) else " ".join(map(str, content))
    return ""


def _count_calls(messages: list[ModelMessage]) -> int:
    return sum(
        isinstance(p, ToolCallPart)
        for m in messages
        if isinstance(m, ModelResponse)
        for p in m.parts
    )


def _call_args(messages: list[ModelMessage], call_id: str) -> dict[str, str]:
    for message in messages:
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_call_id == call_id:
                    return part.args_as_dict()
    return {}
