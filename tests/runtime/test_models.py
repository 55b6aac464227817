"""Model references, providers and request settings (SPEC 11), without a network."""

from __future__ import annotations

import textwrap

import pytest

from nbsession.config import TeamConfig, parse_team
from nbsession.errors import InvalidModelRef
from nbsession.runtime.models import (
    PROVIDERS,
    ModelUnavailable,
    build_model,
    model_settings,
    resolve_ref,
)

# The provider names docker-agent's agent files use (its core providers and aliases).
DOCKER_AGENT_PROVIDERS = [
    "openai",
    "anthropic",
    "google",
    "dmr",
    "amazon-bedrock",
    "ollama",
    "mistral",
    "xai",
    "azure",
    "nebius",
    "requesty",
    "nvidia",
    "openrouter",
    "atlascloud",
    "minimax",
    "baseten",
    "ovhcloud",
    "groq",
    "fireworks",
    "deepseek",
    "cerebras",
    "together",
    "huggingface",
    "moonshot",
    "vercel",
    "cloudflare-workers-ai",
    "cloudflare-ai-gateway",
    "github-copilot",
    "opencode-go",
    "opencode-zen",
]
KEYS = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY"]
KEYS += ["MISTRAL_API_KEY", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"]


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)


def team(text: str = "agents: {root: {model: demo/offline}}") -> TeamConfig:
    return parse_team(textwrap.dedent(text), path="t.yaml", source_id="t")


def test_every_docker_agent_provider_name_is_known() -> None:
    assert set(DOCKER_AGENT_PROVIDERS) <= set(PROVIDERS)
    for name in DOCKER_AGENT_PROVIDERS:
        choice = resolve_ref(team(), f"{name}/some-model").pick(0)
        assert choice.config.provider == name


def test_an_unknown_provider_is_refused_with_the_known_ones() -> None:
    with pytest.raises(InvalidModelRef) as raised:
        resolve_ref(team(), "nowhere/x")
    assert "'nowhere'" in raised.value.message and "ollama" in raised.value.message


@pytest.mark.parametrize(
    ("ref", "url"),
    [
        ("ollama/llama3.2", "http://localhost:11434/v1"),
        ("dmr/ai/qwen3", "http://localhost:12434/engines/v1"),
        ("xai/grok-4", "https://api.x.ai/v1"),
        ("mistral/mistral-small-latest", "https://api.mistral.ai/v1"),
        ("nebius/m", "https://api.studio.nebius.com/v1"),
        ("openai/gpt-4o", ""),
    ],
)
def test_provider_default_endpoints(ref: str, url: str) -> None:
    assert resolve_ref(team(), ref).pick(0).endpoint.base_url == url


@pytest.mark.parametrize("provider", ["openai", "ollama", "anthropic", "xai", "azure", "google"])
def test_base_url_is_honoured_for_every_provider_that_has_one(provider: str) -> None:
    t = team(
        f"""
        agents: {{root: {{model: m}}}}
        models: {{m: {{provider: {provider}, model: x, base_url: "http://10.0.0.1:9/v1"}}}}
        """
    )
    assert resolve_ref(t, "m").pick(0).endpoint.base_url == "http://10.0.0.1:9/v1"


def test_templated_base_urls_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acct42")
    endpoint = resolve_ref(team(), "cloudflare-workers-ai/llama").pick(0).endpoint
    assert endpoint.base_url == "https://api.cloudflare.com/client/v4/accounts/acct42/ai/v1"


def test_a_local_server_needs_no_key_but_a_vendor_does() -> None:
    local = team(
        """
        agents: {root: {model: m}}
        models: {m: {provider: openai, model: x, base_url: "http://127.0.0.1:9/v1"}}
        """
    )
    build_model(resolve_ref(local, "m").pick(0))  # no OPENAI_API_KEY needed
    build_model(resolve_ref(local, "ollama/llama3.2").pick(0))
    with pytest.raises(ModelUnavailable, match="set the environment variable XAI_API_KEY"):
        build_model(resolve_ref(local, "xai/grok-4").pick(0))
    with pytest.raises(ModelUnavailable, match="OPENAI_API_KEY"):
        build_model(resolve_ref(local, "openai/gpt-4o").pick(0))


