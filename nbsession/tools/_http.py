"""What the toolsets that reach the network on the model's say (``fetch``, ``api``,
``openapi``) share: the refusal of non-public addresses and bounded reads.

Addresses are checked by resolving the host before each request, so a DNS answer that changes
between the check and the connection could still slip through; docker-agent checks at dial
time instead.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

import httpx

MAX_BODY = 1 << 20  # bytes of a response body read
MAX_OUTPUT = 30_000  # characters of it a model reads (docker-agent's limit for api tools)


class Refused(Exception):
    """A request the toolset will not make; the message says why, for the model."""


def check_url(url: str) -> str:
    """The URL's host, if it is an http(s) URL with one."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise Refused("invalid URL: missing scheme or host")
    if parts.scheme not in ("http", "https"):
        raise Refused("only HTTP and HTTPS URLs are supported")
    return parts.hostname


async def check_public_address(url: str, toolset: str) -> None:
    """Refuse a host that resolves to an address that is not public (loopback, private,
    link-local such as cloud metadata); ``toolset`` names where ``allow_private_ips`` goes."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    except socket.gaierror as exc:
        raise Refused(f"cannot resolve {host}: {exc.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            raise Refused(
                f"{host} resolves to the non-public address {address}; set "
                f"allow_private_ips on the {toolset} toolset to reach it"
            )


async def read_limited(response: httpx.Response, limit: int = MAX_BODY) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


def limit_output(text: str, limit: int = MAX_OUTPUT) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n\n[Output truncated: exceeded {limit:,} character limit]"
