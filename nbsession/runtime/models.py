"""Model access: turn an agent's model configuration into a pydantic-ai model (SPEC 11).

This is the one module that knows providers: docker-agent's provider names and aliases, their
endpoints and key variables, the `providers:` section, `auto`, alloys, request settings,
which failures are worth a retry, what an error should tell the user, and prices. The loop
only sees pydantic-ai's ``Model`` and the facts returned here, so a new provider touches this
file alone.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.agents import AUTO, ModelConfig, TeamConfig, split_alloy
from ..errors import InvalidModelRef

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelResponse
    from pydantic_ai.models import Model
    from pydantic_ai.settings import ModelSettings


@dataclass(frozen=True)
class ProviderSpec:
    """How docker-agent reaches one provider name.

    ``api`` is the wire it speaks (most aliases are OpenAI-compatible endpoints), ``token_env``
    the variable holding its key (empty: no key, as for local servers), ``price_id`` its name
    in genai-prices, ``extra`` the nbsession extra that installs its SDK when it is optional.
    """

    api: str
    base_url: str = ""
    token_env: str = ""
    price_id: str = ""
    extra: str = ""


def _openai_alias(base_url: str, token_env: str, price_id: str = "") -> ProviderSpec:
    return ProviderSpec("openai", base_url, token_env, price_id)


# docker-agent's core providers and aliases (pkg/model/provider/aliases.go), plus `demo`.
PROVIDERS: dict[str, ProviderSpec] = {
    "demo": ProviderSpec("demo"),
    "openai": ProviderSpec("openai", "", "OPENAI_API_KEY", "openai"),
    "anthropic": ProviderSpec("anthropic", "", "ANTHROPIC_API_KEY", "anthropic", "anthropic"),
    "google": ProviderSpec("google", "", "GOOGLE_API_KEY", "google", "google"),
    "amazon-bedrock": ProviderSpec("bedrock", "", "", "aws", "bedrock"),
    "dmr": ProviderSpec("openai", "http://localhost:12434/engines/v1"),
    "ollama": ProviderSpec("openai", "http://localhost:11434/v1"),
    "azure": ProviderSpec("azure", "", "AZURE_API_KEY", "azure"),
    "xai": _openai_alias("https://api.x.ai/v1", "XAI_API_KEY", "x-ai"),
    "mistral": _openai_alias("https://api.mistral.ai/v1", "MISTRAL_API_KEY", "mistral"),
    "nebius": _openai_alias("https://api.studio.nebius.com/v1", "NEBIUS_API_KEY"),
    "requesty": _openai_alias("https://router.requesty.ai/v1", "REQUESTY_API_KEY"),
    "nvidia": _openai_alias("https://integrate.api.nvidia.com/v1", "NVIDIA_API_KEY"),
    "openrouter": _openai_alias("https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openrouter"),
    "atlascloud": _openai_alias("https://api.atlascloud.ai/v1", "ATLASCLOUD_API_KEY"),
    "minimax": _openai_alias("https://api.minimax.io/v1", "MINIMAX_API_KEY", "minimax"),
    "baseten": _openai_alias("https://inference.baseten.co/v1", "BASETEN_API_KEY", "baseten"),
    "ovhcloud": _openai_alias(
        "https://oai.endpoints.kepler.ai.cloud.ovh.net/v1",
        "OVH_AI_ENDPOINTS_ACCESS_TOKEN",
        "ovhcloud",
    ),
    "groq": _openai_alias("https://api.groq.com/openai/v1", "GROQ_API_KEY", "groq"),
    "fireworks": _openai_alias(
        "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", "fireworks"
    ),
    "deepseek": _openai_alias("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", "deepseek"),
    "cerebras": _openai_alias("https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", "cerebras"),
    "together": _openai_alias("https://api.together.xyz/v1", "TOGETHER_API_KEY", "together"),
    "huggingface": _openai_alias("https://router.huggingface.co/v1", "HF_TOKEN"),
    "moonshot": _openai_alias("https://api.moonshot.ai/v1", "MOONSHOT_API_KEY", "moonshotai"),
    "vercel": _openai_alias("https://ai-gateway.vercel.sh/v1", "AI_GATEWAY_API_KEY"),
    "cloudflare-workers-ai": _openai_alias(
        "https://api.cloudflare.com/client/v4/accounts/${CLOUDFLARE_ACCOUNT_ID}/ai/v1",
        "CLOUDFLARE_API_TOKEN",
        "cloudflare",
    ),
    "cloudflare-ai-gateway": _openai_alias(
        "https://gateway.ai.cloudflare.com/v1/${CLOUDFLARE_ACCOUNT_ID}/${CLOUDFLARE_GATEWAY_ID}/compat",
        "CLOUDFLARE_API_TOKEN",
        "cloudflare",
    ),
    "github-copilot": _openai_alias(
        "https://api.githubcopilot.com", "GITHUB_TOKEN", "github-copilot"
    ),
    "opencode-go": _openai_alias("https://opencode.ai/zen/go/v1", "OPENCODE_API_KEY"),
    "opencode-zen": _openai_alias("https://opencode.ai/zen/v1", "OPENCODE_API_KEY"),
}

# Where each API is when no base_url is set: named in "cannot reach" errors.
_PUBLIC_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "google": "https://generativelanguage.googleapis.com",
    "bedrock": "the AWS Bedrock endpoint of your region",
}

# `model: auto`: the first provider whose key is set, in docker-agent's order, and its default
# model; Docker Model Runner when none is (pkg/config/auto.go).
AUTO_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("anthropic", ("ANTHROPIC_API_KEY",)),
    ("openai", ("OPENAI_API_KEY",)),
    ("google", ("GOOGLE_API_KEY", "GEMINI_API_KEY")),
    ("mistral", ("MISTRAL_API_KEY",)),
    ("amazon-bedrock", ("AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")),
)
AUTO_MODELS = {
    "anthropic": "claude-sonnet-4-6",
    "openai": "gpt-5",
    "google": "gemini-3.5-flash",
    "mistral": "mistral-small-latest",
    "amazon-bedrock": "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "dmr": "ai/qwen3:latest",
}

# Placeholder key for OpenAI-compatible servers that need none (the SDK insists on one).
_NO_KEY = "nbsession-no-key"
# provider_opts keys this module reads itself; the others go into the request body.
_OWN_OPTS = frozenset({"api_type", "azure_api_version", "region"})
_RETRYABLE_STATUS = frozenset({408, 500, 502, 503, 504, 529})


class ModelUnavailable(Exception):
    """The model cannot be used as configured; the message says what to fix."""


@dataclass(frozen=True)
class Endpoint:
    """Where one model is served and how to authenticate, after the `providers:` section and
    the provider's defaults were applied."""

    api: str
    base_url: str
    token_env: str
    key_required: bool
    api_type: str = ""
    price_id: str = ""
    extra: str = ""

    @property
    def url(self) -> str:
        return self.base_url or _PUBLIC_URLS.get(self.api, "its default endpoint")


