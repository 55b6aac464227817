"""A real ``jupyter nbsession`` subprocess for the benchmarks that measure the server on the wire
(bench_sse, bench_sdk, bench_list, bench_stalled, bench_pane_deltas).

The server runs on a free loopback port with its own token, a SQLite file and Jupyter
directories under the given home; it is always stopped at the end (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

START_DEADLINE = 60.0  # seconds for the server to answer /health
PHASE_DEADLINE = 60.0  # no single measured operation may take longer
TIMEOUT = httpx.Timeout(30.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launcher(command: str = "") -> list[str]:
    """``--server-cmd`` if given, else ``jupyter-nbsession`` beside this interpreter, else
    ``jupyter nbsession`` (for A/B runs of a patched server, pass its command line)."""
    if command:
        args = command.split()
        return [sys.executable, *args[1:]] if args[0] == "python" else args
    script = Path(sys.executable).with_name("jupyter-nbsession")
    if script.exists():
        return [str(script)]
    return [str(Path(sys.executable).with_name("jupyter")), "nbsession"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/nbsession"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def stop(self) -> None:
        """SIGTERM (graceful: runs the extension's shutdown), SIGKILL after 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_server(home: Path, command: str = "", options: Sequence[str] = ()) -> Server:
    """Start ``jupyter nbsession`` (with extra command-line ``options``) and wait for
    /nbsession/health within START_DEADLINE."""
    port = free_port()
    token = secrets.token_hex(16)
    log = home / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER_", "NBSESSION_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
    )
    args = [
        *launcher(command),
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={home}",
        f"--NBSessionApp.db_path={home / 'sessions.db'}",
        *options,
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=out)
    server = Server(process, port, token, log)
    started = time.monotonic()
    try:
        while time.monotonic() - started < START_DEADLINE:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                    print(f"server up on port {port} in {time.monotonic() - started:.2f} s")
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # start-up polling only, bounded by the deadline
        raise RuntimeError(f"no /health within {START_DEADLINE:.0f} s:\n{log.read_text()}")
    except BaseException:
        server.stop()
        raise


@contextlib.contextmanager
def serving(home: Path, command: str = "", options: Sequence[str] = ()) -> Iterator[Server]:
    """``start_server`` for the length of a block: stopped at its end, whatever happened, and
    its exit code printed (a server that crashed during a run says so)."""
    server = start_server(home, command, options)
    try:
        yield server
    finally:
        server.stop()
        print(f"server stopped (exit code {server.process.returncode})")


async def new_session(client: httpx.AsyncClient) -> str:
    reply = await client.post("/api/sessions", json={})
    reply.raise_for_status()
    return reply.json()["id"]
