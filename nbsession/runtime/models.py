"""Model access: turn an agent's model configuration into a pydantic-ai model.

This is the one module that knows providers. The loop only sees pydantic-ai's ``Model`` and
the request settings built here, so a new provider touches this file alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config.agents import ModelConfig, TeamConfig
from ..errors import InvalidModelRef

if TYPE_CHECKING:
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings

# docker-agent provider names -> pydantic-ai provider prefixes. `demo` is ours (offline) and
# `openai` with a base_url covers every OpenAI-compatible endpoint (vLLM, llama.cpp, DMR...).
PROVIDERS: dict[str, str] = {
    "demo": "demo",
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google-gla",
    "gemini": "google-gla",
    "groq": "groq",
    "mistral": "mistral",
    "ollama": "ollama",
    "openrouter": "openrouter",
    "deepseek": "deepseek",
    "dmr": "openai",
}

# Docker Model Runner's OpenAI-compatible endpoint, used when a `dmr` model names no base_url.
DMR_BASE_URL = "http://localhost:12434/engines/v1"


class ModelUnavailable(Exception):
    """The model could not be built (missing key, missing optional package...)."""


@dataclass(frozen=True)
class ResolvedModel:
    """A validated model reference and how to reach it."""

    ref: str
    config: ModelConfig

    @property
    def label(self) -> str:
        """``provider/model``, as docker-agent's ``agent_info`` event shows it."""
        return f"{self.config.provider}/{self.config.model}"


def resolve_ref(team: TeamConfig, ref: str) -> ResolvedModel:
    """Validate a model reference against a team; ``InvalidModelRef`` names what is wrong."""
    ref = ref.strip()
    if not ref:
        raise InvalidModelRef("The model reference is empty.", field="model")
    config = team.model_for(ref)
    if config.provider not in PROVIDERS:
        known = ", ".join(sorted(PROVIDERS))
        raise InvalidModelRef(
            f"Unknown model provider {config.provider!r} in {ref!r} (known: {known}).",
            field="model",
        )
    return ResolvedModel(ref=ref, config=config)


def build_model(config: ModelConfig) -> Model:
    """A pydantic-ai model for a configuration; imported lazily to keep start-up fast."""
    provider = PROVIDERS.get(config.provider)
    if provider is None:
        raise ModelUnavailable(f"unknown provider {config.provider!r}")
    if provider == "demo":
        from .demo_model import build_demo_model

        return build_demo_model(config.model)
    try:
        if provider == "openai":
            return _openai_model(config)
        from pydantic_ai.models import infer_model

        return infer_model(f"{provider}:{config.model}")
    except ModelUnavailable:
        raise
    except Exception as exc:  # pydantic-ai raises UserError/ImportError for keys and extras
        raise ModelUnavailable(f"{config.provider}/{config.model}: {exc}") from exc


def _openai_model(config: ModelConfig) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    base_url = config.base_url or (DMR_BASE_URL if config.provider == "dmr" else None)
    api_key = os.environ.get(config.token_key or "OPENAI_API_KEY")
    if api_key is None and base_url is None:
        raise ModelUnavailable(
            f"{config.provider}/{config.model}: set {config.token_key or 'OPENAI_API_KEY'}"
        )
    # Local OpenAI-compatible servers accept any key, but the client insists on one.
    provider = OpenAIProvider(base_url=base_url, api_key=api_key or "nbsession-local")
    return OpenAIChatModel(config.model, provider=provider)


def model_settings(config: ModelConfig) -> ModelSettings | None:
    """Request settings from the configuration (only what the YAML set)."""
    settings: dict[str, Any] = {}
    if config.temperature is not None:
        settings["temperature"] = config.temperature
    if config.max_tokens is not None:
        settings["max_tokens"] = config.max_tokens
    return settings or None  # type: ignore[return-value]