@dataclass(frozen=True)
class ModelChoice:
    """One concrete model: its configuration and endpoint."""

    config: ModelConfig
    endpoint: Endpoint = field(compare=False)

    @property
    def label(self) -> str:
        return self.config.label


@dataclass(frozen=True)
class ResolvedModel:
    """A validated model reference: one model, or an alloy whose models take turns."""

    ref: str
    choices: tuple[ModelChoice, ...]

    @property
    def label(self) -> str:
        """``provider/model`` (comma-joined for an alloy), as docker-agent's events name it."""
        return ",".join(choice.label for choice in self.choices)

    def pick(self, turn: int) -> ModelChoice:
        """The model for the ``turn``-th call: alloy members take turns."""
        return self.choices[turn % len(self.choices)]


def resolve_ref(team: TeamConfig, ref: str) -> ResolvedModel:
    """Validate a model reference against a team; ``InvalidModelRef`` names what is wrong."""
    ref = ref.strip()
    if not ref:
        raise InvalidModelRef("The model reference is empty.", field="model")
    parts = split_alloy(ref)
    if not all(parts):
        raise InvalidModelRef(f"The model list {ref!r} has an empty entry.", field="model")
    return ResolvedModel(ref=ref, choices=tuple(resolve_one(team, part) for part in parts))


