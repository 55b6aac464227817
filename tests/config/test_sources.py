"""Finding, caching and reloading agent sources (SPEC 7)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

from nbsession.config import SourceLoader, TeamConfig, sources
from nbsession.errors import AgentConfigError, AgentSourceUnavailable, UnknownAgent

SIMPLE = "agents: {root: {model: a/b, description: first}}\n"
CHANGED = "agents: {root: {model: a/b, description: second version}}\n"
BROKEN = "agents: {root: {description: no model}}\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str, *, mtime_ns: int | None = None) -> Path:
    """Write ``text`` and give the file a distinct mtime, so a change is seen even when two
    writes land in the same filesystem tick."""
    path.write_text(text)
    stamp = mtime_ns if mtime_ns is not None else path.stat().st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))
    return path


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The file names the loader parsed, in order."""
    seen: list[str] = []
    real = sources.load_team

    def counting(path: os.PathLike[str], **kwargs: Any) -> TeamConfig:
        seen.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(sources, "load_team", counting)
    return seen


def test_missing_directory_has_no_sources(tmp_path: Path) -> None:
    loader = SourceLoader(tmp_path / "absent", include_bundled=False)

    assert loader.ids() == []
    assert loader.list() == []
    with pytest.raises(UnknownAgent):
        loader.get("anything")


