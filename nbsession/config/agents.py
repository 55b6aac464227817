"""Agent sources in docker-agent's YAML format, parsed into frozen, typed objects (SPEC 7).

Everything is checked once, at load time, so a runtime never meets a half-valid team: each
error names the file and the dotted key a person has to fix, and keys this port does not know
are ignored with a warning rather than refused, so docker-agent files written for newer
features still load.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from ..errors import AgentConfigError, AgentSourceUnavailable, InvalidModelRef, UnknownAgent
from ..session import Permissions
from ..tools import check_toolset, ignored_options

log = logging.getLogger("nbsession.config")

SUPPORTED_TOOLSETS: frozenset[str] = frozenset(
    {
        "a2a",
        "api",
        "background_agents",
        "fetch",
        "filesystem",
        "jupyter",
        "lsp",
        "mcp",
        "memory",
        "openapi",
        "plan",
        "script",
        "shell",
        "tasks",
        "think",
        "todo",
        "user_prompt",
        "webhook",
    }
)

_TOP_KEYS = frozenset({"version", "agents", "models", "providers", "permissions"})
_AGENT_KEYS = frozenset(
    {
        "model",
        "fallback",
        "description",
        "instruction",
        "toolsets",
        "sub_agents",
        "handoffs",
        "max_iterations",
        "welcome_message",
        "commands",
    }
)
_MODEL_KEYS = frozenset(
    {
        "provider",
        "model",
        "base_url",
        "token_key",
        "temperature",
        "max_tokens",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "parallel_tool_calls",
        "thinking_budget",
        "provider_opts",
    }
)
_PROVIDER_KEYS = frozenset({"provider", "api_type", "base_url", "token_key"})
_FALLBACK_KEYS = frozenset({"models", "retries", "cooldown"})
_COMMAND_KEYS = frozenset({"description", "instruction"})
# docker-agent's OpenAI protocols for a `providers:` entry (its default: chat completions).
API_TYPES = frozenset({"openai_chatcompletions", "openai_responses"})
# Go's duration syntax, as docker-agent's `fallback.cooldown` reads it.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_DURATION = re.compile(rf"(?:{_DURATION_PART.pattern})+")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
# `model: auto` picks a provider at run time (see runtime.models.auto_model).
AUTO = "auto"
_PERMISSION_KEYS = frozenset({"allow", "ask", "deny"})


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only view of a private copy: a cached team is shared by every caller."""
    return MappingProxyType(dict(mapping or {}))


def split_inline_ref(ref: str) -> tuple[str, str] | None:
    """``("provider", "model")`` for an inline ``provider/model`` ref, else ``None``."""
    provider, sep, model = ref.partition("/")
    if sep and provider and model:
        return provider, model
    return None


def split_alloy(ref: str) -> list[str]:
    """The members of a model ref: ``"a,b"`` is docker-agent's alloy (the models take
    turns), anything else a single model."""
    return [part.strip() for part in ref.split(",")]


ThinkingBudget = int | str


@dataclass(frozen=True)
class ModelConfig:
    """A model an agent can run on: a ``models:`` entry, or one written inline."""

    name: str
    provider: str
    model: str
    base_url: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    token_key: str | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    parallel_tool_calls: bool | None = None
    thinking_budget: ThinkingBudget | None = None
    provider_opts: Mapping[str, Any] = field(default_factory=_frozen, compare=False, hash=False)

    @property
    def ref(self) -> str:
        """What a client sends back as ``model`` to pick this one: the entry name, which for
        an inline model is its ``provider/model`` text."""
        return self.name

    @property
    def label(self) -> str:
        """``provider/model``, as docker-agent names a model in its events."""
        return f"{self.provider}/{self.model}"

    def to_json(self) -> dict[str, Any]:
        """The ``models:`` entry as docker-agent writes it (unset options left out)."""
        fields = {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "token_key": self.token_key,
            "top_p": self.top_p,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "parallel_tool_calls": self.parallel_tool_calls,
            "thinking_budget": self.thinking_budget,
            "provider_opts": copy.deepcopy(dict(self.provider_opts)) or None,
        }
        return {key: value for key, value in fields.items() if value is not None}


