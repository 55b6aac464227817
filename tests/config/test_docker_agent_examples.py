"""docker-agent's own example agent files (tests/config/docker_agent_examples, Apache-2.0) as a
compatibility target: at least 90 % load, and each of the rest is refused with an error naming
the key nbsession lacks; what a loaded file asks for and nbsession ignores is a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from nbsession.config.agents import load_team
from nbsession.errors import AgentConfigError

EXAMPLES = Path(__file__).parent / "docker_agent_examples"
FILES = sorted(path.relative_to(EXAMPLES).as_posix() for path in EXAMPLES.rglob("*.yaml"))

# The files nbsession refuses, and the key (with the value) each error must name.
REFUSED = {
    "harness-team.yaml": ("agents.claude-coder.harness", "harness"),
    "rag/adaptive_prefetch.yaml": ("agents.root.toolsets[0].type", "'rag'"),
    "rag/query_cache.yaml": ("agents.root.toolsets[0].type", "'rag'"),
}


def test_the_examples_are_all_here() -> None:
    assert len(FILES) == 30


@pytest.mark.parametrize("name", FILES)
def test_an_example_loads_or_names_what_nbsession_lacks(name: str) -> None:
    if name in REFUSED:
        key, named = REFUSED[name]
        with pytest.raises(AgentConfigError) as refused:
            load_team(EXAMPLES / name, name=name)
        assert refused.value.key == key
        assert named in refused.value.message
    else:
        team = load_team(EXAMPLES / name, name=name)
        assert team.agents


def test_at_least_ninety_percent_load(capsys: pytest.CaptureFixture[str]) -> None:
    loaded = []
    for name in FILES:
        try:
            load_team(EXAMPLES / name, name=name)
        except AgentConfigError:
            continue
        loaded.append(name)
    ratio = len(loaded) / len(FILES)
    with capsys.disabled():
        print(f"\ndocker-agent examples: {len(loaded)}/{len(FILES)} load ({ratio:.0%})")
    assert ratio >= 0.9


def test_what_an_example_uses_and_nbsession_ignores_is_named() -> None:
    team = load_team(EXAMPLES / "hooks.yaml", name="hooks.yaml")
    assert "hooks.yaml: agents.root.hooks: not supported by nbsession, ignored" in team.warnings
    team = load_team(EXAMPLES / "fetch_escape_html.yaml", name="fetch_escape_html.yaml")
    assert team.warnings == (
        "fetch_escape_html.yaml: agents.root.toolsets[0].escape_html: option not supported by "
        "nbsession's fetch toolset, ignored",
    )
