"""Parsing and validating docker-agent YAML teams (SPEC 7)."""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from nbsession.config import (
    SUPPORTED_TOOLSETS,
    AgentConfig,
    CommandConfig,
    ModelConfig,
    ToolsetConfig,
    load_team,
    parse_team,
)
from nbsession.errors import AgentConfigError, AgentSourceUnavailable, InvalidModelRef, UnknownAgent
from nbsession.session import Permissions

FULL = """
version: "2"
agents:
  root:
    model: openai/gpt-4o
    description: A helpful assistant
    instruction: |
      You are helpful.
    toolsets:
      - type: shell
      - type: think
      - type: todo
        shared: true
    sub_agents: [helper]
    max_iterations: 20
    welcome_message: Hi!
    commands:
      fix: "Fix the failing test"
  helper:
    model: fast
models:
  fast:
    provider: openai
    model: gpt-4o-mini
    base_url: http://localhost:8000/v1
    temperature: 0.2
    max_tokens: 1000
    token_key: MY_API_KEY_ENV
permissions:
  allow: ["think", "todo*"]
  ask: []
  deny: ["shell"]
"""


def parse(text: str, source_id: str = "team"):
    return parse_team(textwrap.dedent(text), path="team.yaml", source_id=source_id)


def test_full_file_parses_into_typed_objects() -> None:
    team = parse(FULL)

    assert team.source_id == "team"
    assert team.path == "team.yaml"
    assert team.version == "2"
    assert list(team.agents) == ["root", "helper"]
    assert team.agents["root"] == AgentConfig(
        name="root",
        model="openai/gpt-4o",
        description="A helpful assistant",
        instruction="You are helpful.\n",
        toolsets=(
            ToolsetConfig(type="shell"),
            ToolsetConfig(type="think"),
            ToolsetConfig(type="todo", options={"shared": True}),
        ),
        sub_agents=("helper",),
        max_iterations=20,
        welcome_message="Hi!",
        commands={"fix": CommandConfig(instruction="Fix the failing test")},
    )
    assert team.agents["helper"] == AgentConfig(name="helper", model="fast")
    assert team.models["fast"] == ModelConfig(
        name="fast",
        provider="openai",
        model="gpt-4o-mini",
        base_url="http://localhost:8000/v1",
        temperature=0.2,
        max_tokens=1000,
        token_key="MY_API_KEY_ENV",
    )
    assert team.permissions == Permissions(allow=["think", "todo*"], ask=[], deny=["shell"])
    # docker-agent's todo list shared between agents: nbsession keeps one per agent.
    assert team.warnings == (
        "team.yaml: agents.root.toolsets[2].shared: option not supported by nbsession's todo "
        "toolset, ignored",
    )
    assert team.multi


def test_parsed_team_is_read_only() -> None:
    team = parse(FULL)

    with pytest.raises(TypeError):
        team.agents["x"] = team.agents["root"]  # type: ignore[index]
    with pytest.raises(TypeError):
        team.agents["root"].commands["x"] = "y"  # type: ignore[index]
    with pytest.raises(AttributeError):
        team.agents["root"].model = "other"  # type: ignore[misc]


def test_list_form_agents_keep_their_order() -> None:
    team = parse(
        """
        agents:
          - name: writer
            model: openai/gpt-4o
          - name: root
            model: anthropic/claude-sonnet-4-0
            sub_agents: [writer]
        """
    )

    assert list(team.agents) == ["writer", "root"]
    assert team.agents["root"].sub_agents == ("writer",)
    assert team.warnings == ()


def test_root_is_the_agent_named_root_else_the_first() -> None:
    with_root = parse(
        """
        agents:
          first: {model: a/b}
          root: {model: a/b}
        """
    )
    without_root = parse(
        """
        agents:
          first: {model: a/b}
          second: {model: a/b}
        """
    )

    assert with_root.root_agent_name == "root"
    assert with_root.agent(None).name == "root"
    assert with_root.agent("").name == "root"
    assert with_root.agent("first").name == "first"
    assert without_root.root_agent_name == "first"
    assert without_root.agent(None).name == "first"


def test_single_agent_team_is_not_multi() -> None:
    assert not parse("agents: {root: {model: a/b}}").multi


def test_unknown_agent_names_the_source() -> None:
    team = parse("agents: {root: {model: a/b}}")

    with pytest.raises(UnknownAgent, match=r"'ghost'.*'team'") as caught:
        team.agent("ghost")
    assert caught.value.code == "unknown_agent"


