"""Against a real ``jupyter server`` subprocess: SSE on the wire, several clients, auth, stop.

One server serves the module (the package is installed, so a plain ``jupyter server`` loads
the extension). Tests wait on events read from the streams, never on sleeps; every read has
a timeout so a failure cannot hang the suite.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from nbsession.server.routes import ROUTES

from .conftest import PLACEHOLDERS

SERVER_TOKEN = "server-token-5b2e"
EXT_TOKEN = "ext-token-91cd"
CAPACITY = 200  # above one turn of the demo model, so only the gap test overflows it
TIMEOUT = httpx.Timeout(15.0)
JUPYTER = str(Path(sys.executable).with_name("jupyter"))
# How long a server that neither exits nor answers may take to start. Alone it takes ~2 s; with
# the machine's two cores shared by several test runs one took over 30 s, so this is generous:
# it only bounds a start-up that hangs.
START_DEADLINE = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running server process, its URL (ending in /nbsession) and its log file."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/nbsession"

    def client(self, token: str = EXT_TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def environment(home: Path) -> dict[str, str]:
    """The caller's environment with Jupyter's directories in ``home``, so nothing leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "NBSESSION_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        NBSESSION_TOKEN=EXT_TOKEN,
    )
    return env


def start(
    home: Path, command: list[str], name: str = "server", options: tuple[str, ...] = ()
) -> Server:
    """Run ``command`` (a server on a free port) until /health answers (or it exits);
    ``options`` (``--Class.trait=value``) replace the defaults set here for the same traits."""
    port = free_port()
    log = home / f"{name}.log"
    defaults = [
        "--allow-root",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={SERVER_TOKEN}",
        f"--ServerApp.root_dir={home}",
        f"--NBSessionApp.db_path={home / 'sessions.db'}",
        f"--NBSessionApp.event_log_capacity={CAPACITY}",
        "--NBSessionApp.heartbeat_interval=0.2",
    ]
    # A trait given twice on a command line is not "the last one wins": keep one of each.
    replaced = {option.partition("=")[0] for option in options}
    args = [
        *command,
        *(option for option in defaults if option.partition("=")[0] not in replaced),
        *options,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=environment(home), stdout=out, stderr=out)
    server = Server(process, port, log)
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # polling for start-up only, bounded by the deadline
    server.stop()
    raise RuntimeError(f"server did not answer within {START_DEADLINE} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("live")


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Server]:
    running = start(home, [JUPYTER, "server"])
    yield running
    running.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


# -- SSE reading ----------------------------------------------------------------------------


Event = tuple[int | None, dict[str, Any]]


class SSE:
    """Reads SSE events from an open httpx stream, one at a time."""

    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        self.response = response
        self.lines = response.iter_lines()
        self.seen: list[Event] = []

    def next(self) -> Event | None:
        """The next event, or None when the server ended the stream."""
        seq, data = None, None
        for line in self.lines:
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                self.seen.append((seq, data))
                return seq, data
        return None

    def until(self, event_type: str) -> dict[str, Any]:
        while (event := self.next()) is not None:
            if event[1]["type"] == event_type:
                return event[1]
        raise AssertionError(f"stream ended before {event_type}: {self.types}")

    def rest(self) -> list[Event]:
        while self.next() is not None:
            pass
        return self.seen

    @property
    def types(self) -> list[str]:
        return [event["type"] for _, event in self.seen]

    @property
    def seqs(self) -> list[int | None]:
        return [seq for seq, _ in self.seen]


def create(client: httpx.Client, **template: Any) -> str:
    reply = client.post("/api/sessions", json=template)
    assert reply.status_code == 200, reply.text
    return reply.json()["id"]


