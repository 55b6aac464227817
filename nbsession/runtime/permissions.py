"""Whether a tool call runs, is refused, or waits for a person (SPEC 5, tool approval).

Kept as one pure function so the whole precedence order can be read, and tested, in one place.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Literal

from ..session import Permissions

Decision = Literal["allow", "deny", "ask"]

_GLOB_SPECIAL = re.compile(r"([*?[])")


def exact_pattern(tool_name: str) -> str:
    """The glob matching ``tool_name`` alone: its ``*``, ``?`` and ``[`` stand for themselves."""
    return _GLOB_SPECIAL.sub(r"[\1]", tool_name)


def decide(
    tool_name: str,
    *,
    read_only: bool,
    tools_approved: bool,
    session: Permissions | None,
    agent: Permissions | None,
) -> Decision:
    """The approval decision for one call of ``tool_name``.

    In order: the session's ``tools_approved`` allows everything; then the session's own
    permissions, then the agent config's (the session is the more specific choice, made by the
    user of this conversation); then read-only tools run without asking; everything else asks.
    Patterns are shell-style globs on the tool name, matched case-sensitively.
    """
    if tools_approved:
        return "allow"
    for permissions in (session, agent):
        if permissions is not None and (decision := _match(tool_name, permissions)):
            return decision
    return "allow" if read_only else "ask"


def _match(tool_name: str, permissions: Permissions) -> Decision | None:
    """The first of deny, allow, ask with a pattern matching ``tool_name``, else None.

    Deny is checked first so that a refusal cannot be widened away by accident: with
    ``allow: ["*"]`` and ``deny: ["shell"]`` in the same list, the specific refusal must win
    over the broad approval. Allow comes before ask so ``ask`` only narrows what is not allowed.
    """
    rules: tuple[tuple[Decision, list[str]], ...] = (
        ("deny", permissions.deny),
        ("allow", permissions.allow),
        ("ask", permissions.ask),
    )
    for decision, patterns in rules:
        if any(fnmatchcase(tool_name, pattern) for pattern in patterns):
            return decision
    return None
