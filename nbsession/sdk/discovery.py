"""Where ``connect()`` finds the server: arguments, environment, or the server that started us.

In order:

1. ``url=`` / ``token=`` given to ``connect()``;
2. ``NBSESSION_URL`` / ``NBSESSION_TOKEN`` in the environment (scripts, other machines);
3. the runtime file of the Jupyter server that started this kernel. jupyter-server writes
   ``jpserver-<pid>.json`` (its URL, base URL, token, unix socket) to Jupyter's runtime
   directory, readable only by its user, and jupyter_client puts the server's pid into the
   kernel's environment as ``JPY_PARENT_PID`` (the kernel's parent process otherwise). So a
   kernel started by a server finds it, and its credential, without anyone copying a token.

The token of step 3 is the server's own; when that server has none (password login only),
``NBSESSION_TOKEN``, which the kernel inherits from the server's environment, is used.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .errors import ServerNotFound

PREFIX = "nbsession"


@dataclass(frozen=True)
class ServerInfo:
    """Where the API is (``url`` ends with ``/nbsession``) and how to authenticate."""

    url: str
    token: str | None
    uds: str | None = None
    """A unix socket to connect through (a server started with ``--sock``)."""
    source: str = ""
    """Where it was found, for messages."""


def api_url(server_url: str) -> str:
    """``http://host:port/base/`` -> ``http://host:port/base/nbsession`` (kept if given)."""
    url = server_url.rstrip("/")
    return url if url.endswith("/" + PREFIX) else f"{url}/{PREFIX}"


def find_server(url: str | None = None, token: str | None = None) -> ServerInfo:
    """The server to talk to, by the rules of this module; ``ServerNotFound`` lists where
    it looked."""
    env_token = os.environ.get("NBSESSION_TOKEN") or None
    if url:
        return ServerInfo(api_url(url), token if token is not None else env_token, None, "url=")
    env_url = os.environ.get("NBSESSION_URL")
    if env_url:
        return ServerInfo(
            api_url(env_url), token if token is not None else env_token, None, "NBSESSION_URL"
        )
    looked = ["url=", "NBSESSION_URL"]
    info = _parent_server(looked)
    if info is None:
        raise ServerNotFound(looked)
    if token is not None:
        return ServerInfo(info.url, token, info.uds, info.source)
    if not info.token and env_token:
        return ServerInfo(info.url, env_token, info.uds, info.source)
    return info


def kernel_origin() -> dict[str, str]:
    """``kernel_id`` and ``notebook_path`` of the Jupyter kernel this code runs in, if any.

    The kernel id is in its connection file's name (``kernel-<id>.json``); jupyter-server
    tells a kernel its notebook in ``JPY_SESSION_NAME``. Outside a kernel: an empty dict.
    ipykernel is only asked when it is already loaded (scripts never import it).
    """
    if "ipykernel" not in sys.modules:
        return {}
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:  # no kernel app in this process (an IPython terminal, a test)
        return {}
    if not (name.startswith("kernel-") and name.endswith(".json")):
        return {}
    origin = {"kernel_id": name[len("kernel-") : -len(".json")]}
    notebook = os.environ.get("JPY_SESSION_NAME", "")
    if notebook:
        origin["notebook_path"] = notebook
    return origin


def _parent_server(looked: list[str]) -> ServerInfo | None:
    from jupyter_core.paths import jupyter_runtime_dir

    runtime_dir = jupyter_runtime_dir()
    pids = [os.environ.get("JPY_PARENT_PID", ""), str(os.getppid())]
    for pid in dict.fromkeys(p for p in pids if p.isdigit()):
        path = os.path.join(runtime_dir, f"jpserver-{pid}.json")
        looked.append(path)
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
        except (OSError, ValueError):
            continue
        return _from_runtime_file(data, path)
    return None


def _from_runtime_file(data: dict[str, object], path: str) -> ServerInfo:
    token = str(data.get("token") or "") or None
    sock = str(data.get("sock") or "")
    base_url = str(data.get("base_url") or "/")
    if sock:
        return ServerInfo(api_url(f"http://localhost{base_url}"), token, sock, path)
    parts = urlsplit(str(data.get("url") or f"http://localhost:{data.get('port')}{base_url}"))
    host = parts.hostname or "localhost"
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: this machine is one of them
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        parts = parts._replace(netloc=netloc)
    return ServerInfo(api_url(urlunsplit(parts)), token, None, path)
