"""Tool approval precedence (SPEC 5), one table over the whole order."""

from __future__ import annotations

import pytest

from nbsession.runtime.permissions import Decision, decide
from nbsession.session import Permissions

P = Permissions

CASES: list[tuple[str, str, bool, bool, Permissions | None, Permissions | None, Decision]] = [
    # (case, tool, read_only, tools_approved, session, agent, expected)
    ("nothing set, side effects: ask", "shell", False, False, None, None, "ask"),
    ("nothing set, read-only: allow", "think", True, False, None, None, "allow"),
    ("tools_approved allows", "shell", False, True, None, None, "allow"),
    ("tools_approved beats session deny", "shell", False, True, P(deny=["*"]), None, "allow"),
    ("tools_approved beats agent deny", "shell", False, True, None, P(deny=["shell"]), "allow"),
    ("session deny", "shell", False, False, P(deny=["shell"]), None, "deny"),
    (
        "session deny beats allow",
        "shell",
        False,
        False,
        P(allow=["*"], deny=["shell"]),
        None,
        "deny",
    ),
    ("session deny beats read-only", "think", True, False, P(deny=["think"]), None, "deny"),
    ("session allow", "shell", False, False, P(allow=["shell"]), None, "allow"),
    ("session allow beats ask", "shell", False, False, P(allow=["sh*"], ask=["*"]), None, "allow"),
    ("session ask beats read-only", "think", True, False, P(ask=["think"]), None, "ask"),
    (
        "session allow beats agent deny",
        "shell",
        False,
        False,
        P(allow=["shell"]),
        P(deny=["shell"]),
        "allow",
    ),
    (
        "session ask beats agent allow",
        "shell",
        False,
        False,
        P(ask=["shell"]),
        P(allow=["shell"]),
        "ask",
    ),
    (
        "no session match falls to agent",
        "shell",
        False,
        False,
        P(allow=["read_*"]),
        P(deny=["shell"]),
        "deny",
    ),
    ("empty session falls to agent", "shell", False, False, P(), P(allow=["shell"]), "allow"),
    (
        "agent deny beats agent allow",
        "shell",
        False,
        False,
        None,
        P(allow=["*"], deny=["shell"]),
        "deny",
    ),
    ("agent allow", "write_file", False, False, None, P(allow=["write_*"]), "allow"),
    ("agent ask beats read-only", "read_file", True, False, None, P(ask=["read_*"]), "ask"),
    ("agent deny beats read-only", "read_file", True, False, None, P(deny=["read_file"]), "deny"),
    (
        "no match anywhere, read-only",
        "list_todos",
        True,
        False,
        P(deny=["shell"]),
        P(ask=["shell"]),
        "allow",
    ),
    (
        "no match anywhere, side effects",
        "write_file",
        False,
        False,
        P(allow=["read_*"]),
        P(allow=["think"]),
        "ask",
    ),
]


@pytest.mark.parametrize(
    ("tool", "read_only", "tools_approved", "session", "agent", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_precedence(
    tool: str,
    read_only: bool,
    tools_approved: bool,
    session: Permissions | None,
    agent: Permissions | None,
    expected: Decision,
) -> None:
    decision = decide(
        tool, read_only=read_only, tools_approved=tools_approved, session=session, agent=agent
    )
    assert decision == expected


@pytest.mark.parametrize(
    ("pattern", "tool", "matches"),
    [
        ("shell", "shell", True),
        ("shell", "shell_exec", False),
        ("*", "anything", True),
        ("read_*", "read_file", True),
        ("read_*", "write_file", False),
        ("*_todos", "list_todos", True),
        ("create_todo?", "create_todos", True),
        ("create_todo?", "create_todo", False),
        ("[rw]*_file", "write_file", True),
        ("Shell", "shell", False),  # case-sensitive, whatever the platform
    ],
)
def test_glob_patterns(pattern: str, tool: str, matches: bool) -> None:
    decision = decide(
        tool, read_only=False, tools_approved=False, session=P(deny=[pattern]), agent=None
    )
    assert decision == ("deny" if matches else "ask")
