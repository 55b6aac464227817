"""The ``webhook`` toolset: ``send_webhook`` posts a notification to one configured destination
(docker-agent's: Slack, Discord, IFTTT, Telegram, Mattermost, Rocket.Chat, Google Chat, Teams,
or a generic endpoint).

The destination is configuration, never the model's choice: the URL often is the credential
itself, so the model supplies only the message. ``webhook_config.url`` and its ``headers``
expand ``$VAR``, ``${VAR}`` and ``${env.VAR}`` at each call. ``provider`` picks the JSON body's
shape (``{"text"}``, Discord's ``{"content"}``, IFTTT's ``{"value1", "value2", "value3"}``,
Telegram's ``{"chat_id", "text"}``, which needs ``chat_id``).

Delivery is retried up to 4 attempts on network errors, 429 and 5xx (with backoff, honouring
``Retry-After`` up to 30 s); another 4xx fails at once. An identical message sent again within
30 s is suppressed (a success saying so), and sends closer than 1 s apart are refused. Unlike
docker-agent, which queues the delivery and reports only a final failure later, the call waits
for the outcome (nbsession has no way to tell the model afterwards). The tool asks for approval
unless permitted. Non-public hosts are refused unless ``allow_private_ips`` (docker-agent always
refuses them).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from ._http import Refused, check_public_address, check_url
from .base import Tool, ToolContext, ToolResult, Toolset, expand_env

USER_AGENT = "nbsession-webhook (docker-agent compatible)"
MAX_ATTEMPTS = 4
DEDUPE_WINDOW = 30.0  # seconds an identical message is suppressed
MIN_INTERVAL = 1.0  # seconds between two sends
MAX_RETRY_AFTER = 30.0
FIRST_BACKOFF = 0.5  # seconds before the second attempt, doubling after
MAX_RESPONSE = 64 << 10

PROVIDERS = (
    "slack",
    "discord",
    "ifttt",
    "telegram",
    "mattermost",
    "rocketchat",
    "googlechat",
    "teams",
    "generic",
)
ALIASES = {
    "": "generic",
    "google_chat": "googlechat",
    "gchat": "googlechat",
    "msteams": "teams",
    "microsoftteams": "teams",
    "microsoft_teams": "teams",
    "rocket.chat": "rocketchat",
    "rocket_chat": "rocketchat",
}


def normalize_provider(provider: str) -> str:
    name = provider.strip().lower()
    return ALIASES.get(name, name)


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str = Field(min_length=1, description="The webhook endpoint (prefer ${env.VAR})")
    provider: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    chat_id: str = ""

    @model_validator(mode="after")
    def _known_provider(self) -> WebhookConfig:
        provider = normalize_provider(self.provider)
        if provider not in PROVIDERS:
            raise ValueError(
                f"unknown provider {self.provider!r} (supported: {', '.join(PROVIDERS)})"
            )
        if provider == "telegram" and not self.chat_id.strip():
            raise ValueError("provider telegram requires chat_id")
        return self


class WebhookOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    webhook_config: WebhookConfig
    timeout: PositiveInt = Field(30, description="Seconds one attempt may take")
    allow_private_ips: bool = False


class SendArgs(BaseModel):
    message: str = Field(description="The message text to deliver")
    value2: str = Field("", description="IFTTT value2 field (provider=ifttt only)")
    value3: str = Field("", description="IFTTT value3 field (provider=ifttt only)")


class _Permanent(Exception):
    """A failure another attempt would not fix; the message says what happened."""


class WebhookToolset(Toolset):
    type: ClassVar[str] = "webhook"
    options_model = WebhookOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = WebhookOptions.model_validate(dict(options or {}))
        self._provider = normalize_provider(self._options.webhook_config.provider)
        self._recent: dict[str, float] = {}  # message digest -> when it was sent
        self._last_sent: float | None = None
        self._tool = self.function_tool(
            name="send_webhook",
            description=(
                "Send a notification to the configured webhook (Slack, Discord, IFTTT, Telegram, "
                "Mattermost, Rocket.Chat, Google Chat, Teams, or a generic endpoint). The "
                "destination is set in the agent's configuration, so you only supply the "
                "message. Delivery is retried automatically."
            ),
            args=SendArgs,
            func=self._send,
            title="Send Webhook",
        )

    async def tools(self) -> list[Tool]:
        return [self._tool]

    async def _send(self, args: SendArgs, ctx: ToolContext) -> ToolResult:
        if not args.message.strip():
            return ToolResult("Error: message is required.", is_error=True)
        now = time.monotonic()
        self._recent = {k: t for k, t in self._recent.items() if now - t <= DEDUPE_WINDOW}
        key = hashlib.sha256("\0".join((args.message, args.value2, args.value3)).encode())
        digest = key.hexdigest()
        if digest in self._recent:
            return ToolResult(
                f"Suppressed: an identical message was already delivered to the "
                f"{self._provider} webhook within the last {DEDUPE_WINDOW:g}s."
            )
        if self._last_sent is not None and now - self._last_sent < MIN_INTERVAL:
            wait = MIN_INTERVAL - (now - self._last_sent)
            return ToolResult(
                f"Error: rate limited; wait {wait:.3f}s before sending another notification.",
                is_error=True,
            )
        self._recent[digest] = self._last_sent = now
        return await self._deliver(args)

    async def _deliver(self, args: SendArgs) -> ToolResult:
        provider, last = self._provider, ""
        async with httpx.AsyncClient(timeout=self._options.timeout) as client:
            for attempt in range(MAX_ATTEMPTS):
                try:
                    retry_after = await self._attempt(client, args)
                except _Permanent as exc:
                    return ToolResult(
                        f"Delivery to the {provider} webhook failed permanently: {exc}",
                        is_error=True,
                    )
                if retry_after is None:
                    return ToolResult(
                        f"Delivered to the {provider} webhook (attempt {attempt + 1}/"
                        f"{MAX_ATTEMPTS})."
                    )
                delay, last = retry_after
                if attempt + 1 < MAX_ATTEMPTS:
                    await asyncio.sleep(delay or FIRST_BACKOFF * 2**attempt)
        return ToolResult(
            f"Delivery to the {provider} webhook failed after {MAX_ATTEMPTS} attempt(s): {last}",
            is_error=True,
        )

    async def _attempt(self, client: httpx.AsyncClient, args: SendArgs) -> tuple[float, str] | None:
        """One POST: ``None`` when delivered, else (the wait the server asked for, or 0; why)
        for a failure worth retrying. Raises `_Permanent` for one that is not."""
        config = self._options.webhook_config
        url = expand_env(config.url)
        try:
            check_url(url)
            if not self._options.allow_private_ips:
                await check_public_address(url, "webhook")
        except Refused as exc:
            raise _Permanent(str(exc)) from None
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
        headers.update({key: expand_env(value) for key, value in config.headers.items()})
        body = json.dumps(_payload(self._provider, args, config.chat_id)).encode()
        try:
            response = await client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # The URL often holds the webhook's secret: never repeat it to the model.
            reason = (str(exc) or type(exc).__name__).replace(url, "<webhook url>")
            return 0.0, f"request failed: {reason}"
        if 200 <= response.status_code < 300:
            return None
        detail = f"HTTP {response.status_code}: {_snippet(response.content[:MAX_RESPONSE])}"
        if response.status_code == 429 or response.status_code >= 500:
            return _retry_after(response.headers.get("Retry-After")), detail
        raise _Permanent(detail)


def _payload(provider: str, args: SendArgs, chat_id: str) -> dict[str, str]:
    if provider == "discord":
        return {"content": args.message}
    if provider == "telegram":
        return {"chat_id": chat_id, "text": args.message}
    if provider == "ifttt":
        payload = {"value1": args.message}
        if args.value2:
            payload["value2"] = args.value2
        if args.value3:
            payload["value3"] = args.value3
        return payload
    return {"text": args.message}


def _retry_after(value: str | None) -> float:
    try:
        seconds = int((value or "").strip())
    except ValueError:
        return 0.0
    return float(min(seconds, MAX_RETRY_AFTER)) if seconds > 0 else 0.0


def _snippet(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return "(no body)"
    return text[:200] + "…" if len(text) > 200 else text
