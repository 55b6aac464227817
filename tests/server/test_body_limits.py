"""Body limits on the wire, against a real ``jupyter server`` (SPEC 2, Authentication).

The body is streamed, so the 401 and the 413 for a declared length come right after the
headers, before a body byte is sent; a chunked body is refused as soon as it grows past
``max_request_bytes``. Raw sockets, so nothing hides what the server sends or when; every
read has a deadline so a server that waits for the body fails the test instead of hanging.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .test_live_server import EXT_TOKEN, JUPYTER, SERVER_TOKEN, Server, start

LIMIT = 4096
DEADLINE = 5.0
HUGE = 100 * 1024 * 1024  # declared, never sent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("limits")
    running = start(home, [JUPYTER, "server", f"--NBSessionApp.max_request_bytes={LIMIT}"])
    yield running
    running.stop()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One client socket; every read gives up after ``DEADLINE`` seconds from the call."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more; False at end of stream (a reset after the reply counts as one)."""
        self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        except TimeoutError:
            raise AssertionError(f"no complete reply in {DEADLINE} s: {self.buffer!r}") from None
        self.buffer += chunk
        return bool(chunk)

    def response(self) -> Response:
        """The next response (a Content-Length body, as every nbsession JSON reply has)."""
        started = time.monotonic()
        deadline = started + DEADLINE
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(deadline), f"closed before a reply: {self.buffer!r}"
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin1").split("\r\n")
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines)}
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(deadline), f"closed inside the body: {self.buffer!r}"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        status = int(status_line.split(" ")[1])
        return Response(status, headers, body, time.monotonic() - started)

    def closed_by_server(self) -> bool:
        """True when the server ends the connection (within the deadline) with nothing more."""
        deadline = time.monotonic() + DEADLINE
        while self._fill(deadline):
            pass
        return self.buffer == b""


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} /nbsession{path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def bearer(token: str = EXT_TOKEN) -> str:
    return f"Authorization: Bearer {token}"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@pytest.fixture
def connect(server: Server) -> Iterator[Any]:
    opened: list[Connection] = []

    def open_connection() -> Connection:
        opened.append(Connection(server.port))
        return opened[-1]

    yield open_connection
    for conn in opened:
        conn.close()


def test_unauthenticated_huge_body_gets_401_before_the_body(connect: Any) -> None:
    conn = connect()
    conn.send(head("POST", "/api/sessions", f"Content-Length: {HUGE}", "Expect: 100-continue"))
    reply = conn.response()  # the first response: no "100 Continue" invitation to send
    assert (reply.status, reply.json()["code"]) == (401, "unauthorized")
    assert reply.headers["www-authenticate"] == "Bearer"
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["connection"] == "close"
    assert reply.seconds < DEADLINE
    assert conn.closed_by_server()


def test_authenticated_huge_declared_body_gets_413_before_the_body(connect: Any) -> None:
    for credential in (bearer(), bearer(SERVER_TOKEN)):
        conn = connect()
        conn.send(head("POST", "/api/sessions", credential, f"Content-Length: {HUGE}"))
        reply = conn.response()
        assert (reply.status, reply.json()["code"]) == (413, "request_too_large")
        assert str(LIMIT) in reply.json()["message"]
        assert reply.headers["connection"] == "close"
        assert conn.closed_by_server()


def test_query_token_authenticates_before_the_body(connect: Any) -> None:
    path = f"/api/sessions?token={SERVER_TOKEN}"
    conn = connect()
    conn.send(head("POST", path, f"Content-Length: {HUGE}"))
    reply = conn.response()
    assert (reply.status, reply.json()["code"]) == (413, "request_too_large")
    body = json.dumps({"title": "by query"}).encode()
    conn = connect()
    conn.send(head("POST", path, f"Content-Length: {len(body)}") + body)
    created = conn.response()
    assert (created.status, created.json()["title"]) == (200, "by query")


def test_open_routes_refuse_a_huge_declared_body_too(connect: Any) -> None:
    conn = connect()
    conn.send(head("GET", "/health", f"Content-Length: {HUGE}"))
    reply = conn.response()
    assert (reply.status, reply.json()["code"]) == (413, "request_too_large")


def test_chunked_body_past_the_limit_gets_413_before_it_ends(connect: Any) -> None:
    conn = connect()
    conn.send(head("POST", "/api/sessions", bearer(), "Transfer-Encoding: chunked"))
    conn.send(b"".join(chunk(b"x" * 1000) for _ in range(LIMIT // 1000 + 2)))  # no last chunk
    reply = conn.response()
    assert (reply.status, reply.json()["code"]) == (413, "request_too_large")
    assert reply.headers["connection"] == "close"
    assert conn.closed_by_server()


def test_chunked_and_sized_bodies_under_the_limit_work_on_one_connection(connect: Any) -> None:
    conn = connect()
    body = json.dumps({"title": "streamed " + "y" * (LIMIT - 100)}).encode()
    pieces = [body[i : i + 700] for i in range(0, len(body), 700)]
    conn.send(head("POST", "/api/sessions", bearer(), "Transfer-Encoding: chunked"))
    conn.send(b"".join(chunk(piece) for piece in pieces) + b"0\r\n\r\n")
    created = conn.response()
    assert created.status == 200, created.body
    assert created.json()["title"] == json.loads(body)["title"]
    assert "connection" not in created.headers
    # The same connection stays usable for a sized body, then for a body-less GET.
    title = json.dumps({"title": "renamed"}).encode()
    path = f"/api/sessions/{created.json()['id']}/title"
    conn.send(head("PATCH", path, bearer(), f"Content-Length: {len(title)}") + title)
    renamed = conn.response()
    assert (renamed.status, renamed.json()["title"]) == (200, "renamed")
    conn.send(head("GET", f"/api/sessions/{created.json()['id']}", bearer()))
    assert conn.response().json()["title"] == "renamed"


def test_a_body_at_exactly_the_limit_is_read(connect: Any) -> None:
    padding = LIMIT - len(json.dumps({"title": ""}))
    body = json.dumps({"title": "z" * padding}).encode()
    assert len(body) == LIMIT
    conn = connect()
    conn.send(head("POST", "/api/sessions", bearer(), f"Content-Length: {LIMIT}") + body)
    assert conn.response().status == 200
    conn.send(head("POST", "/api/sessions", bearer(), f"Content-Length: {LIMIT + 1}") + body + b" ")
    assert conn.response().status == 413


@pytest.mark.parametrize("length", ["9" * 5000, str(2**63)])
def test_a_content_length_no_length_can_have_gets_400(connect: Any, length: str) -> None:
    for request in (head("POST", "/api/sessions", bearer()), head("GET", "/health")):
        conn = connect()
        conn.send(request.replace(b"\r\n\r\n", f"\r\nContent-Length: {length}\r\n\r\n".encode()))
        reply = conn.response()
        assert (reply.status, reply.json()["code"]) == (400, "invalid_request")
        assert "Content-Length" in reply.json()["message"]
        assert conn.closed_by_server()


def test_the_log_holds_no_errors(server: Server) -> None:
    log = server.log.read_text()
    assert "Traceback" not in log
    assert not re.search(r"^\[E ", log, re.MULTILINE), log
    for secret in (SERVER_TOKEN, EXT_TOKEN):
        assert secret not in log
