"""A session's working dir lies inside the server's root_dir or an allowed root (SPEC 11)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from .conftest import Fetch, new_session


@pytest.fixture
def extra_root(tmp_path: Path) -> Path:
    path = tmp_path / "extra"
    (path / "project").mkdir(parents=True)
    return path


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


@pytest.fixture
def jp_server_config(jp_server_config: Config, extra_root: Path) -> Config:
    jp_server_config.NBSessionApp.allowed_roots = [str(extra_root)]
    return jp_server_config


def real(path: str | Path) -> str:
    """The path with links resolved (the test's tmp dir may sit behind one)."""
    return os.path.realpath(path)


async def refused(api: Fetch, path: str, body: Any) -> None:
    reply = await api("POST", path, body)
    assert (reply.code, reply.error_code) == (400, "invalid_request"), reply.body
    assert "working_dir" in reply.json()["message"]
    assert (await api("GET", "api/sessions")).json() == []  # nothing was created


async def test_default_is_the_root_dir_and_inside_is_accepted(
    api: Fetch, jp_root_dir: Path, extra_root: Path
) -> None:
    (jp_root_dir / "sub").mkdir()
    default = (await api("GET", f"api/sessions/{await new_session(api)}")).json()
    assert real(default["working_dir"]) == real(jp_root_dir)
    relative = await api("POST", "api/sessions", {"working_dir": "sub"})
    assert relative.json()["working_dir"] == os.path.join(default["working_dir"], "sub")
    absolute = await api("POST", "api/sessions", {"working_dir": str(extra_root / "project")})
    assert absolute.code == 200
    assert absolute.json()["working_dir"] == str(extra_root / "project")


async def test_outside_every_root_is_refused(
    api: Fetch, jp_root_dir: Path, elsewhere: Path
) -> None:
    await refused(api, "api/sessions", {"working_dir": "/etc"})
    await refused(api, "api/sessions", {"working_dir": str(elsewhere)})
    (jp_root_dir / "escape").symlink_to(elsewhere, target_is_directory=True)
    await refused(api, "api/sessions", {"working_dir": "escape"})
    await refused(api, "api/sessions", {"working_dir": str(jp_root_dir / "escape")})


async def test_import_is_checked_alike(api: Fetch, jp_root_dir: Path, elsewhere: Path) -> None:
    session_id = await new_session(api, title="moved")
    recovery = (await api("GET", f"api/sessions/{session_id}/recovery")).json()
    notebook = (await api("GET", f"api/sessions/{session_id}/notebook")).json()
    await api("DELETE", f"api/sessions/{session_id}", params={"wait": "true"})

    await refused(api, "api/sessions/import", {**recovery, "working_dir": "/etc"})
    record = notebook["metadata"]["nbsession"]
    session = {**record["session"], "working_dir": str(elsewhere)}
    moved = {**notebook, "metadata": {"nbsession": {**record, "session": session}}}
    await refused(api, "api/sessions/import", moved)

    imported = await api("POST", "api/sessions/import", recovery)
    assert imported.code == 201
    assert real(imported.json()["working_dir"]) == real(jp_root_dir)
