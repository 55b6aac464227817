"""Kernel outputs as text a model can read: streams, results, displays, errors, images.

Outputs are nbformat's output dicts (what a notebook stores and what a kernel's IOPub messages
become). A model gets text only: rich data is reduced to its Markdown or plain-text form,
tracebacks lose their ANSI colours, and an image becomes a reference (its type and size, and
where it was saved when the caller keeps images) rather than megabytes of base64.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml", "image/webp")
# Rich types a model gets as text, best first; text/html is only mentioned (it is markup for
# a browser: pandas sends text/plain next to it).
TEXT_TYPES = ("text/markdown", "text/plain", "text/latex")

# Called with (mime type, raw bytes) for each image; returns how the text refers to it.
ImageSink = Callable[[str, bytes], str]


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def joined(value: str | Iterable[str]) -> str:
    """nbformat's multiline strings are a string or a list of lines."""
    return value if isinstance(value, str) else "".join(value)


def image_bytes(mime: str, value: Any) -> bytes:
    """An image's bytes: SVG is stored as text, the others as base64."""
    text = joined(value)
    if mime == "image/svg+xml":
        return text.encode()
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return text.encode()


def describe_image(mime: str, data: bytes) -> str:
    return f"[{mime}, {len(data)} bytes]"


def output_text(output: Mapping[str, Any], images: ImageSink = describe_image) -> str:
    """One output as text (without a trailing newline)."""
    kind = output.get("output_type")
    if kind == "stream":
        text = strip_ansi(joined(output.get("text", ""))).rstrip("\n")
        return f"[stderr]\n{text}" if output.get("name") == "stderr" else text
    if kind == "error":
        traceback = strip_ansi("\n".join(output.get("traceback") or []))
        header = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
        return f"{header}\n{traceback}".rstrip() if traceback else header
    if kind in ("execute_result", "display_data"):
        text = data_text(output.get("data") or {}, images)
        count = output.get("execution_count")
        return f"Out[{count}]: {text}" if kind == "execute_result" and count else text
    return f"[{kind} output]"


def data_text(data: Mapping[str, Any], images: ImageSink = describe_image) -> str:
    """A mime bundle as text: images as references, then its best textual form."""
    parts = [images(mime, image_bytes(mime, data[mime])) for mime in IMAGE_TYPES if mime in data]
    text = next((joined(data[mime]) for mime in TEXT_TYPES if mime in data), None)
    if text is None and "application/json" in data:
        text = json.dumps(data["application/json"], ensure_ascii=False)
    if text is not None:
        parts.append(strip_ansi(text).rstrip("\n"))
    if not parts:
        others = ", ".join(sorted(data)) or "nothing"
        parts.append(f"[rich output: {others}]")
    return "\n".join(parts)


def outputs_text(outputs: Iterable[Mapping[str, Any]], images: ImageSink = describe_image) -> str:
    return "\n".join(output_text(output, images) for output in outputs)


def bounded(text: str, limit: int) -> str:
    """``text`` cut in the middle to at most about ``limit`` characters: the start says what
    ran, the end where it stopped (a traceback's last line)."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    omitted = len(text) - head - tail
    return f"{text[:head]}\n... [{omitted} characters omitted] ...\n{text[len(text) - tail :]}"