@dataclass(frozen=True)
class ProviderConfig:
    """A ``providers:`` entry: a named endpoint models refer to by its name as ``provider``.

    ``provider`` is the API it speaks (docker-agent's default: ``openai``), ``api_type``
    which OpenAI protocol, ``token_key`` the environment variable holding its key.
    """

    name: str
    base_url: str = ""
    token_key: str = ""
    api_type: str = ""
    provider: str = "openai"

    def to_json(self) -> dict[str, Any]:
        fields = {
            "provider": self.provider,
            "api_type": self.api_type,
            "base_url": self.base_url,
            "token_key": self.token_key,
        }
        return {key: value for key, value in fields.items() if value}


@dataclass(frozen=True)
class FallbackConfig:
    """Models tried in order when the agent's model fails (docker-agent's ``fallback``).

    ``retries`` is per model, for errors worth retrying (5xx, timeouts, an unreachable
    endpoint); docker-agent's default is 2, and -1 means none. ``cooldown`` (seconds) is how
    long a fallback that answered after a non-retryable failure stays in use.
    """

    models: tuple[str, ...] = ()
    retries: int = 0
    cooldown: float = 0.0

    def to_json(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"models": list(self.models)}
        if self.retries:
            fields["retries"] = self.retries
        if self.cooldown:
            fields["cooldown"] = f"{self.cooldown:g}s"
        return fields


@dataclass(frozen=True)
class CommandConfig:
    """A named prompt of an agent (``/name`` in docker-agent's UIs)."""

    instruction: str
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "instruction": self.instruction}


@dataclass(frozen=True)
class ToolsetConfig:
    """One ``toolsets:`` entry: its ``type`` and every other key, kept for the toolset."""

    type: str
    options: Mapping[str, Any] = field(default_factory=_frozen)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, **copy.deepcopy(dict(self.options))}


@dataclass(frozen=True)
class AgentConfig:
    """One agent of a team; ``model`` is a ref that `TeamConfig.model_for` resolves."""

    name: str
    model: str
    description: str = ""
    instruction: str = ""
    toolsets: tuple[ToolsetConfig, ...] = ()
    sub_agents: tuple[str, ...] = ()
    handoffs: tuple[str, ...] = ()
    max_iterations: int = 0
    welcome_message: str = ""
    commands: Mapping[str, CommandConfig] = field(default_factory=_frozen)
    fallback: FallbackConfig | None = None

    def to_json(self) -> dict[str, Any]:
        """docker-agent's ``AgentConfig`` JSON: ``name`` first, empty options left out as its
        ``omitempty`` tags do, ``commands`` as ``{description, instruction}`` objects."""
        fields: dict[str, Any] = {
            "name": self.name,
            "model": self.model,
            "fallback": self.fallback.to_json() if self.fallback else None,
            "description": self.description,
            "welcome_message": self.welcome_message,
            "toolsets": [toolset.to_json() for toolset in self.toolsets],
            "instruction": self.instruction,
            "sub_agents": list(self.sub_agents),
            "handoffs": list(self.handoffs),
            "max_iterations": self.max_iterations,
            "commands": {name: command.to_json() for name, command in self.commands.items()},
        }
        return {key: value for key, value in fields.items() if value or key == "name"}


