"""Session titles generated from the first user message (SPEC 5)."""

from __future__ import annotations

from pydantic_ai.direct import model_request_stream
from pydantic_ai.messages import ModelRequest, SystemPromptPart, UserPromptPart
from pydantic_ai.models import Model
from pydantic_ai.settings import ModelSettings

TITLE_PROMPT = (
    "Write a short title (at most six words) for a conversation that starts with the user's "
    "message below. Answer with the title only: no quotes, no punctuation at the end."
)
MAX_TITLE_LENGTH = 80


def fallback_title(text: str) -> str:
    """A title made from the message itself, when the model cannot give one."""
    words = " ".join(text.split())
    if len(words) <= 50:
        return words or "New session"
    return words[:50].rsplit(" ", 1)[0] + "…"


def clean_title(raw: str) -> str:
    line = next((line for line in raw.strip().splitlines() if line.strip()), "")
    return line.strip().strip("\"'`*#").strip()[:MAX_TITLE_LENGTH]


async def generate_title(
    model: Model, first_message: str, settings: ModelSettings | None = None
) -> str:
    """Ask a model for a title; a failure or an empty answer falls back."""
    request = ModelRequest(
        parts=[SystemPromptPart(content=TITLE_PROMPT), UserPromptPart(content=first_message)]
    )
    try:
        async with model_request_stream(model, [request], model_settings=settings) as stream:
            async for _ in stream:
                pass
            response = stream.get()
    except Exception:
        return fallback_title(first_message)
    text = "".join(
        getattr(part, "content", "") for part in response.parts if part.part_kind == "text"
    )
    return clean_title(text) or fallback_title(first_message)
