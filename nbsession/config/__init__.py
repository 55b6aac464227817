"""Agent sources: docker-agent YAML teams (`agents`) and the directory that offers them
(`sources`). Nothing here speaks HTTP or runs a model."""

from __future__ import annotations

from .agents import (
    SUPPORTED_TOOLSETS,
    AgentConfig,
    CommandConfig,
    FallbackConfig,
    ModelConfig,
    ProviderConfig,
    TeamConfig,
    ToolsetConfig,
    load_team,
    parse_team,
)
from .sources import AgentSourceInfo, SourceLoader

__all__ = [
    "SUPPORTED_TOOLSETS",
    "AgentConfig",
    "AgentSourceInfo",
    "CommandConfig",
    "FallbackConfig",
    "ModelConfig",
    "ProviderConfig",
    "SourceLoader",
    "TeamConfig",
    "ToolsetConfig",
    "load_team",
    "parse_team",
]