def resolve_one(team: TeamConfig, ref: str) -> ModelChoice:
    """One model ref (``auto``, a ``models:`` key or ``provider/model``) and its endpoint."""
    config = auto_model() if ref == AUTO else team.model_for(ref)
    return ModelChoice(config, _endpoint(team, config))


def auto_model() -> ModelConfig:
    """docker-agent's ``auto``: the first provider with a key set, else Docker Model Runner."""
    provider = next(
        (name for name, keys in AUTO_ORDER if any(os.environ.get(key) for key in keys)), "dmr"
    )
    max_tokens = 16000 if provider == "dmr" else 32000
    return ModelConfig(
        name=AUTO, provider=provider, model=AUTO_MODELS[provider], max_tokens=max_tokens
    )


def _endpoint(team: TeamConfig, config: ModelConfig) -> Endpoint:
    """Apply a `providers:` entry (which wins, as in docker-agent) or the provider's defaults."""
    api_type = str(config.provider_opts.get("api_type") or "")
    custom = team.providers.get(config.provider)
    if custom is not None:
        spec = PROVIDERS.get(custom.provider)
        if spec is None:
            raise InvalidModelRef(
                f"Provider {config.provider!r} of agent source {team.source_id!r} speaks "
                f"{custom.provider!r}, which is not a known provider.",
                field="model",
            )
        token_env = config.token_key or custom.token_key
        base_url = config.base_url or custom.base_url or spec.base_url
        return Endpoint(
            api=spec.api,
            base_url=_expand(base_url),
            token_env=token_env,
            key_required=bool(token_env),
            api_type=api_type or custom.api_type,
            extra=spec.extra,
        )
    spec = PROVIDERS.get(config.provider)
    if spec is None:
        known = ", ".join(sorted({*PROVIDERS, *team.providers}))
        raise InvalidModelRef(
            f"Unknown model provider {config.provider!r} in {config.name!r} (known: {known}).",
            field="model",
        )
    overridden = bool(config.base_url) and config.base_url != spec.base_url
    return Endpoint(
        api=spec.api,
        base_url=_expand(config.base_url or spec.base_url),
        token_env=config.token_key or spec.token_env,
        # A key is needed for the provider's own endpoint or when the file names a variable;
        # a local server behind an `openai` base_url usually takes none.
        key_required=bool(config.token_key) or (bool(spec.token_env) and not overridden),
        api_type=api_type,
        price_id=spec.price_id,
        extra=spec.extra,
    )


def _expand(url: str) -> str:
    """``${VAR}`` / ``${env.VAR}`` in a base URL, from the environment (docker-agent does)."""
    return re.sub(
        r"\$\{(?:env\.)?([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: os.environ.get(m[1], ""), url
    )


# -- building ------------------------------------------------------------------------------


def build_model(choice: ModelChoice) -> Model:
    """A pydantic-ai model for one choice; SDKs are imported lazily (start-up stays fast)."""
    config, endpoint = choice.config, choice.endpoint
    if endpoint.api == "demo":
        from .demo_model import build_demo_model

        return build_demo_model(config.model)
    key = _api_key(choice)
    try:
        return _BUILDERS[endpoint.api](config, endpoint, key)
    except ImportError as exc:
        extra = endpoint.extra or endpoint.api
        raise ModelUnavailable(
            f"Model {choice.label} needs an optional package: pip install 'nbsession[{extra}]'."
        ) from exc


def _api_key(choice: ModelChoice) -> str | None:
    endpoint = choice.endpoint
    if not endpoint.token_env:
        return None
    key = os.environ.get(endpoint.token_env, "")
    if not key and endpoint.api == "google":
        key = os.environ.get("GEMINI_API_KEY", "")
    if not key and endpoint.key_required:
        raise ModelUnavailable(
            f"Model {choice.label} needs an API key: set the environment variable "
            f"{endpoint.token_env}."
        )
    return key or None