@dataclass(frozen=True)
class TeamConfig:
    """A parsed agent source: its agents in file order, named models and permissions.

    ``permissions`` is a pydantic model shared by every caller of a cached team: copy it
    (``model_copy(deep=True)``) before changing it.
    """

    source_id: str
    path: str
    version: str
    agents: Mapping[str, AgentConfig]
    models: Mapping[str, ModelConfig] = field(default_factory=_frozen)
    providers: Mapping[str, ProviderConfig] = field(default_factory=_frozen)
    permissions: Permissions = field(default_factory=Permissions)
    warnings: tuple[str, ...] = ()

    @property
    def root_agent_name(self) -> str:
        """The entry agent: ``root`` when there is one, else the first in the file."""
        return "root" if "root" in self.agents else next(iter(self.agents))

    @property
    def multi(self) -> bool:
        return len(self.agents) > 1

    def agent(self, name: str | None) -> AgentConfig:
        """The named agent, or the root one when no name is given."""
        try:
            return self.agents[name or self.root_agent_name]
        except KeyError:
            raise UnknownAgent(str(name), f"not in agent source {self.source_id!r}") from None

    def model_for(self, ref: str) -> ModelConfig:
        """Resolve one model ref: a ``models:`` key first, else an inline ``provider/model``.

        ``auto`` and alloys (``a,b``) are resolved by ``runtime.models.resolve_ref``.
        """
        if ref in self.models:
            return self.models[ref]
        inline = split_inline_ref(ref)
        if inline is None:
            raise InvalidModelRef(
                f"Model {ref!r} is neither a model of agent source {self.source_id!r} "
                "nor a provider/model reference.",
                field="model",
            )
        return ModelConfig(name=ref, provider=inline[0], model=inline[1])

    def model_refs(self) -> list[str]:
        """Every model this team can name: its ``models:`` keys, then the refs its agents
        use (models and fallbacks), each once, in order of first appearance."""
        refs = dict.fromkeys(self.models)
        for agent in self.agents.values():
            refs[agent.model] = None
            refs.update(dict.fromkeys(agent.fallback.models if agent.fallback else ()))
        return list(refs)

    def to_json(self) -> dict[str, Any]:
        """The parsed config in docker-agent's ``Config`` JSON shape (``GET /api/agents/{id}``):
        ``agents`` is an array in file order, each with its ``name``."""
        fields: dict[str, Any] = {
            "version": self.version,
            "agents": [agent.to_json() for agent in self.agents.values()],
            "providers": {name: p.to_json() for name, p in self.providers.items()},
            "models": {name: model.to_json() for name, model in self.models.items()},
            "permissions": self.permissions.to_json(),
        }
        return {key: value for key, value in fields.items() if value or key == "agents"}


def _join(prefix: str, key: object) -> str:
    return f"{prefix}.{key}" if prefix else str(key)


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