def messages(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def run(client: httpx.Client, session_id: str, text: str, **params: str) -> Any:
    """A context manager streaming a turn (``with run(...) as response``)."""
    url = f"/api/sessions/{session_id}/agent/default"
    return client.stream("POST", url, json=messages(text), params=params)


def events(client: httpx.Client, session_id: str, **kwargs: Any) -> Any:
    return client.stream("GET", f"/api/sessions/{session_id}/events", **kwargs)


# -- raw HTTP -------------------------------------------------------------------------------


def raw_request(port: int, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(request)
    return sock


def read_until(sock: socket.socket, marker: bytes, buffer: bytes = b"") -> bytes:
    while marker not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}: {buffer[-500:]!r}")
        buffer += chunk
    return buffer


def dechunk(body: bytes) -> bytes:
    """Decode an HTTP/1.1 chunked body that ends with the zero-length chunk."""
    out, rest = b"", body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            return out
        out, rest = out + rest[:size], rest[size + 2 :]


def test_sse_framing_on_the_wire(server: Server, client: httpx.Client) -> None:
    session_id = create(client)
    body = json.dumps(messages("what is 17*23")).encode()
    sock = raw_request(
        server.port,
        b"POST /nbsession/api/sessions/%b/agent/default HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\nAuthorization: Bearer %b\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b"
        % (session_id.encode(), EXT_TOKEN.encode(), len(body), body),
    )
    with sock:
        data = read_until(sock, b"\r\n0\r\n\r\n")
    head, _, chunked = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    assert lines[0] == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-accel-buffering"] == "no"
    assert headers["transfer-encoding"] == "chunked"
    frames = dechunk(chunked).decode()
    blocks = frames.split("\n\n")
    assert blocks.pop() == ""  # the stream ends with a complete frame
    seqs = []
    # A turn slower than the short test heartbeat (a loaded machine) may carry a ping comment.
    for block in (b for b in blocks if b != ": ping"):
        match = re.fullmatch(r"id: (\d+)\ndata: (\{.*\})", block)
        assert match, block
        seqs.append(int(match[1]))
        assert json.loads(match[2])["type"]
    assert seqs == list(range(1, len(seqs) + 1))
    assert json.loads(blocks[-1].split("data: ", 1)[1])["type"] == "stream_stopped"


def test_heartbeat_on_an_idle_event_stream(server: Server, client: httpx.Client) -> None:
    session_id = create(client)
    sock = raw_request(
        server.port,
        b"GET /nbsession/api/sessions/%b/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer %b\r\n\r\n" % (session_id.encode(), EXT_TOKEN.encode()),
    )
    with sock:
        data = read_until(sock, b": ping\n\n")
    assert data.startswith(b"HTTP/1.1 200 OK")


# -- several clients ------------------------------------------------------------------------


def test_two_clients_see_the_same_ids(server: Server, client: httpx.Client) -> None:
    session_id = create(client)
    with server.client(SERVER_TOKEN) as other, events(other, session_id) as tail:
        watcher = SSE(tail)
        with run(client, session_id, "what is 17*23") as response:
            runner = SSE(response)
            runner.rest()
        watcher.until("stream_stopped")
    assert runner.types[-1] == "stream_stopped"
    assert watcher.seen == runner.seen


def test_full_turn_approved_from_a_second_client(server: Server, client: httpx.Client) -> None:
    session_id = create(client)
    with run(client, session_id, "list the files") as response:
        turn = SSE(response)
        asked = turn.until("tool_call_confirmation")
        assert asked["tool_call"]["function"]["name"] == "shell"
        with server.client(SERVER_TOKEN) as other:
            busy = other.post(f"/api/sessions/{session_id}/agent/default", json=messages("hi"))
            assert (busy.status_code, busy.json()["code"]) == (409, "session_busy")
            approved = other.post(
                f"/api/sessions/{session_id}/resume", json={"confirmation": "approve"}
            )
            assert approved.status_code == 200
        result = turn.until("tool_call_response")
        turn.rest()
    assert result["result"]["isError"] is False
    assert turn.types[-1] == "stream_stopped"
    snapshot = client.get(f"/api/sessions/{session_id}/snapshot").json()
    assert snapshot["streaming"] is False
    assert [m["message"]["role"] for m in snapshot["messages"]][:2] == ["user", "assistant"]


def test_reconnect_with_last_event_id_gets_each_event_once(
    server: Server, client: httpx.Client
) -> None:
    session_id = create(client)
    with run(client, session_id, "list the files") as response:
        turn = SSE(response)
        turn.until("tool_call_confirmation")
        with events(client, session_id) as first:
            reader = SSE(first)
            for _ in range(3):
                reader.next()
        # Disconnected; the turn goes on while this reader is away.
        client.post(f"/api/sessions/{session_id}/resume", json={"confirmation": "approve"})
        turn.rest()
        last_seen = reader.seqs[-1]
        with events(client, session_id, headers={"Last-Event-ID": str(last_seen)}) as second:
            again = SSE(second)
            again.until("stream_stopped")
    assert reader.seen + again.seen == turn.seen


def test_gap_after_eviction(client: httpx.Client) -> None:
    session_id = create(client)
    while True:
        with run(client, session_id, "what is 17*23") as response:
            last = SSE(response).rest()[-1][0]
        assert last is not None
        if last > CAPACITY + 2:
            break
    for since in ("1", str(last + 100)):
        with events(client, session_id, params={"since": since}) as response:
            reader = SSE(response)
            gap = reader.next()
            first = reader.next()
        assert gap == (None, {"type": "gap"})
        assert first is not None and first[0] == last - CAPACITY + 1
    snapshot = client.get(f"/api/sessions/{session_id}/snapshot").json()
    assert snapshot["last_event_seq"] == last


def test_session_exited_on_delete(client: httpx.Client) -> None:
    session_id = create(client)
    with events(client, session_id) as response:
        reader = SSE(response)
        assert client.delete(f"/api/sessions/{session_id}").status_code == 200
        exited = reader.until("session_exited")
        assert reader.next() is None  # and the stream closes
    assert exited["reason"] == "session deleted"
    assert reader.seqs[-1] is not None


def test_disconnecting_cancels_the_turn_unless_detached(client: httpx.Client) -> None:
    for detach in ("false", "true"):
        session_id = create(client)
        with events(client, session_id) as tail:
            watcher = SSE(tail)
            with run(client, session_id, "list the files", detach=detach) as response:
                SSE(response).until("tool_call_confirmation")
            watcher.until("tool_call_confirmation")
            if detach == "true":
                status = client.get(f"/api/sessions/{session_id}/status").json()
                assert status["streaming"] is True
                client.post(f"/api/sessions/{session_id}/resume", json={"confirmation": "approve"})
                watcher.until("tool_call_response")
            stopped = watcher.until("stream_stopped")
        assert stopped["reason"] == ("normal" if detach == "true" else "canceled")


# -- the server log -------------------------------------------------------------------------

# jupyter-server's line format: level initial, date and time with milliseconds, logger name.
_LOG_LINE = r"\[{level} \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{{3}} {name}\] {message}"


def log_lines(server: Server, level: str, name: str, message: str) -> list[str]:
    """The server's log lines of ``level`` from logger ``name`` whose message matches."""
    pattern = re.compile(_LOG_LINE.format(level=level, name=name, message=message))
    return [line for line in server.log.read_text().splitlines() if pattern.search(line)]


def wait_for_log_line(server: Server, level: str, name: str, message: str) -> str:
    deadline = time.monotonic() + 15
    while not (lines := log_lines(server, level, name, message)):
        assert time.monotonic() < deadline, server.log.read_text()[-3000:]
        time.sleep(0.05)  # the server writes the line after the client saw the turn end
    return lines[0]


def test_start_up_says_where_the_api_is_in_the_server_log(server: Server, home: Path) -> None:
    (line,) = log_lines(server, "I", r"\w+", "nbsession: API at ")
    assert f"http://localhost:{server.port}/nbsession/" in line
    assert f"db_path={home / 'sessions.db'}" in line
    assert f"agents_dir={home / 'data' / 'nbsession' / 'agents'}" in line


def test_a_broken_agent_file_is_warned_about_in_the_server_log(
    server: Server, home: Path, client: httpx.Client
) -> None:
    agents = home / "data" / "nbsession" / "agents"
    agents.mkdir(parents=True, exist_ok=True)
    (agents / "half-written.yaml").write_text("agents: {root: {description: no model}}\n")
    (row,) = [a for a in client.get("/api/agents").json() if a["name"] == "half-written"]
    assert row["error"].startswith("half-written.yaml: agents.root.model: ")
    # Through the server's handlers (level, time, logger name), never as a bare line.
    assert log_lines(server, "W", r"nbsession\.config", "Agent source .*half-written.yaml")
    text = server.log.read_text()
    assert not [line for line in text.splitlines() if line.startswith("Agent source")]


def test_a_run_stream_closed_by_its_client_is_logged(server: Server, client: httpx.Client) -> None:
    session_id = create(client)
    with run(client, session_id, "list the files") as response:
        SSE(response).until("tool_call_confirmation")
    wait_for_log_line(
        server, "I", r"\w+", f"nbsession: the run stream of session {session_id} was closed"
    )


# -- limits and auth ------------------------------------------------------------------------


def test_every_route_needs_a_valid_token(server: Server) -> None:
    attempts = {"none": "", "wrong": "nope-nope"}
    for name, token in attempts.items():
        with server.client(token) as http:
            for route in ROUTES:
                for method in route.operations:
                    url = route.path.format(**PLACEHOLDERS)
                    reply = http.request(method, url, json={} if method != "GET" else None)
                    expected = 200 if route.open else 401
                    assert reply.status_code == expected, (name, method, url)
                    if not route.open:
                        assert reply.headers["www-authenticate"] == "Bearer"
                        assert reply.json()["code"] == "unauthorized"


def test_oversized_bodies_are_refused(client: httpx.Client) -> None:
    body = b'{"title": "' + b"x" * (1 << 20) + b'"}'
    reply = client.post("/api/sessions", content=body, headers={"Content-Type": "application/json"})
    assert (reply.status_code, reply.json()["code"]) == (413, "request_too_large")


def test_cookie_writes_need_the_xsrf_token(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as browser:
        assert browser.get("/api/ping", params={"token": SERVER_TOKEN}).status_code == 200
        assert browser.get("/api/sessions").status_code == 200  # the login cookie now
        refused = browser.post("/api/sessions", json={})
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
        browser.cookies.set("_xsrf", "c0ffee")
        accepted = browser.post("/api/sessions", json={}, headers={"X-XSRFToken": "c0ffee"})
        assert accepted.status_code == 200


# -- a docker-agent client ------------------------------------------------------------------


class DockerAgentClient:
    """What a client written for docker-agent's API does: base URL + /api/..., SSE data lines."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT
        )

    def create_session(self) -> dict[str, Any]:
        zero = {
            "id": "",
            "title": "",
            "messages": None,
            "created_at": "0001-01-01T00:00:00Z",
            "tools_approved": False,
            "hide_tool_results": False,
            "max_iterations": 0,
            "starred": False,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost": 0,
        }
        return self.http.post("/api/sessions", json=zero).raise_for_status().json()

    def run(self, session_id: str, agent: str, content: str) -> Iterator[dict[str, Any]]:
        body = {"messages": [{"role": "user", "content": content}]}
        url = f"/api/sessions/{session_id}/agent/{agent}"
        with self.http.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[len("data: ") :])

    def resume(self, session_id: str, confirmation: str) -> None:
        url = f"/api/sessions/{session_id}/resume"
        self.http.post(url, json={"confirmation": confirmation}).raise_for_status()

    def sessions(self) -> list[dict[str, Any]]:
        return self.http.get("/api/sessions").raise_for_status().json()

    def session(self, session_id: str) -> dict[str, Any]:
        return self.http.get(f"/api/sessions/{session_id}").raise_for_status().json()

    def delete(self, session_id: str) -> None:
        self.http.delete(f"/api/sessions/{session_id}").raise_for_status()

    def close(self) -> None:
        self.http.close()


def test_a_docker_agent_client_works_unchanged(server: Server) -> None:
    agent = DockerAgentClient(server.url, EXT_TOKEN)
    try:
        session_id = agent.create_session()["id"]
        seen = []
        for event in agent.run(session_id, "default", "list the files"):
            seen.append(event["type"])
            if event["type"] == "tool_call_confirmation":
                agent.resume(session_id, "approve")
        assert seen[-1] == "stream_stopped" and "tool_call_response" in seen
        assert session_id in [s["id"] for s in agent.sessions()]
        assert agent.session(session_id)["title"]
        agent.delete(session_id)
        assert session_id not in [s["id"] for s in agent.sessions()]
    finally:
        agent.close()


# -- the server's own behaviour -------------------------------------------------------------


def test_the_log_holds_no_errors_and_no_tokens(server: Server) -> None:
    """After every disconnect above: no tracebacks, no error lines, no credentials."""
    log = server.log.read_text()
    assert "Traceback" not in log
    assert not re.search(r"^\[E ", log, re.MULTILINE), log
    for secret in (SERVER_TOKEN, EXT_TOKEN, "nope-nope"):
        assert secret not in log


def test_stopping_the_server_ends_streams_and_keeps_the_turn(server: Server, home: Path) -> None:
    with server.client() as http:
        session_id = create(http)
        with events(http, session_id) as tail, run(http, session_id, "list the files") as turn:
            watcher, runner = SSE(tail), SSE(turn)
            runner.until("tool_call_confirmation")
            watcher.until("tool_call_confirmation")
            server.process.send_signal(signal.SIGTERM)
            exited = watcher.until("session_exited")
            assert watcher.next() is None
            runner.until("stream_stopped")
    assert exited["reason"] == "server stopping"
    assert server.process.wait(timeout=15) == 0

    restarted = start(home, [JUPYTER, "server"], name="restarted")
    try:
        with restarted.client() as http:
            stored = http.get(f"/api/sessions/{session_id}").json()
            assert stored["messages"][0]["message"]["content"] == "list the files"
            with run(http, session_id, "what is 17*23") as response:
                assert SSE(response).rest()[-1][1]["type"] == "stream_stopped"
    finally:
        restarted.stop()


def test_extension_is_enabled_by_installation(home: Path) -> None:
    listing = subprocess.run(
        [JUPYTER, "server", "extension", "list"],
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", listing.stdout + listing.stderr)
    assert re.search(r"nbsession enabled", output), output
    assert re.search(r"nbsession \S+ OK", output), output


def test_standalone_launcher_serves_the_api(home: Path) -> None:
    launcher = [JUPYTER, "nbsession"]
    standalone = start(home, launcher, name="standalone")
    try:
        with standalone.client() as http:
            assert http.get("/api/ping").json() == {"status": "ok"}
    finally:
        standalone.stop()
    assert "nbsession is running without loading other extensions" in standalone.log.read_text()
