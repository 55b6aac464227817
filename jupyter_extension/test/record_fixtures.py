"""Record real event streams from a live nbsession server as fixtures for the pane's tests.

It starts ``jupyter nbsession`` on a free loopback port with the offline demo agent, runs one
turn per scenario while following the session's ``/events`` stream (exactly what the pane
reads), answers the prompts as a user would, deletes the session so the stream ends with
``session_exited``, and writes the events to ``fixtures/<scenario>.json``.

    python jupyter_extension/test/record_fixtures.py
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent / "fixtures"
Event = dict[str, Any]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recorder:
    """One server, a client for it, and a way to follow a session's ``/events``."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def follow(self, session_id: str, into: list[Event]) -> threading.Thread:
        """Collect every ``/events`` event (with its ``id`` as ``seq``) until ``session_exited``."""

        def read() -> None:
            url = f"/api/sessions/{session_id}/events"
            with self.client.stream("GET", url, params={"since": 0}, timeout=None) as response:
                seq = None
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        seq = int(line[4:])
                    elif line.startswith("data: "):
                        event = json.loads(line[6:])
                        into.append({"seq": seq, "event": event})
                        seq = None
                        if event["type"] == "session_exited":
                            return

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        return thread

    def scenario(
        self,
        prompt: str,
        answer: Callable[[Event, str], bool],
        model: str | None = None,
        agent: str = "default",
    ) -> list[Event]:
        session_id = self.client.post("/api/sessions", json={}).json()["id"]
        events: list[Event] = []
        follower = self.follow(session_id, events)
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
        if model:
            body["model"] = model
        url = f"/api/sessions/{session_id}/agent/{agent}"
        # A detached run goes on after its stream is closed; the turn is followed on /events.
        with self.client.stream("POST", url, json=body, params={"detach": "true"}) as response:
            response.raise_for_status()
        answered = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = [e for e in events if e["event"]["type"] == "stream_stopped"]
            if done:
                break
            if answered < len(events):
                for entry in events[answered:]:
                    if answer(entry["event"], session_id):
                        break
                answered = len(events)
            time.sleep(0.05)
        self.client.delete(f"/api/sessions/{session_id}", params={"wait": "true"})
        follower.join(10)
        return events

    @staticmethod
    def _title_seen(events: list[Event]) -> bool:
        return any(e["event"]["type"] == "session_title" for e in events)

    def resume(self, session_id: str, **body: Any) -> None:
        self.client.post(f"/api/sessions/{session_id}/resume", json=body).raise_for_status()

    def snapshot(self, session_id: str) -> Event:
        response = self.client.get(f"/api/sessions/{session_id}/snapshot")
        response.raise_for_status()
        return dict(response.json())

    def cancel(self, session_id: str) -> None:
        self.client.post(f"/api/sessions/{session_id}/cancel").raise_for_status()


def main() -> None:
    token = secrets.token_hex(16)
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "notes.txt").write_text("hello\n")
        agents = Path(tmp) / ".agents"
        agents.mkdir()
        # An agent with the filesystem toolset: its write_file confirmation carries a diff.
        (agents / "files.yaml").write_text(
            "agents:\n  root:\n    model: demo/offline\n    toolsets: [{type: filesystem}]\n"
        )
        # An agent with the plan toolset: write_plan asks, then announces plan_updated.
        (agents / "plans.yaml").write_text(
            "agents:\n  root:\n    model: demo/offline\n    toolsets: [{type: plan}]\n"
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from nbsession.server.app import main; main()",
                f"--port={port}",
                "--ip=127.0.0.1",
                "--allow-root",
                f"--ServerApp.root_dir={tmp}",
                "--NBSessionApp.db_path=:memory:",
                f"--NBSessionApp.agents_dir={agents}",
            ],
            env={**os.environ, "NBSESSION_TOKEN": token},
            cwd=tmp,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}/nbsession"
            for _ in range(300):
                try:
                    httpx.get(f"{base}/health").raise_for_status()
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            rec = Recorder(base, token)

            snapshots: dict[str, Event] = {}

            def on_confirm(action: dict[str, Any]) -> Callable[[Event, str], bool]:
                def answer(event: Event, sid: str) -> bool:
                    if event["type"] == "tool_call_confirmation":
                        # What a pane opened now would read first: the turn waits for approval.
                        snapshots.setdefault("waiting", rec.snapshot(sid))
                        rec.resume(sid, **action)
                        return True
                    return False

                return answer

            def cancel_on_confirm(event: Event, sid: str) -> bool:
                if event["type"] == "tool_call_confirmation":
                    rec.cancel(sid)
                    return True
                return False

            never = on_confirm({})
            edit = 'call `write_file` with {"path": "notes.txt", "content": "hello\\nworld\\n"}'
            plan = 'call `write_plan` with {"content": "# Plan\\n\\n1. Read\\n2. Write\\n"}'
            scenarios: dict[str, tuple[Any, ...]] = {
                "approve": ("list the files", on_confirm({"confirmation": "approve"})),
                "write": (edit, on_confirm({"confirmation": "approve"}), None, "files"),
                "reject": (
                    "run `date`",
                    on_confirm({"confirmation": "reject", "reason": "not now"}),
                ),
                "think": ("what is 17*23", never),
                "plan": ("make a plan", never),
                "write-plan": (plan, on_confirm({"confirmation": "approve"}), None, "plans"),
                "cancel": ("list the files", cancel_on_confirm),
            }
            HERE.mkdir(exist_ok=True)
            for name, (prompt, answer, *rest) in scenarios.items():
                events = rec.scenario(prompt, answer, *rest)
                path = HERE / f"{name}.json"
                path.write_text(json.dumps(events, indent=1) + "\n")
                print(f"{path}: {len(events)} events")
            for name, snapshot in snapshots.items():
                path = HERE / f"snapshot-{name}.json"
                path.write_text(json.dumps(snapshot, indent=1) + "\n")
                print(f"{path}: last_event_seq {snapshot['last_event_seq']}")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