def test_model_resolution_named_and_inline() -> None:
    team = parse(FULL)

    named = team.model_for("fast")
    inline = team.model_for("anthropic/claude-sonnet-4-0")
    nested = team.model_for("openrouter/meta/llama-3")

    assert named is team.models["fast"]
    assert named.ref == "fast"
    assert inline == ModelConfig(
        name="anthropic/claude-sonnet-4-0", provider="anthropic", model="claude-sonnet-4-0"
    )
    assert inline.ref == "anthropic/claude-sonnet-4-0"
    assert (nested.provider, nested.model) == ("openrouter", "meta/llama-3")


@pytest.mark.parametrize("ref", ["nope", "openai/", "/gpt-4o", ""])
def test_unresolvable_model_ref_is_invalid(ref: str) -> None:
    team = parse(FULL)

    with pytest.raises(InvalidModelRef) as caught:
        team.model_for(ref)
    assert caught.value.field == "model"
    assert repr(ref) in caught.value.message
    assert caught.value.code == "invalid_request"


def test_model_refs_lists_named_then_inline_once() -> None:
    team = parse(
        """
        agents:
          root: {model: openai/gpt-4o}
          a: {model: fast}
          b: {model: openai/gpt-4o}
          c: {model: demo/offline}
        models:
          fast: {provider: openai, model: gpt-4o-mini}
          slow: {provider: openai, model: o3}
        """
    )

    assert team.model_refs() == ["fast", "slow", "openai/gpt-4o", "demo/offline"]


def test_to_json_round_trips() -> None:
    team = parse(FULL)

    document = team.to_json()
    again = parse_team(yaml.safe_dump(document), path="team.yaml", source_id="team")

    assert set(document) == {"version", "agents", "models", "permissions"}
    assert [agent["name"] for agent in document["agents"]] == ["root", "helper"]
    assert document["agents"][0]["toolsets"][2] == {"type": "todo", "shared": True}
    assert document["agents"][0]["commands"] == {
        "fix": {"description": "", "instruction": "Fix the failing test"}
    }
    assert document["models"]["fast"]["temperature"] == 0.2
    assert document["permissions"] == {"allow": ["think", "todo*"], "ask": [], "deny": ["shell"]}
    assert again == team


def test_to_json_leaves_unset_model_options_out() -> None:
    team = parse(
        """
        agents: {root: {model: m}}
        models: {m: {provider: openai, model: gpt-4o}}
        """
    )

    assert team.to_json()["models"] == {"m": {"provider": "openai", "model": "gpt-4o"}}


def test_keys_with_no_value_read_as_absent() -> None:
    team = parse(
        """
        version:
        agents:
          root:
            model: a/b
            description:
            toolsets:
            commands:
            max_iterations:
        models:
        permissions:
        """
    )

    root = team.agent(None)
    assert team.version == ""
    assert (root.description, root.toolsets, dict(root.commands), root.max_iterations) == (
        "",
        (),
        {},
        0,
    )
    assert team.permissions == Permissions()


def test_unknown_keys_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    text = """
        metadata: {author: me}
        agents:
          root:
            model: fast
            add_date: true
            toolsets:
              - type: shell
                env: {A: "1"}
        models:
          fast: {provider: openai, model: gpt-4o, routing: [x]}
        permissions:
          allow: [think]
          maybe: [shell]
        """
    with caplog.at_level(logging.WARNING, logger="nbsession.config"):
        team = parse(text)

    expected = [
        "team.yaml: metadata: not supported by nbsession, ignored",
        "team.yaml: models.fast.routing: not supported by nbsession, ignored",
        "team.yaml: agents.root.add_date: not supported by nbsession, ignored",
        "team.yaml: permissions.maybe: not supported by nbsession, ignored",
    ]
    assert list(team.warnings) == expected
    assert [record.getMessage() for record in caplog.records] == expected
    assert team.agent(None).toolsets[0].options == {"env": {"A": "1"}}
    assert team.permissions.allow == ["think"]


def test_toolset_options_nbsession_does_not_read_are_warned_about() -> None:
    text = """
        agents:
          root:
            model: openai/gpt-4o
            toolsets:
              - type: filesystem
                allow_list: [/data]
                tools: [read_file]
                post_edit: [{path: "*.py", cmd: black $path, when: always}]
              - type: mcp
                command: server
                defer: true
                remote_typo: {}
              - type: todo
                shared: true
              - type: shell
                env: {A: "1"}
        """
    team = parse(text)
    prefix = "team.yaml: agents.root.toolsets"
    assert list(team.warnings) == [
        f"{prefix}[0].allow_list: option not supported by nbsession's filesystem toolset, ignored",
        f"{prefix}[0].post_edit[0].when: option not supported by nbsession's filesystem "
        "toolset, ignored",
        f"{prefix}[1].defer: option not supported by nbsession's mcp toolset, ignored",
        f"{prefix}[1].remote_typo: option not supported by nbsession's mcp toolset, ignored",
        f"{prefix}[2].shared: option not supported by nbsession's todo toolset, ignored",
    ]


