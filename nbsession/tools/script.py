"""The ``script`` toolset: named shell commands declared in the agent file (docker-agent's).

Each entry of ``shell:`` becomes a tool of that name: ``cmd`` runs with ``/bin/sh`` and the
tool's declared ``args`` reach it as environment variables (``$name``), so a model fills in
values, never shell text. Arguments the file does not declare are dropped. The file is checked
as docker-agent checks it: every ``$VAR`` in ``cmd`` must be a declared arg or env key, every
``required`` arg must be declared (no ``required`` list means all args are required), and no
key may be both an arg and an env variable.

Script tools ask for approval unless permitted: they run commands. They run like ``shell``
(own process group, killed with the turn, output bounded) in the tool's ``working_dir``
(relative to the session's) or the session's working dir.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .base import FixedToolset, Tool, ToolContext, ToolDefinition, ToolResult
from .shell import run_command

MAX_OUTPUT = 30_000
_VAR = re.compile(r"\$(?:\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


class ScriptTool(BaseModel):
    """One ``shell:`` entry."""

    model_config = ConfigDict(extra="ignore")

    cmd: str = Field(min_length=1)
    description: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    required: list[str] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    working_dir: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> ScriptTool:
        used = {braced or bare for braced, bare in _VAR.findall(self.cmd)}
        env_refs = sorted(name for name in used if name.startswith("env."))
        if env_refs:
            name = env_refs[0].removeprefix("env.")
            raise ValueError(
                f"cmd uses ${{{env_refs[0]}}}; cmd is a shell script, so declare the variable "
                f'under the tool\'s env (env: {{{name}: "${{{env_refs[0]}}}"}}) and use ${name}'
            )
        undefined = sorted(used - set(self.args) - set(self.env))
        if undefined:
            raise ValueError(f"cmd uses undefined args: {', '.join(undefined)}")
        both = sorted(set(self.args) & set(self.env))
        if both:
            raise ValueError(f"{both[0]!r} is declared both in args and env; rename one")
        missing = sorted(set(self.required or []) - set(self.args))
        if missing:
            raise ValueError(f"required arg {missing[0]!r} is not defined in args")
        return self

    def schema(self) -> dict[str, Any]:
        """The tool's parameters: ``args`` as JSON Schema properties (type string by default)."""
        properties = {}
        for name, spec in self.args.items():
            spec = dict(spec) if isinstance(spec, Mapping) else {}
            spec.setdefault("type", "string")
            properties[name] = spec
        required = list(self.args) if self.required is None else list(self.required)
        return {"type": "object", "properties": properties, "required": required}


class ScriptOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    shell: dict[str, ScriptTool] = Field(min_length=1, description="The tools, by name")
    env: dict[str, str] = Field(default_factory=dict)


class ScriptToolset(FixedToolset):
    """One tool per ``shell:`` entry, sorted by name (see the module docstring).

    Raises ``pydantic.ValidationError`` (a ``ValueError``) for a missing ``shell`` or an
    entry that fails docker-agent's checks.
    """

    type: ClassVar[str] = "script"
    options_model = ScriptOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = ScriptOptions.model_validate(dict(options or {}))
        self._tools: list[Tool] = [
            _Script(name, self._options.shell[name], self._options.env)
            for name in sorted(self._options.shell)
        ]


class _Script(Tool):
    def __init__(self, name: str, config: ScriptTool, env: Mapping[str, str]) -> None:
        self._config = config
        self._env = dict(env)
        self._subdir = os.path.expanduser(config.working_dir)  # "" : the session's
        self.definition = ToolDefinition(
            name=name,
            description=config.description or f"Execute shell command: {config.cmd}",
            parameters=config.schema(),
            category="shell",
        )

    async def call(self, arguments: Mapping[str, Any], ctx: ToolContext) -> ToolResult:
        config = self._config
        missing = [name for name in config.schema()["required"] if arguments.get(name) is None]
        if missing:
            return ToolResult(f"Missing required argument(s): {', '.join(missing)}", is_error=True)
        values = {
            name: _text(value)
            for name, value in arguments.items()
            if name in config.args and value is not None  # undeclared keys never reach the env
        }
        if any("\0" in value for value in values.values()):
            return ToolResult("An argument contains a NUL byte.", is_error=True)
        base = ctx.working_dir or os.getcwd()
        cwd = os.path.join(base, self._subdir) if self._subdir else base
        return await run_command(
            config.cmd,
            cwd=cwd,
            env={**os.environ, **self._env, **config.env, **values},
            timeout=None,
            max_output=MAX_OUTPUT,
            on_output=ctx.output,
        )


def _text(value: Any) -> str:
    """An argument as the environment sees it: strings as they are, the rest as JSON-ish."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
