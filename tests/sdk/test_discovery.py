"""How ``connect()`` finds a server: arguments, environment, the parent server's runtime file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbsession.sdk.discovery import find_server
from nbsession.sdk.errors import ServerNotFound


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("JPY_PARENT_PID", "4242")
    for name in ("NBSESSION_URL", "NBSESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _server_file(runtime: Path, **fields: object) -> Path:
    path = runtime / "jpserver-4242.json"
    path.write_text(json.dumps({"base_url": "/", "token": "", "sock": "", **fields}))
    return path


def test_the_parent_servers_runtime_file(runtime: Path) -> None:
    path = _server_file(runtime, url="http://localhost:8890/lab-base/", token="t0k")
    found = find_server()
    assert (found.url, found.token, found.source) == (
        "http://localhost:8890/lab-base/nbsession",
        "t0k",
        str(path),
    )


def test_listening_everywhere_a_socket_and_no_token(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _server_file(runtime, url="http://0.0.0.0:8890/")
    monkeypatch.setenv("NBSESSION_TOKEN", "ext")
    found = find_server()
    assert (found.url, found.token) == ("http://127.0.0.1:8890/nbsession", "ext")
    _server_file(runtime, url="http+unix://x", sock="/tmp/jp.sock", base_url="/b/")
    found = find_server()
    assert (found.url, found.uds) == ("http://localhost/b/nbsession", "/tmp/jp.sock")


def test_arguments_and_environment_come_first(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _server_file(runtime, url="http://localhost:1/", token="server")
    assert find_server("http://h:2/nbsession/", "a").url == "http://h:2/nbsession"
    monkeypatch.setenv("NBSESSION_URL", "http://h:3")
    monkeypatch.setenv("NBSESSION_TOKEN", "env")
    assert (find_server().url, find_server().token) == ("http://h:3/nbsession", "env")


def test_nothing_found_says_where_it_looked(runtime: Path) -> None:
    with pytest.raises(ServerNotFound) as missing:
        find_server()
    assert str(runtime / "jpserver-4242.json") in str(missing.value)
