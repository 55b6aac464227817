"""Toolset options are checked when an agent file loads, not at its first turn."""

from __future__ import annotations

import textwrap

import pytest

from nbsession.config import parse_team
from nbsession.errors import AgentConfigError


def team(toolset: str) -> str:
    return (
        textwrap.dedent(
            """
        agents:
          root:
            model: demo/offline
            toolsets:
              - type: think
        """
        )
        + textwrap.indent(textwrap.dedent(toolset).strip(), " " * 6)
        + "\n"
    )


@pytest.mark.parametrize(
    ("toolset", "problem"),
    [
        ("- type: mcp\n  ref: github:x", "only Docker MCP catalog references"),
        ("- type: mcp", "exactly one of command, remote.url or ref"),
        ("- type: mcp\n  command: x\n  args: x", "args: Input should be a valid list"),
        ("- type: shell\n  timeout: soon", "timeout: Input should be a valid integer"),
        ("- type: filesystem\n  post_edit: [{path: '*.py'}]", "post_edit.0.cmd: Field required"),
    ],
)
def test_bad_options_are_load_errors_naming_the_entry(toolset: str, problem: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        parse_team(team(toolset), path="/agents/t.yaml", source_id="t")
    assert "agents.root.toolsets[1]" in caught.value.message
    assert problem in caught.value.message


def test_good_options_load() -> None:
    text = team(
        """
        - type: mcp
          command: python
          args: [server.py]
          env: {TOKEN: "${env.TOKEN}"}
        - type: mcp
          remote: {url: "http://localhost:1/mcp", headers: {Authorization: "Bearer x"}}
        - type: filesystem
          post_edit: [{path: "*.py", cmd: "ruff format $path"}]
        """
    )
    loaded = parse_team(text, path="/agents/t.yaml", source_id="t")
    assert [t.type for t in loaded.agent("root").toolsets] == ["think", "mcp", "mcp", "filesystem"]
