"""``%%agent``: a cell whose text is the prompt of a turn, shown live in the cell's output.

``%load_ext nbsession`` registers it. The cells of one kernel continue one session until a
cell says ``--new`` (or ``--session ID`` to go on with another one). The turn's result is the
cell's value (``_``, ``Out[n]``) and also ``_agent``, so the next cell can use the answer;
``{name}`` in the prompt is replaced by the value of ``name`` in the user's namespace.
"""

from __future__ import annotations

import re
from typing import Any

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..sdk.client import Client, connect, local
from ..sdk.errors import ServerNotFound
from ..sdk.results import TurnResult
from ..sdk.session import DEFAULT_AGENT, Session

RESULT_NAME = "_agent"
"""The user variable that holds the last ``%%agent`` cell's ``TurnResult``."""

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def substitute(prompt: str, namespace: dict[str, Any]) -> str:
    """``{name}`` replaced by ``str(namespace[name])``; unknown names are left as written."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(namespace[name]) if name in namespace else match.group(0)

    return _PLACEHOLDER.sub(value, prompt)


@magics_class
class AgentMagics(Magics):
    """The ``%%agent`` magic and the session its cells continue."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._client: Client | None = None
        self.session: Session | None = None
        """The session the next ``%%agent`` cell continues (None: the next cell starts one)."""

    def client(self) -> Client:
        """The hosting Jupyter server's nbsession API, or a manager in this kernel without one."""
        if self._client is None:
            try:
                self._client = connect()
            except ServerNotFound:
                self._client = local()
        return self._client

    @magic_arguments()
    @argument("agent", nargs="?", default=None, help="agent source (default: 'default')")
    @argument("--session", default=None, help="continue this session id")
    @argument("--model", default=None, help="model ref for this turn on, e.g. openai/gpt-4o")
    @argument("--new", action="store_true", help="start a new session")
    @cell_magic
    def agent(self, line: str, cell: str) -> TurnResult:
        """Run the cell's text as a prompt: ``%%agent [AGENT] [--session ID] [--model REF]
        [--new]``. Consecutive cells continue one session; ``--new`` starts another."""
        args = parse_argstring(self.agent, line)
        session = self._session(args.agent, args.session, args.new)
        prompt = substitute(cell.strip(), self.shell.user_ns)
        result = session.run(prompt, model=args.model)
        self.shell.user_ns[RESULT_NAME] = result
        return result

    def _session(self, agent: str | None, session_id: str | None, new: bool) -> Session:
        client = self.client()
        if session_id:
            self.session = client.session(session_id, agent or DEFAULT_AGENT)
        elif new or self.session is None:
            self.session = client.create_session(agent or DEFAULT_AGENT)
        elif agent:
            self.session.agent = agent
        return self.session


def load(shell: Any) -> None:
    shell.register_magics(AgentMagics)
