"""A session server doing turns until it is killed: the subject of ``test_crash.py``.

Run as ``python crash_worker.py DB_PATH WORK_DIR``. It opens a ``SessionManager`` on the SQLite
file, creates sessions and runs a fixed script of turns, one at a time, writing one line to
stdout (flushed) for each fact the test relies on:

- ``SESSION <id>``: the session is created (committed);
- ``COMMITTED <session_id> <message_id> <json>``: the message is committed. The worker learns
  it from the manager's copy of the live session, which the recorder extends only after the
  store committed the write, and checks it after every event of the turn;
- ``PENDING <session_id> <tool_call_id>``: the turn waits for a confirmation that never comes;
- ``MIDSTREAM <session_id>``: the slow model has streamed its first chunk of a long answer;
- ``DONE``: the script is over; the worker then idles until it is killed.

The script: session 0 asks for ``sleep 5`` and is left waiting for the approval (the rest runs
while it waits); session 1 chats on the fast offline model and uses the think tool; session 2
runs ``echo`` twice with approval; session 3 streams a long answer on ``demo/slow``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from nbsession.manager import ManagerConfig, SessionManager

SLOW_AGENT = """\
version: "2"
agents:
  root:
    model: demo/slow
    description: "The offline demo model, streaming 50 ms per chunk"
    instruction: "You are slow."
    toolsets:
      - type: think
"""

# (session index, agent source, prompt); agent "default" is the bundled offline agent.
SCRIPT = [
    (1, "default", "hello"),
    (2, "default", "run `echo hi`"),
    (3, "slow", "tell me about yourself"),
    (1, "default", "what is 6*7"),
    (2, "default", "run `echo bye`"),
    (1, "default", "thanks"),
]
SESSIONS = 4


def say(*words: str) -> None:
    print(*words, flush=True)


class Worker:
    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.reported: dict[str, int] = {}  # session id -> messages reported committed

    async def report(self, session_id: str) -> None:
        """Print every message of the session committed since the last report."""
        session = await self.manager.get_session(session_id)
        messages = session.chat_messages()
        for message in messages[self.reported.get(session_id, 0) :]:
            chat = message.message
            record = {
                "role": chat.role,
                "content": chat.content,
                "tool_calls": [call.id for call in chat.tool_calls or []],
                "tool_call_id": chat.tool_call_id,
            }
            say("COMMITTED", session_id, message.id, json.dumps(record))
        self.reported[session_id] = len(messages)

    async def turn(self, session_id: str, agent: str, prompt: str, *, approve: bool) -> None:
        """Run one turn; approve each confirmation, or leave the first one pending."""
        stream = await self.manager.run_session(
            session_id, agent, "", [{"role": "user", "content": prompt}]
        )
        streamed = False
        async for entry in stream:
            await self.report(session_id)
            if entry.type == "tool_call_confirmation":
                if not approve:
                    call = json.loads(entry.data)["tool_call"]
                    stream.close()  # the turn goes on waiting; nobody answers
                    say("PENDING", session_id, call["id"])
                    return
                await self.manager.resume_session(session_id, "approve")
            elif entry.type == "agent_choice" and agent == "slow" and not streamed:
                streamed = True
                say("MIDSTREAM", session_id)
        await self.report(session_id)


async def main(db_path: str, work_dir: str) -> None:
    agents_dir = Path(work_dir) / "agents"
    agents_dir.mkdir(parents=True, exist_ok=True)
    (agents_dir / "slow.yaml").write_text(SLOW_AGENT, encoding="utf-8")
    manager = SessionManager(
        ManagerConfig(db_path=db_path, agents_dir=str(agents_dir), working_dir=work_dir)
    )
    await manager.start()
    worker = Worker(manager)
    ids = []
    for _ in range(SESSIONS):
        session = await manager.create_session()
        ids.append(session.id)
        say("SESSION", session.id)
    await worker.turn(ids[0], "default", "run `sleep 5`", approve=False)
    for index, agent, prompt in SCRIPT:
        await worker.turn(ids[index], agent, prompt, approve=True)
    say("DONE")
    await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
