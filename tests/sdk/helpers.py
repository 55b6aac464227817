"""Real peers for the SDK tests: a kernel driven through a Jupyter server, and a TCP proxy.

``ServerKernel`` starts a kernel with the server's ``/api/kernels`` and runs code over its
``/channels`` websocket, as a Jupyter front end does. ``CuttingProxy`` forwards loopback TCP
to the server and can cut a connection in the middle of a response, as a flaky network does.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import websocket

EXECUTE_TIMEOUT = 90.0


@dataclass
class Execution:
    """What a cell produced: its stdout, its error (``ename``) and traceback, if any."""

    stdout: str = ""
    stderr: str = ""
    ename: str | None = None
    evalue: str = ""
    traceback: list[str] = field(default_factory=list)
    displays: list[dict[str, Any]] = field(default_factory=list)
    """The ``display_data`` / ``update_display_data`` / ``execute_result`` contents."""

    def check(self) -> Execution:
        assert self.ename is None, "\n".join([self.ename or "", self.evalue, *self.traceback])
        return self


class ServerKernel:
    """A kernel of a running Jupyter server, used over HTTP and its websocket channels."""

    def __init__(self, server_url: str, token: str, notebook: str | None = None) -> None:
        """A new kernel; with ``notebook`` (a path), one for that notebook, as JupyterLab
        opens it (``/api/sessions``)."""
        self.server_url = server_url.rstrip("/")
        self._headers = {"Authorization": f"token {token}"}
        if notebook is None:
            reply = httpx.post(
                f"{self.server_url}/api/kernels", json={"name": "python3"}, headers=self._headers
            )
            reply.raise_for_status()
            self.id = reply.json()["id"]
        else:
            body = {"path": notebook, "name": notebook, "type": "notebook"}
            reply = httpx.post(
                f"{self.server_url}/api/sessions",
                json={**body, "kernel": {"name": "python3"}},
                headers=self._headers,
            )
            reply.raise_for_status()
            self.id = reply.json()["kernel"]["id"]
        ws_url = self.server_url.replace("http://", "ws://") + f"/api/kernels/{self.id}/channels"
        self._ws = websocket.create_connection(
            ws_url, header=[f"Authorization: token {token}"], timeout=EXECUTE_TIMEOUT
        )
        self._session = uuid.uuid4().hex

    def execute(self, code: str, on_stdout: Callable[[str], None] | None = None) -> Execution:
        """Run ``code`` as a cell and wait until the kernel is idle again."""
        msg_id = uuid.uuid4().hex
        self._ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "session": self._session,
                        "username": "test",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": True,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        result = Execution()
        replied = idle = False
        while not (replied and idle):
            message = json.loads(self._ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                    if on_stdout is not None:
                        on_stdout(content["text"])
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "update_display_data", "execute_result"):
                result.displays.append(content)
            elif kind == "error":
                result.ename, result.evalue = content["ename"], content["evalue"]
                result.traceback = content["traceback"]
        return result

    def interrupt(self) -> None:
        """What the notebook's stop button does."""
        url = f"{self.server_url}/api/kernels/{self.id}/interrupt"
        httpx.post(url, headers=self._headers).raise_for_status()

    def close(self) -> None:
        self._ws.close()
        httpx.delete(f"{self.server_url}/api/kernels/{self.id}", headers=self._headers)


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to the server; ``cut(marker, after)`` arms a one-time cut.

    An armed proxy closes the first connection whose request contains ``marker`` once
    ``after`` SSE frames of the response have passed (counted after the response's head), in
    the middle of the next frame. ``refuse(marker)`` closes every request containing
    ``marker`` unanswered until ``allow()``. ``go_down()`` drops the whole network instead:
    every open connection is cut and new ones are closed at once, until ``come_back()``.
    """

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed: tuple[bytes, int] | None = None
        self._refused: bytes | None = None
        self._lock = threading.Lock()
        self.cuts = 0
        self.refusals = 0
        self._sockets: list[socket.socket] = []
        self._closed = threading.Event()
        self._down = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, marker: bytes, after: int) -> None:
        with self._lock:
            self._armed = (marker, after)

    def refuse(self, marker: bytes) -> None:
        with self._lock:
            self._refused = marker

    def allow(self) -> None:
        with self._lock:
            self._refused = None

    def go_down(self) -> None:
        self._down.set()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def come_back(self) -> None:
        self._down.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                downstream.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._sockets += [downstream, upstream]
            cutter = _Cutter(self)
            threading.Thread(
                target=self._pump, args=(downstream, upstream, cutter.request), daemon=True
            ).start()
            threading.Thread(
                target=self._pump, args=(upstream, downstream, cutter.response), daemon=True
            ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, inspect: Callable[[bytes], int]
    ) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                keep = inspect(data)
                sink.sendall(data[:keep])
                if keep < len(data):
                    break
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            sock.close()


class _Cutter:
    """The cut decision for one proxied connection."""

    def __init__(self, proxy: CuttingProxy) -> None:
        self._proxy = proxy
        self._frames_left: int | None = None
        self._in_head = True

    def request(self, data: bytes) -> int:
        with self._proxy._lock:
            refused = self._proxy._refused
            if refused is not None and refused in data:
                self._proxy.refusals += 1
                return 0  # closed before the server sees it
            armed = self._proxy._armed
            if armed is not None and armed[0] in data and self._frames_left is None:
                self._frames_left = armed[1]
                self._proxy._armed = None
        return len(data)

    def response(self, data: bytes) -> int:
        if self._frames_left is None:
            return len(data)
        position = 0
        if self._in_head:  # the status line and headers pass whole
            end = data.find(b"\r\n\r\n")
            if end < 0:
                return len(data)
            self._in_head = False
            position = end + 4
        while self._frames_left > 0:
            found = data.find(b"\n\n", position)
            if found < 0:
                return len(data)
            self._frames_left -= 1
            position = found + 2
        if position + 7 >= len(data):
            return len(data)  # the next frame starts in a later chunk: cut there
        self._frames_left = None
        self._proxy.cuts += 1
        return position + 7  # a few bytes into the next frame, then nothing more


def drain(q: queue.Queue[Any]) -> list[Any]:
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    return items