INVALID = [
    pytest.param(
        "agents:\n  root:\n    model: [a/b\n  helper: {}\n",
        "",
        "invalid YAML at line 4",
        id="yaml-syntax",
    ),
    pytest.param("", "", "empty", id="empty"),
    pytest.param("# just a comment\n", "", "empty", id="only-comment"),
    pytest.param("- a\n- b\n", "", "mapping at the top", id="top-list"),
    pytest.param("just text", "", "mapping at the top", id="top-scalar"),
    pytest.param("version: '2'", "agents", "at least one agent", id="no-agents"),
    pytest.param("agents: {}", "agents", "at least one agent", id="empty-agents"),
    pytest.param("agents: 3", "agents", "must be a mapping", id="agents-scalar"),
    pytest.param("agents: {1: {model: a/b}}", "agents.1", "non-empty strings", id="agent-int"),
    pytest.param("agents: {root: }", "agents.root", "must be a mapping", id="agent-null"),
    pytest.param("agents: {root: {}}", "agents.root.model", "is required", id="no-model"),
    pytest.param(
        "agents: {root: {model: 4}}", "agents.root.model", "must be a string", id="model-int"
    ),
    pytest.param(
        "agents: {root: {model: gpt}}",
        "agents.root.model",
        "neither a key of `models` (no `models` section), `auto`, nor a provider/model",
        id="model-unresolvable",
    ),
    pytest.param(
        "agents: {root: {model: gpt}}\nmodels: {fast: {provider: a, model: b}}",
        "agents.root.model",
        "`models` keys: fast",
        id="model-unresolvable-named",
    ),
    pytest.param(
        "agents: {root: {model: openai/}}", "agents.root.model", "provider/model", id="model-half"
    ),
    pytest.param(
        "agents: {root: {model: a/b, sub_agents: [helper]}}",
        "agents.root.sub_agents[0]",
        "'helper'",
        id="sub-agent-missing",
    ),
    pytest.param(
        "agents: {root: {model: a/b, sub_agents: helper}}",
        "agents.root.sub_agents",
        "list of strings",
        id="sub-agents-not-list",
    ),
    pytest.param(
        "agents: {root: {model: a/b, toolsets: [{type: shell}, {path: x}]}}",
        "agents.root.toolsets[1].type",
        "is required",
        id="toolset-no-type",
    ),
    pytest.param(
        "agents: {root: {model: a/b, toolsets: [{type: shell}, {type: browser}]}}",
        "agents.root.toolsets[1].type",
        "toolset type 'browser' is not supported by nbsession (supported: a2a, api, ",
        id="toolset-unsupported",
    ),
    pytest.param(
        "agents: {root: {model: a/b, toolsets: [shell]}}",
        "agents.root.toolsets[0]",
        "must be a mapping",
        id="toolset-scalar",
    ),
    pytest.param(
        "agents: {root: {model: a/b, toolsets: {type: shell}}}",
        "agents.root.toolsets",
        "must be a list",
        id="toolsets-mapping",
    ),
    pytest.param(
        "agents: {root: {model: a/b, max_iterations: -1}}",
        "agents.root.max_iterations",
        "integer >= 0",
        id="max-iterations-negative",
    ),
    pytest.param(
        "agents: {root: {model: a/b, max_iterations: '5'}}",
        "agents.root.max_iterations",
        "integer >= 0",
        id="max-iterations-string",
    ),
    pytest.param(
        "agents: {root: {model: a/b, max_iterations: true}}",
        "agents.root.max_iterations",
        "integer >= 0",
        id="max-iterations-bool",
    ),
    pytest.param(
        "agents: {root: {model: a/b, commands: [fix]}}",
        "agents.root.commands[0]",
        "must be a mapping",
        id="commands-list",
    ),
    pytest.param(
        "agents: {root: {model: a/b, commands: {fix: [1]}}}",
        "agents.root.commands.fix",
        "must be a string",
        id="command-not-string",
    ),
    pytest.param(
        "agents: {root: {model: a/b, instruction: [a]}}",
        "agents.root.instruction",
        "must be a string",
        id="instruction-list",
    ),
    pytest.param(
        "agents: {root: {model: a/b, description: 3}}",
        "agents.root.description",
        "must be a string",
        id="description-int",
    ),
    pytest.param(
        "agents: {root: {model: a/b, welcome_message: {a: b}}}",
        "agents.root.welcome_message",
        "must be a string",
        id="welcome-mapping",
    ),
    pytest.param(
        "agents: [{model: a/b}]", "agents[0].name", "is required", id="list-agent-no-name"
    ),
    pytest.param(
        "agents: [{name: x, model: a/b}, {name: x, model: a/b}]",
        "agents[1].name",
        "duplicate agent name 'x'",
        id="list-agent-duplicate",
    ),
    pytest.param("agents: [a]", "agents[0]", "must be a mapping", id="list-agent-scalar"),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: {model: gpt-4o}}",
        "models.m.provider",
        "is required",
        id="model-entry-no-provider",
    ),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: {provider: openai}}",
        "models.m.model",
        "is required",
        id="model-entry-no-model",
    ),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: {provider: openai, model: x, temperature: hot}}",
        "models.m.temperature",
        "must be a number",
        id="temperature-string",
    ),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: {provider: openai, model: x, max_tokens: 0}}",
        "models.m.max_tokens",
        "integer >= 1",
        id="max-tokens-zero",
    ),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: {provider: openai, model: x, base_url: 1}}",
        "models.m.base_url",
        "must be a string",
        id="base-url-int",
    ),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: {provider: openai, model: x, token_key: [a]}}",
        "models.m.token_key",
        "must be a string",
        id="token-key-list",
    ),
    pytest.param(
        "agents: {root: {model: m}}\nmodels: {m: gpt}", "models.m", "mapping", id="model-scalar"
    ),
    pytest.param(
        "agents: {root: {model: a/b}}\nmodels: [a]", "models", "mapping", id="models-list"
    ),
    pytest.param(
        "agents: {root: {model: a/b}}\npermissions: {allow: shell}",
        "permissions.allow",
        "list of strings",
        id="permissions-not-list",
    ),
    pytest.param(
        "agents: {root: {model: a/b}}\npermissions: {deny: [1]}",
        "permissions.deny[0]",
        "must be a string",
        id="permissions-not-strings",
    ),
    pytest.param(
        "agents: {root: {model: a/b}}\npermissions: [allow]",
        "permissions",
        "mapping",
        id="permissions-list",
    ),
    pytest.param(
        "version: [2]\nagents: {root: {model: a/b}}", "version", "string", id="version-list"
    ),
]