class _Parser:
    """Walks one YAML document; holds the file's path, the name its messages give it (they may
    reach a client, so not a server path) and the warnings so far."""

    def __init__(self, path: str, name: str) -> None:
        self.path = path
        self.name = name
        self.warnings: list[str] = []

    def error(self, key: str, problem: str) -> AgentConfigError:
        return AgentConfigError(self.name, key, problem)

    def warn(self, key: str, problem: str) -> None:
        """Record something the file asks for that nbsession will not do (SPEC 7)."""
        log.warning("%s: %s: %s", self.path, key, problem)
        self.warnings.append(f"{self.name}: {key}: {problem}")

    def warn_unknown(self, prefix: str, mapping: Mapping[Any, Any], known: frozenset[str]) -> None:
        for key in mapping:
            if key not in known:
                self.warn(_join(prefix, key), "not supported by nbsession, ignored")

    # Typed readers: ``None`` (a YAML key with no value) reads as absent.

    def mapping(self, value: Any, key: str) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping, not {_describe(value)}")
        return value

    def string(self, value: Any, key: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_describe(value)}")
        return value

    def required_string(self, mapping: Mapping[str, Any], key: str, name: str) -> str:
        value = self.string(mapping.get(name), _join(key, name))
        if not value:
            raise self.error(_join(key, name), "is required")
        return value

    def optional_string(self, value: Any, key: str) -> str | None:
        return None if value is None else self.string(value, key)

    def string_list(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of strings, not {_describe(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{index}]", f"must be a string, not {_describe(item)}")
        return tuple(value)

    def count(self, value: Any, key: str, *, minimum: int) -> int | None:
        # bool is an int subclass; `max_iterations: yes` is a mistake, not 1.
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be an integer >= {minimum}, not {value!r}")
        return value

    def number(self, value: Any, key: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number, not {value!r}")
        return float(value)

    def flag(self, value: Any, key: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise self.error(key, f"must be true or false, not {value!r}")

    def thinking_budget(self, value: Any, key: str) -> ThinkingBudget | None:
        """docker-agent's ``thinking_budget``: a token count or an effort level name."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.error(key, f"must be a token count or an effort level, not {value!r}")
        return value

    def duration(self, value: Any, key: str) -> float:
        """Seconds from a Go duration (``"1m"``, ``"30s"``, ``"1m30s"``) or a number."""
        if value is None or value == "":
            return 0.0
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        if isinstance(value, str) and _DURATION.fullmatch(value.strip()):
            return sum(
                float(amount) * _DURATION_UNITS[unit]
                for amount, unit in _DURATION_PART.findall(value)
            )
        raise self.error(key, f"must be a duration such as 30s or 1m, not {value!r}")

    def model_ref(self, ref: str, key: str, models: Mapping[str, ModelConfig]) -> None:
        """Check a model ref: ``auto``, a ``models:`` key, ``provider/model``, or a
        comma-separated list of those (an alloy)."""
        for part in split_alloy(ref):
            if part == AUTO or part in models or split_inline_ref(part) is not None:
                continue
            known = f"`models` keys: {', '.join(models)}" if models else "no `models` section"
            raise self.error(
                key,
                f"{part!r} is neither a key of `models` ({known}), `auto`, "
                "nor a provider/model ref",
            )

    # Sections.

    def team(self, text: str, source_id: str) -> TeamConfig:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise self.error("", f"invalid YAML{where}: {problem}") from None
        if document is None:
            raise self.error("", "the file is empty")
        if not isinstance(document, dict):
            raise self.error("", f"must be a mapping at the top, not {_describe(document)}")
        self.warn_unknown("", document, _TOP_KEYS)

        version = document.get("version")
        if version is not None and not isinstance(version, (str, int, float)):
            raise self.error("version", f"must be a string, not {_describe(version)}")
        providers = {
            name: self.provider(name, entry)
            for name, entry in self.named_entries(document.get("providers"), "providers").items()
        }
        models = {
            name: self.model(name, entry)
            for name, entry in self.named_entries(document.get("models"), "models").items()
        }
        agents = self.agents(document.get("agents"), models)
        return TeamConfig(
            source_id=source_id,
            path=self.path,
            version="" if version is None else str(version),
            agents=_frozen(agents),
            models=_frozen(models),
            providers=_frozen(providers),
            permissions=self.permissions(document.get("permissions")),
            warnings=tuple(self.warnings),
        )

    def named_entries(self, value: Any, key: str) -> dict[str, Any]:
        entries = self.mapping(value, key)
        for name in entries:
            if not isinstance(name, str) or not name:
                raise self.error(_join(key, name), "names must be non-empty strings")
        return entries

    def provider(self, name: str, value: Any) -> ProviderConfig:
        key = f"providers.{name}"
        entry = self.mapping(value, key)
        self.warn_unknown(key, entry, _PROVIDER_KEYS)
        api_type = self.string(entry.get("api_type"), f"{key}.api_type")
        if api_type and api_type not in API_TYPES:
            expected = ", ".join(sorted(API_TYPES))
            raise self.error(f"{key}.api_type", f"must be one of {expected}, not {api_type!r}")
        return ProviderConfig(
            name=name,
            provider=self.string(entry.get("provider"), f"{key}.provider") or "openai",
            api_type=api_type,
            base_url=self.string(entry.get("base_url"), f"{key}.base_url"),
            token_key=self.string(entry.get("token_key"), f"{key}.token_key"),
        )

    def model(self, name: str, value: Any) -> ModelConfig:
        key = f"models.{name}"
        entry = self.mapping(value, key)
        self.warn_unknown(key, entry, _MODEL_KEYS)
        return ModelConfig(
            name=name,
            provider=self.required_string(entry, key, "provider"),
            model=self.required_string(entry, key, "model"),
            base_url=self.optional_string(entry.get("base_url"), f"{key}.base_url"),
            temperature=self.number(entry.get("temperature"), f"{key}.temperature"),
            max_tokens=self.count(entry.get("max_tokens"), f"{key}.max_tokens", minimum=1),
            token_key=self.optional_string(entry.get("token_key"), f"{key}.token_key"),
            top_p=self.number(entry.get("top_p"), f"{key}.top_p"),
            frequency_penalty=self.number(
                entry.get("frequency_penalty"), f"{key}.frequency_penalty"
            ),
            presence_penalty=self.number(entry.get("presence_penalty"), f"{key}.presence_penalty"),
            parallel_tool_calls=self.flag(
                entry.get("parallel_tool_calls"), f"{key}.parallel_tool_calls"
            ),
            thinking_budget=self.thinking_budget(
                entry.get("thinking_budget"), f"{key}.thinking_budget"
            ),
            provider_opts=_frozen(self.mapping(entry.get("provider_opts"), f"{key}.provider_opts")),
        )

    def agents(self, value: Any, models: Mapping[str, ModelConfig]) -> dict[str, AgentConfig]:
        entries = self.agent_entries(value)
        if not entries:
            raise self.error("agents", "at least one agent is required")
        agents = {name: self.agent(name, entry, models) for name, entry in entries.items()}
        for agent in agents.values():
            for key, names in (("sub_agents", agent.sub_agents), ("handoffs", agent.handoffs)):
                for index, other in enumerate(names):
                    if other not in agents:
                        raise self.error(
                            f"agents.{agent.name}.{key}[{index}]",
                            f"names no agent of this file: {other!r} (agents: {', '.join(agents)})",
                        )
        return agents

    def agent_entries(self, value: Any) -> dict[str, Any]:
        """``agents:`` as an ordered name -> mapping, from either docker-agent form: a mapping
        keyed by name, or a list of mappings that each carry a ``name``."""
        if not isinstance(value, list):
            return self.named_entries(value, "agents")
        entries: dict[str, Any] = {}
        for index, item in enumerate(value):
            key = f"agents[{index}]"
            entry = dict(self.mapping(item, key))
            name = self.required_string(entry, key, "name")
            if name in entries:
                raise self.error(f"{key}.name", f"duplicate agent name {name!r}")
            del entry["name"]
            entries[name] = entry
        return entries

    def agent(self, name: str, value: Any, models: Mapping[str, ModelConfig]) -> AgentConfig:
        key = f"agents.{name}"
        if not isinstance(value, dict):
            raise self.error(key, f"must be a mapping, not {_describe(value)}")
        if "harness" in value:
            raise self.error(
                f"{key}.harness",
                "harness agents (an external coding CLI such as claude-code or codex) are not "
                "supported by nbsession",
            )
        self.warn_unknown(key, value, _AGENT_KEYS)
        model = self.required_string(value, key, "model")
        self.model_ref(model, f"{key}.model", models)
        max_iterations = self.count(value.get("max_iterations"), f"{key}.max_iterations", minimum=0)
        return AgentConfig(
            name=name,
            model=model,
            description=self.string(value.get("description"), f"{key}.description"),
            instruction=self.string(value.get("instruction"), f"{key}.instruction"),
            toolsets=self.toolsets(value.get("toolsets"), f"{key}.toolsets"),
            sub_agents=self.string_list(value.get("sub_agents"), f"{key}.sub_agents"),
            handoffs=self.string_list(value.get("handoffs"), f"{key}.handoffs"),
            max_iterations=max_iterations or 0,
            welcome_message=self.string(value.get("welcome_message"), f"{key}.welcome_message"),
            commands=_frozen(self.commands(value.get("commands"), f"{key}.commands")),
            fallback=self.fallback(value.get("fallback"), f"{key}.fallback", models),
        )

    def fallback(
        self, value: Any, key: str, models: Mapping[str, ModelConfig]
    ) -> FallbackConfig | None:
        if value is None:
            return None
        entry = self.mapping(value, key)
        self.warn_unknown(key, entry, _FALLBACK_KEYS)
        refs = self.string_list(entry.get("models"), f"{key}.models")
        for index, ref in enumerate(refs):
            if ref == AUTO or "," in ref:
                raise self.error(f"{key}.models[{index}]", "must name one model")
            self.model_ref(ref, f"{key}.models[{index}]", models)
        retries = entry.get("retries")
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < -1
        ):
            raise self.error(f"{key}.retries", f"must be an integer >= -1, not {retries!r}")
        return FallbackConfig(
            models=refs,
            retries=retries or 0,
            cooldown=self.duration(entry.get("cooldown"), f"{key}.cooldown"),
        )

    def toolsets(self, value: Any, key: str) -> tuple[ToolsetConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.error(key, f"must be a list of toolsets, not {_describe(value)}")
        toolsets = []
        for index, item in enumerate(value):
            entry_key = f"{key}[{index}]"
            entry = dict(self.mapping(item, entry_key))
            toolset_type = self.required_string(entry, entry_key, "type")
            if toolset_type not in SUPPORTED_TOOLSETS:
                raise self.error(
                    f"{entry_key}.type",
                    f"toolset type {toolset_type!r} is not supported by nbsession "
                    f"(supported: {', '.join(sorted(SUPPORTED_TOOLSETS))})",
                )
            del entry["type"]
            problem = check_toolset(toolset_type, entry)
            if problem:
                raise self.error(entry_key, problem)
            for option in ignored_options(toolset_type, entry):
                self.warn(
                    f"{entry_key}.{option}",
                    f"option not supported by nbsession's {toolset_type} toolset, ignored",
                )
            toolsets.append(ToolsetConfig(type=toolset_type, options=_frozen(entry)))
        return tuple(toolsets)

    def commands(self, value: Any, key: str) -> dict[str, CommandConfig]:
        """Both forms docker-agent reads: a mapping of names, or a list of one-name mappings.
        A command is its instruction text, or a ``{description, instruction}`` mapping."""
        if isinstance(value, list):
            entries: dict[str, Any] = {}
            for index, item in enumerate(value):
                entries.update(self.named_entries(item, f"{key}[{index}]"))
        else:
            entries = self.named_entries(value, key)
        return {name: self.command(text, _join(key, name)) for name, text in entries.items()}

    def command(self, value: Any, key: str) -> CommandConfig:
        if isinstance(value, str):
            return CommandConfig(instruction=value)
        if not isinstance(value, dict):
            raise self.error(key, f"must be a string or a mapping, not {_describe(value)}")
        self.warn_unknown(key, value, _COMMAND_KEYS)
        # docker-agent's agent-switching command (`agent:`, warned about above) has no text.
        instruction = (
            self.string(value.get("instruction"), f"{key}.instruction")
            if "agent" in value
            else self.required_string(value, key, "instruction")
        )
        return CommandConfig(
            instruction=instruction,
            description=self.string(value.get("description"), f"{key}.description"),
        )

    def permissions(self, value: Any) -> Permissions:
        entry = self.mapping(value, "permissions")
        self.warn_unknown("permissions", entry, _PERMISSION_KEYS)
        return Permissions(
            **{
                name: list(self.string_list(entry.get(name), f"permissions.{name}"))
                for name in sorted(_PERMISSION_KEYS)
            }
        )


def parse_team(text: str, *, path: str, source_id: str, name: str | None = None) -> TeamConfig:
    """Parse and validate one agent source. ``path`` is kept as ``TeamConfig.path`` and named
    in the log; ``name`` (default: ``path``) names the file in errors and warnings."""
    return _Parser(path, path if name is None else name).team(text, source_id)


def source_id_for(path: str | os.PathLike[str]) -> str:
    """A source's id: its file name without the ``.yaml`` / ``.yml`` suffix."""
    file = Path(path)
    return file.stem if file.suffix in (".yaml", ".yml") else file.name


def load_team(path: str | os.PathLike[str], *, name: str | None = None) -> TeamConfig:
    """Read and parse one agent file; a file that cannot be read is unavailable, not broken.

    ``name`` is how messages name the file (default: its path); a server passes a name
    without its directories, since these messages reach clients.
    """
    name = os.fspath(path) if name is None else name
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise AgentSourceUnavailable(f"Cannot read agent source {name}: {exc}.") from exc
    except OSError as exc:  # its str() repeats the path: only the reason is given
        reason = exc.strerror or type(exc).__name__
        raise AgentSourceUnavailable(f"Cannot read agent source {name}: {reason}.") from exc
    return parse_team(text, path=os.fspath(path), source_id=source_id_for(path), name=name)