def test_providers_section(monkeypatch: pytest.MonkeyPatch) -> None:
    t = team(
        """
        providers:
          corp: {base_url: "http://gw.local/v1", token_key: CORP_KEY, api_type: openai_responses}
          claude-proxy: {provider: anthropic, base_url: "http://claude.local", token_key: CK}
        agents: {root: {model: corp/gpt-4.1}}
        models: {m: {provider: corp, model: y, base_url: "http://other/v1"}}
        """
    )
    endpoint = resolve_ref(t, "corp/gpt-4.1").pick(0).endpoint
    assert (endpoint.api, endpoint.base_url, endpoint.token_env) == (
        "openai",
        "http://gw.local/v1",
        "CORP_KEY",
    )
    assert endpoint.api_type == "openai_responses"
    assert resolve_ref(t, "m").pick(0).endpoint.base_url == "http://other/v1"  # model wins
    proxy = resolve_ref(t, "claude-proxy/claude-sonnet-4-5").pick(0).endpoint
    assert (proxy.api, proxy.base_url) == ("anthropic", "http://claude.local")
    with pytest.raises(ModelUnavailable, match="CORP_KEY"):
        build_model(resolve_ref(t, "corp/gpt-4.1").pick(0))
    monkeypatch.setenv("CORP_KEY", "k")
    model = build_model(resolve_ref(t, "corp/gpt-4.1").pick(0))
    assert type(model).__name__ == "OpenAIResponsesModel"


@pytest.mark.parametrize(
    ("keys", "provider"),
    [
        ({}, "dmr"),
        ({"MISTRAL_API_KEY": "k"}, "mistral"),
        ({"GEMINI_API_KEY": "k", "MISTRAL_API_KEY": "k"}, "google"),
        ({"OPENAI_API_KEY": "k", "GOOGLE_API_KEY": "k"}, "openai"),
        ({"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}, "anthropic"),
    ],
)
def test_auto_takes_the_first_provider_with_a_key(
    monkeypatch: pytest.MonkeyPatch, keys: dict[str, str], provider: str
) -> None:
    for key, value in keys.items():
        monkeypatch.setenv(key, value)
    config = resolve_ref(team("agents: {root: {model: auto}}"), "auto").pick(0).config
    assert config.provider == provider and config.model
    assert config.max_tokens == (16000 if provider == "dmr" else 32000)


def test_alloy_members_take_turns() -> None:
    resolved = resolve_ref(team(), "ollama/a, ollama/b")
    assert resolved.label == "ollama/a,ollama/b"
    assert [resolved.pick(i).config.model for i in range(4)] == ["a", "b", "a", "b"]
    with pytest.raises(InvalidModelRef):
        resolve_ref(team(), "ollama/a,")


def test_settings_carry_the_model_options() -> None:
    t = team(
        """
        agents: {root: {model: m}}
        models:
          m:
            provider: openai
            model: o4-mini
            temperature: 0.5
            max_tokens: 100
            top_p: 0.8
            frequency_penalty: 0.1
            presence_penalty: 0.2
            parallel_tool_calls: true
            thinking_budget: high
            provider_opts: {api_type: openai_chatcompletions, reasoning_summary: auto}
          claude: {provider: anthropic, model: claude-sonnet-4-5, thinking_budget: 2048}
          gem: {provider: google, model: gemini-2.5-flash, thinking_budget: 512}
          plain: {provider: openai, model: gpt-4o, thinking_budget: 0}
        """
    )
    settings = model_settings(resolve_ref(t, "m").pick(0))
    assert settings == {
        "max_retries": 0,
        "temperature": 0.5,
        "max_tokens": 100,
        "top_p": 0.8,
        "frequency_penalty": 0.1,
        "presence_penalty": 0.2,
        "parallel_tool_calls": True,
        "thinking": "high",
        "extra_body": {"reasoning_summary": "auto"},
    }
    claude = model_settings(resolve_ref(t, "claude").pick(0))
    assert claude["anthropic_thinking"] == {"type": "enabled", "budget_tokens": 2048}  # type: ignore[typeddict-item]
    gem = model_settings(resolve_ref(t, "gem").pick(0))
    assert gem["google_thinking_config"] == {"thinking_budget": 512}  # type: ignore[typeddict-item]
    assert model_settings(resolve_ref(t, "plain").pick(0)) == {"max_retries": 0}


def test_azure_needs_its_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_API_KEY", "k")
    with pytest.raises(ModelUnavailable, match="base_url"):
        build_model(resolve_ref(team(), "azure/gpt-4o").pick(0))
    t = team(
        """
        agents: {root: {model: m}}
        models: {m: {provider: azure, model: gpt-4o, base_url: "https://r.openai.azure.com"}}
        """
    )
    assert type(build_model(resolve_ref(t, "m").pick(0))).__name__ == "OpenAIChatModel"
