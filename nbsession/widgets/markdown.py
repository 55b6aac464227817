"""A turn as plain Markdown: what a saved notebook shows where no live widget renders.

Kept short on purpose: the answer in full, each tool call in one line (name, arguments and
the start of its output), and a status line. The whole story stays in the session's log.
"""

from __future__ import annotations

import json

from ..sdk.results import ToolCallResult, TurnResult

ARGUMENTS_CHARS = 120
OUTPUT_CHARS = 160


def turn_markdown(session_id: str, result: TurnResult | None) -> str:
    """The Markdown of a turn: still running (``result`` None) or as it ended."""
    if result is None:
        return f"*nbsession · session `{session_id}` · turn running…*"
    parts = [_status(session_id, result)]
    parts.extend(_tool_line(call) for call in result.tool_calls)
    text = "\n".join(parts)
    if result.text:
        text += "\n\n" + result.text
    if result.error:
        text += f"\n\n**Error:** {_clip(result.error, OUTPUT_CHARS * 2)}"
    return text


def _status(session_id: str, result: TurnResult) -> str:
    status = {"normal": "done", "canceled": "cancelled"}.get(result.stop_reason, result.stop_reason)
    usage = result.usage
    tokens = f" · {usage.input_tokens} in / {usage.output_tokens} out tokens"
    return f"*nbsession · session `{session_id}` · {status or 'ended'}{tokens}*\n"


def _tool_line(call: ToolCallResult) -> str:
    arguments = call.arguments
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    line = f"- tool `{call.name}`(`{_clip(arguments, ARGUMENTS_CHARS)}`)"
    if call.output is None:
        return line + ": no result"
    outcome = "error" if call.is_error else "output"
    return line + f" → {outcome}: `{_clip(' '.join(call.output.split()), OUTPUT_CHARS)}`"


def _clip(text: str, limit: int) -> str:
    text = text.replace("`", "'")
    return text if len(text) <= limit else text[: limit - 1] + "…"