@pytest.mark.parametrize(("text", "key", "problem"), INVALID)
def test_invalid_files_name_the_file_and_the_key(text: str, key: str, problem: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        parse_team(text, path="/agents/team.yaml", source_id="team")

    error = caught.value
    assert (error.path, error.key) == ("/agents/team.yaml", key)
    prefix = f"/agents/team.yaml: {key}: " if key else "/agents/team.yaml: "
    assert error.message.startswith(prefix)
    assert problem in error.message
    assert error.code == "agent_invalid"


def test_unsupported_toolset_message_lists_every_supported_type() -> None:
    with pytest.raises(AgentConfigError) as caught:
        parse("agents: {root: {model: a/b, toolsets: [{type: nope}]}}")

    assert all(name in caught.value.message for name in SUPPORTED_TOOLSETS)


def test_load_team_takes_the_id_from_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "coder.yml").write_text("agents: {root: {model: a/b}}")

    team = load_team(tmp_path / "coder.yml")

    assert team.source_id == "coder"
    assert team.path == str(tmp_path / "coder.yml")


def test_load_team_errors_name_the_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("agents: {root: {}}")

    with pytest.raises(
        AgentConfigError, match=f"^{re.escape(str(broken))}: agents\\.root\\.model: "
    ):
        load_team(broken)


def test_load_team_missing_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(AgentSourceUnavailable, match="Cannot read") as caught:
        load_team(tmp_path / "absent.yaml")
    assert not isinstance(caught.value, AgentConfigError)


def test_load_team_names_the_file_as_told(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("agents: {root: {}}")

    with pytest.raises(AgentConfigError) as caught:
        load_team(broken, name="broken.yaml")
    assert caught.value.message.startswith("broken.yaml: agents.root.model: ")
    assert caught.value.path == "broken.yaml"

    broken.write_text("agents: {root: {model: a/b}}")
    assert load_team(broken, name="broken.yaml").path == str(broken)

    with pytest.raises(AgentSourceUnavailable) as missing:
        load_team(tmp_path / "absent.yaml", name="absent.yaml")
    message = "Cannot read agent source absent.yaml: No such file or directory."
    assert missing.value.message == message


def test_load_team_non_utf8_file_is_unavailable(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00agents")

    with pytest.raises(AgentSourceUnavailable, match="Cannot read"):
        load_team(binary)