def _openai(config: ModelConfig, endpoint: Endpoint, key: str | None) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.ollama import OllamaProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    provider_class = OllamaProvider if config.provider == "ollama" else OpenAIProvider
    provider = provider_class(base_url=endpoint.base_url or None, api_key=key or _NO_KEY)
    if endpoint.api_type == "openai_responses":
        return OpenAIResponsesModel(config.model, provider=provider)
    return OpenAIChatModel(config.model, provider=provider)


def _azure(config: ModelConfig, endpoint: Endpoint, key: str | None) -> Model:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.azure import AzureProvider

    if not endpoint.base_url:
        raise ModelUnavailable(
            f"Model {config.label} needs base_url: your Azure OpenAI endpoint "
            "(https://<resource>.openai.azure.com)."
        )
    version = config.provider_opts.get("azure_api_version") or os.environ.get(
        "OPENAI_API_VERSION", "2024-10-21"
    )
    provider = AzureProvider(azure_endpoint=endpoint.base_url, api_version=version, api_key=key)
    return OpenAIChatModel(config.model, provider=provider)


def _anthropic(config: ModelConfig, endpoint: Endpoint, key: str | None) -> Model:
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(api_key=key or _NO_KEY, base_url=endpoint.base_url or None)
    return AnthropicModel(config.model, provider=provider)


def _google(config: ModelConfig, endpoint: Endpoint, key: str | None) -> Model:
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.providers.google import GoogleProvider

    provider = GoogleProvider(api_key=key, base_url=endpoint.base_url or None)
    return GoogleModel(config.model, provider=provider)


def _bedrock(config: ModelConfig, endpoint: Endpoint, key: str | None) -> Model:
    from pydantic_ai.models.bedrock import BedrockConverseModel
    from pydantic_ai.providers.bedrock import BedrockProvider

    region = config.provider_opts.get("region") or None
    provider = BedrockProvider(base_url=endpoint.base_url or None, region_name=region)
    return BedrockConverseModel(config.model, provider=provider)


_BUILDERS = {
    "openai": _openai,
    "azure": _azure,
    "anthropic": _anthropic,
    "google": _google,
    "bedrock": _bedrock,
}


def model_settings(choice: ModelChoice) -> ModelSettings:
    """Request settings from the configuration (only what the YAML set).

    Retries belong to the loop (docker-agent's ``fallback.retries``), so the SDK makes one
    attempt. ``provider_opts`` keys this module does not read are sent in the request body.
    """
    config = choice.config
    settings: dict[str, Any] = {"max_retries": 0}
    for name in (
        "temperature",
        "max_tokens",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "parallel_tool_calls",
    ):
        value = getattr(config, name)
        if value is not None:
            settings[name] = value
    settings.update(_thinking(choice))
    extra = {k: v for k, v in config.provider_opts.items() if k not in _OWN_OPTS}
    if extra:
        settings["extra_body"] = extra
    return settings  # type: ignore[return-value]


def _thinking(choice: ModelChoice) -> dict[str, Any]:
    """docker-agent's ``thinking_budget``: an effort level, or a token budget (0 or ``none``:
    the model's own default, as docker-agent normalises it)."""
    budget = choice.config.thinking_budget
    if budget is None or budget == 0 or budget == "none":
        return {}
    if isinstance(budget, str):
        return {"thinking": budget}
    if choice.endpoint.api == "anthropic" and budget > 0:
        return {"anthropic_thinking": {"type": "enabled", "budget_tokens": budget}}
    if choice.endpoint.api == "google":
        return {"google_thinking_config": {"thinking_budget": budget}}
    return {"thinking": budget > 0}