def test_only_yaml_files_directly_in_the_directory_count(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", SIMPLE)
    write(tmp_path / "a.yml", SIMPLE)
    write(tmp_path / "notes.txt", SIMPLE)
    write(tmp_path / ".hidden.yaml", SIMPLE)
    (tmp_path / "sub.yaml").mkdir()
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested" / "c.yaml", SIMPLE)

    loader = SourceLoader(tmp_path, include_bundled=False)

    assert loader.ids() == ["a", "b"]
    assert loader.get("a").source_id == "a"


def test_yaml_wins_over_yml_of_the_same_id(tmp_path: Path) -> None:
    write(tmp_path / "x.yml", SIMPLE)
    write(tmp_path / "x.yaml", CHANGED)

    team = SourceLoader(tmp_path, include_bundled=False).get("x")

    assert team.path == str(tmp_path / "x.yaml")


def test_each_file_is_parsed_once(tmp_path: Path, parses: list[str]) -> None:
    write(tmp_path / "a.yaml", SIMPLE)
    loader = SourceLoader(tmp_path, include_bundled=False)

    first = loader.get("a")
    loader.list()
    loader.ids()
    second = loader.get("a")

    assert second is first
    assert parses == ["a.yaml"]


def test_a_changed_file_is_reparsed(tmp_path: Path, parses: list[str]) -> None:
    path = write(tmp_path / "a.yaml", SIMPLE)
    loader = SourceLoader(tmp_path, include_bundled=False)
    assert loader.get("a").agent(None).description == "first"

    write(path, CHANGED)

    assert loader.get("a").agent(None).description == "second version"
    assert parses == ["a.yaml", "a.yaml"]


def test_same_size_rewrite_with_new_mtime_is_reparsed(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", "agents: {root: {model: a/b}}\n")
    loader = SourceLoader(tmp_path, include_bundled=False)
    assert loader.get("a").agent(None).model == "a/b"

    write(path, "agents: {root: {model: c/d}}\n")

    assert loader.get("a").agent(None).model == "c/d"


def test_refresh_interval_throttles_rescans(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write(tmp_path / "a.yaml", SIMPLE)
    loader = SourceLoader(tmp_path, refresh_interval=10, include_bundled=False, clock=clock)
    assert loader.get("a").agent(None).description == "first"

    write(path, CHANGED)
    write(tmp_path / "b.yaml", SIMPLE)
    clock.now = 9.9

    assert loader.get("a").agent(None).description == "first"
    assert loader.ids() == ["a"]

    clock.now = 10.0

    assert loader.get("a").agent(None).description == "second version"
    assert loader.ids() == ["a", "b"]

    path.unlink()
    clock.now = 15.0
    assert loader.ids() == ["a", "b"]
    clock.now = 20.0
    assert loader.ids() == ["b"]


def test_zero_interval_sees_every_change(tmp_path: Path) -> None:
    clock = FakeClock()
    path = write(tmp_path / "a.yaml", SIMPLE)
    loader = SourceLoader(tmp_path, include_bundled=False, clock=clock)
    loader.get("a")

    write(path, CHANGED)

    assert loader.get("a").agent(None).description == "second version"


def test_deleted_file_disappears(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", SIMPLE)
    loader = SourceLoader(tmp_path, include_bundled=False)
    loader.get("a")

    path.unlink()

    assert loader.ids() == []
    with pytest.raises(UnknownAgent, match="'a'"):
        loader.get("a")


def test_new_file_appears(tmp_path: Path) -> None:
    loader = SourceLoader(tmp_path, include_bundled=False)
    assert loader.ids() == []

    write(tmp_path / "new.yaml", SIMPLE)

    assert loader.ids() == ["new"]
    assert loader.get("new").agent(None).description == "first"


def test_broken_file_is_listed_with_its_error_and_refused_by_get(
    tmp_path: Path, parses: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "good.yaml", SIMPLE)
    broken = write(tmp_path / "broken.yaml", BROKEN)
    loader = SourceLoader(tmp_path, include_bundled=False)

    with caplog.at_level(logging.WARNING, logger="nbsession.config"):
        listed = loader.list()
        assert loader.list() == listed
    with pytest.raises(AgentConfigError, match=r"agents\.root\.model") as caught:
        loader.get("broken")

    assert [(info.name, info.error) for info in listed] == [
        ("broken", caught.value.message),
        ("good", None),
    ]
    assert listed[0].to_json() == {
        "name": "broken",
        "description": "",
        "multi": False,
        "commands": [],
        "error": caught.value.message,
    }
    assert "error" not in listed[1].to_json()
    # Messages may reach a client: the file is named as in the directory, not by its path.
    assert caught.value.path == "broken.yaml"
    assert caught.value.message.startswith("broken.yaml: agents.root.model: ")
    assert str(tmp_path) not in caught.value.message
    assert caught.value.code == "agent_invalid"
    assert loader.ids() == ["broken", "good"]
    assert parses.count("broken.yaml") == 1
    assert [record.getMessage() for record in caplog.records] == [
        f"Agent source {broken} does not load: {caught.value.message}"
    ]

    write(broken, SIMPLE)

    assert [(info.name, info.error) for info in loader.list()] == [
        ("broken", None),
        ("good", None),
    ]


def test_a_broken_edit_keeps_serving_the_last_good_version_until_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "team.yaml", SIMPLE)
    loader = SourceLoader(tmp_path, include_bundled=False)
    assert loader.get("team").agent(None).description == "first"

    write(path, BROKEN)
    with caplog.at_level(logging.WARNING, logger="nbsession.config"):
        served = loader.get("team")
        (info,) = loader.list()
    assert served.agent(None).description == "first"
    assert info.description == "first"
    assert info.error is not None and info.error.startswith("team.yaml: agents.root.model: ")
    assert [record.getMessage() for record in caplog.records] == [
        f"Agent source {path} does not load; its last good version is served until it is "
        f"fixed: {info.error}"
    ]

    write(path, "agents: [")  # broken again, differently: still the last good one
    assert loader.get("team").agent(None).description == "first"

    write(path, CHANGED)
    assert loader.get("team").agent(None).description == "second version"
    assert loader.list()[0].error is None

    write(path, BROKEN)  # the last good one is now the second version
    assert loader.get("team").agent(None).description == "second version"


def test_a_source_that_never_loaded_has_no_last_good_version(tmp_path: Path) -> None:
    path = write(tmp_path / "team.yaml", BROKEN)
    loader = SourceLoader(tmp_path, include_bundled=False)
    with pytest.raises(AgentConfigError):
        loader.get("team")
    write(path, "agents: [")
    with pytest.raises(AgentConfigError):
        loader.get("team")


def test_unreadable_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01")
    loader = SourceLoader(tmp_path, include_bundled=False)

    with pytest.raises(AgentSourceUnavailable, match="Cannot read") as caught:
        loader.get("binary")

    assert not isinstance(caught.value, AgentConfigError)
    assert [(info.name, info.error) for info in loader.list()] == [("binary", caught.value.message)]
    assert caught.value.message.startswith("Cannot read agent source binary.yaml: ")
    assert str(tmp_path) not in caught.value.message


def test_warnings_name_the_file_and_the_log_its_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "extra.yaml", "agents: {root: {model: a/b, colour: red}}\n")

    with caplog.at_level(logging.WARNING, logger="nbsession.config"):
        team = SourceLoader(tmp_path, include_bundled=False).get("extra")

    assert team.path == str(path)
    assert team.warnings == ("extra.yaml: agents.root.colour: not supported by nbsession, ignored",)
    assert (
        caplog.records[0].getMessage()
        == f"{path}: agents.root.colour: not supported by nbsession, ignored"
    )


@pytest.mark.parametrize(
    "source_id", ["../outside", "..", ".", "", "sub/inner", "sub\\inner", "/etc/passwd", "a\0b"]
)
def test_ids_that_are_paths_are_refused(tmp_path: Path, source_id: str) -> None:
    agents_dir = tmp_path / "agents"
    (agents_dir / "sub").mkdir(parents=True)
    write(tmp_path / "outside.yaml", SIMPLE)
    write(agents_dir / "sub" / "inner.yaml", SIMPLE)
    loader = SourceLoader(agents_dir, include_bundled=False)

    with pytest.raises(UnknownAgent):
        loader.get(source_id)


def test_list_describes_each_source(tmp_path: Path) -> None:
    write(
        tmp_path / "team.yaml",
        """
agents:
  helper: {model: a/b, description: not the root}
  root:
    model: a/b
    description: the boss
    sub_agents: [helper]
    commands: {zeta: z, alpha: a}
""",
    )
    write(tmp_path / "solo.yaml", SIMPLE)

    infos = SourceLoader(tmp_path, include_bundled=False).list()

    assert [info.to_json() for info in infos] == [
        {"name": "solo", "description": "first", "multi": False, "commands": []},
        {"name": "team", "description": "the boss", "multi": True, "commands": ["alpha", "zeta"]},
    ]


def test_bundled_default_is_offered_and_valid() -> None:
    loader = SourceLoader()

    team = loader.get("default")
    root = team.agent(None)
    model = team.model_for(root.model)

    assert "default" in loader.ids()
    assert team.warnings == ()
    assert root.name == "root"
    assert (model.provider, model.model) == ("demo", "offline")
    assert root.description == "Offline demo agent: no network, no key"
    assert "offline" in root.instruction
    assert [toolset.type for toolset in root.toolsets] == ["shell", "think", "todo"]
    assert root.max_iterations == 20
    assert root.welcome_message
    assert set(root.commands) >= {"ls", "math"}
    assert not team.multi


def test_bundled_sources_can_be_left_out(tmp_path: Path) -> None:
    assert "default" not in SourceLoader(tmp_path, include_bundled=False).ids()


def test_a_user_file_shadows_the_bundled_one(tmp_path: Path) -> None:
    write(tmp_path / "default.yaml", CHANGED)
    loader = SourceLoader(tmp_path)

    team = loader.get("default")

    assert team.path == str(tmp_path / "default.yaml")
    assert team.agent(None).description == "second version"
    assert loader.ids().count("default") == 1

    (tmp_path / "default.yaml").unlink()

    assert loader.get("default").agent(None).model == "demo/offline"
