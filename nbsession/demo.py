"""``nbsession-demo``: one offline turn with a tool approval, printed as it streams.

It runs the real engine (SQLite store, event log, agent loop, session manager) in this process
on the bundled offline agent, so it needs no network and no API key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from typing import Any, TextIO

from .manager import ManagerConfig, SessionManager

DEFAULT_PROMPTS = ("list the files", "what is 17*23")


def _describe(event: dict[str, Any], previous: str) -> str:
    """One event as terminal text; ``previous`` is the type of the event before it."""
    kind = event["type"]
    if kind in ("agent_choice", "agent_choice_reasoning"):
        label = "\n(thinking) " if kind == "agent_choice_reasoning" else "\n"
        return event["content"] if previous == kind else label + event["content"]
    if kind in ("tool_call", "tool_call_confirmation"):
        call = event["tool_call"]["function"]
        return f"\n[{kind}] {call['name']} {call['arguments']}\n"
    if kind == "tool_call_response":
        marker = "error" if event["result"]["isError"] else "ok"
        output = event["response"]
        short = output if len(output) < 400 else output[:400] + "…"
        return f"[tool result: {marker}]\n{short}\n"
    if kind in ("partial_tool_call", "tool_call_output"):  # the result shows it all
        return ""
    if kind == "team_info":
        agents = ", ".join(agent["name"] for agent in event["available_agents"])
        return f"\n[team_info] agents: {agents}"
    if kind == "toolset_info":
        return f"\n[toolset_info] {event['available_tools']} tools\n"
    details = {k: v for k, v in event.items() if k not in ("type", "timestamp", "agent_name")}
    return f"\n[{kind}] {json.dumps(details)}\n"


async def run_demo(prompts: tuple[str, ...], db_path: str, working_dir: str, out: TextIO) -> None:
    manager = SessionManager(ManagerConfig(db_path=db_path, working_dir=working_dir))
    await manager.start()
    try:
        session = await manager.create_session({})
        out.write(f"session {session.id} (store: {db_path})\n")
        for prompt in prompts:
            out.write(f"\n>>> {prompt}\n")
            stream = await manager.run_session(
                session.id, "default", "", [{"role": "user", "content": prompt}]
            )
            previous = ""
            async for entry in stream:
                event = json.loads(entry.data)
                out.write(_describe(event, previous))
                previous = event["type"]
                out.flush()
                if event["type"] == "tool_call_confirmation":
                    out.write("[approving the call, as a user clicking Approve would]\n")
                    await manager.resume_session(session.id, "approve")
        stored = await manager.get_session(session.id)
        out.write(
            f"\n\nsession {stored.title!r}: {len(stored.messages)} messages committed, "
            f"{stored.input_tokens} input / {stored.output_tokens} output tokens\n"
        )
    finally:
        await manager.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prompts", nargs="*", help=f"prompts to run (default: {DEFAULT_PROMPTS})")
    parser.add_argument("--db", default="", help="SQLite file (default: a temporary one)")
    parser.add_argument("--working-dir", default=os.getcwd(), help="where the shell tool runs")
    args = parser.parse_args(argv)
    prompts = tuple(args.prompts) or DEFAULT_PROMPTS
    with tempfile.TemporaryDirectory() as tmp:
        db_path = args.db or os.path.join(tmp, "sessions.sqlite3")
        asyncio.run(run_demo(prompts, db_path, args.working_dir, sys.stdout))


if __name__ == "__main__":
    main()