class ModelPool:
    """The models of one host (a manager), shared by its runtimes and closed with it.

    Building a model creates its HTTP client (TLS context, connection pool), which costs tens
    of milliseconds; sharing one per endpoint keeps a new session's first turn cheap. A model
    is shared only by configurations that build the same client: same endpoint, protocol and
    key (the key's value is part of the identity, so a changed variable takes effect).
    """

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], Model] = {}
        self._clients = contextlib.AsyncExitStack()

    async def get(self, choice: ModelChoice) -> Model:
        key = _pool_key(choice)
        model = self._models.get(key)
        if model is None:
            built = await self._clients.enter_async_context(build_model(choice))
            model = self._models.setdefault(key, built)
        return model

    async def aclose(self) -> None:
        """Close every model's HTTP client."""
        self._models.clear()
        await self._clients.aclose()


def _pool_key(choice: ModelChoice) -> tuple[Any, ...]:
    config, endpoint = choice.config, choice.endpoint
    if endpoint.api == "demo":
        return ("demo", config.model)
    baked = tuple(str(config.provider_opts.get(name, "")) for name in sorted(_OWN_OPTS))
    key = os.environ.get(endpoint.token_env, "") if endpoint.token_env else ""
    return (config.provider, config.model, endpoint, baked, key)


# -- failures ------------------------------------------------------------------------------


def is_retryable(exc: BaseException) -> bool:
    """Worth another attempt on the same model: docker-agent retries 5xx, 408, 529, timeouts
    and unreachable endpoints; a 429 or another 4xx moves to the next model at once."""
    from pydantic_ai.exceptions import (
        ModelConnectionError,
        ModelHTTPError,
        ModelRequestTimeout,
        ModelServerError,
        ModelUnavailableError,
    )

    if isinstance(exc, ModelHTTPError):
        return exc.status_code in _RETRYABLE_STATUS
    return isinstance(
        exc, (ModelConnectionError, ModelRequestTimeout, ModelServerError, ModelUnavailableError)
    )


def error_code(exc: BaseException) -> str:
    """docker-agent's ``error`` event code for a failed model call."""
    from pydantic_ai.exceptions import ModelContextWindowExceededError, ModelRateLimitError

    if isinstance(exc, ModelRateLimitError):
        return "rate_limited"
    if isinstance(exc, ModelContextWindowExceededError):
        return "context_exceeded"
    return "model_error"


def describe_failure(choice: ModelChoice, exc: BaseException) -> str:
    """What a person reads when a model call fails: which model, where, and why."""
    from pydantic_ai.exceptions import (
        ModelAuthenticationError,
        ModelConnectionError,
        ModelHTTPError,
        ModelRequestTimeout,
    )

    if isinstance(exc, ModelUnavailable):
        return str(exc)
    label, url = choice.label, choice.endpoint.url
    if isinstance(exc, (ModelConnectionError, ModelRequestTimeout)):
        return f"Cannot reach model {label} at {url}: {_reason(exc)}"
    if isinstance(exc, ModelAuthenticationError):
        variable = choice.endpoint.token_env or "its API key"
        return f"Model {label} at {url} refused the API key (check {variable}): {_reason(exc)}"
    if isinstance(exc, ModelHTTPError):
        return f"Model {label} at {url} answered HTTP {exc.status_code}: {_reason(exc)}"
    return f"Model {label} failed: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    cause = exc.__cause__
    while cause is not None and cause.__cause__ is not None:
        cause = cause.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


# -- usage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UsageFacts:
    """What genai-prices knows of a response: its price and the model's context window
    (0 when unknown)."""

    cost: float = 0.0
    context_limit: int = 0


def usage_facts(choice: ModelChoice, response: ModelResponse) -> UsageFacts:
    """Price and context window from genai-prices: by the provider's name when it has one
    there, else by its endpoint URL (a `providers:` entry pointing at a known API)."""
    from genai_prices import calc_price

    endpoint = choice.endpoint
    if endpoint.price_id:
        where: dict[str, str] = {"provider_id": endpoint.price_id}
    elif endpoint.base_url:
        where = {"provider_api_url": endpoint.base_url}
    else:
        return UsageFacts()
    try:
        price = calc_price(response.usage, choice.config.model, **where)  # type: ignore[arg-type]
    except Exception:  # not in the table (LookupError), or a usage it cannot read: unknown
        return UsageFacts()
    return UsageFacts(float(price.total_price), int(price.model.context_window or 0))
