"""The ``fetch`` toolset: HTTP GET of URLs, as text, Markdown or HTML (docker-agent's tool).

One tool, ``fetch(urls, format, timeout)``. It asks for approval unless permitted: it reaches
the network on the model's say. The guards are docker-agent's: only http and https; the
domain allow and block lists are checked on every redirect hop; addresses that are not public
(loopback, private ranges, link-local such as cloud metadata) are refused unless
``allow_private_ips``; robots.txt is honoured; configured headers are dropped when a redirect
leaves the first host; a body is read up to 1 MiB and a request gives up after ``timeout``
(the address check's limits are in ``_http``).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.robotparser
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from ._http import MAX_BODY, Refused, check_public_address, check_url, read_limited
from .base import FixedToolset, Tool, ToolContext, ToolResult, expand_env

_MAX_ROBOTS = 64 * 1024
_MAX_REDIRECTS = 10
USER_AGENT = "nbsession-fetch (docker-agent compatible)"
_ACCEPT = {
    "markdown": "text/markdown;q=1.0, text/plain;q=0.9, text/html;q=0.7, */*;q=0.1",
    "html": "text/html;q=1.0, text/plain;q=0.8, */*;q=0.1",
    "text": "text/plain;q=1.0, text/markdown;q=0.9, text/html;q=0.8, */*;q=0.1",
}


class FetchOptions(BaseModel):
    """The ``fetch`` entry's options (docker-agent's names); other keys are not ours."""

    model_config = ConfigDict(extra="ignore")

    timeout: PositiveInt = Field(30, description="Seconds a request may take")
    allowed_domains: list[str] = Field(default_factory=list)
    blocked_domains: list[str] = Field(default_factory=list)
    allow_private_ips: bool = False
    headers: dict[str, str] = Field(default_factory=dict)


class FetchArgs(BaseModel):
    urls: list[str] = Field(min_length=1, description="URLs to fetch")
    format: Literal["text", "markdown", "html"] = Field(description="Output format")
    timeout: int | None = Field(
        None, ge=1, le=300, description="Request timeout in seconds (default: 30)"
    )


@dataclass
class FetchResult:
    """One URL's outcome, in docker-agent's JSON names (several URLs answer a list)."""

    url: str
    statusCode: int = 0  # docker-agent's JSON name
    status: str = ""
    contentType: str = ""
    contentLength: int = 0
    body: str = ""
    error: str = ""


class FetchToolset(FixedToolset):
    """One tool, ``fetch`` (see the module docstring)."""

    type: ClassVar[str] = "fetch"
    options_model = FetchOptions

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self._options = FetchOptions.model_validate(dict(options or {}))
        self._tools: list[Tool] = [
            self.function_tool(
                name="fetch",
                description="Fetch HTTP/HTTPS URLs; return response bodies and metadata.",
                args=FetchArgs,
                func=self._fetch,
                title="Fetch URLs",
            )
        ]

    @property
    def headers(self) -> dict[str, str]:
        """The configured headers, ``${env.X}`` and ``$X`` expanded at each use."""
        return {key: expand_env(value) for key, value in self._options.headers.items()}

    async def _fetch(self, args: FetchArgs, ctx: ToolContext) -> ToolResult:
        timeout = args.timeout or self._options.timeout
        robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        results = []
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            for url in args.urls:
                result = FetchResult(url=url)
                try:
                    await self._fetch_one(client, url, args.format, result, robots)
                except Refused as exc:
                    result.error = str(exc)
                except httpx.HTTPError as exc:
                    result.error = f"request failed: {exc or type(exc).__name__}"
                results.append(result)
        if len(results) == 1:
            [one] = results
            if one.error:
                return ToolResult(f"Error fetching {one.url}: {one.error}", is_error=True)
            return ToolResult(
                f"Successfully fetched {one.url} (Status: {one.statusCode}, "
                f"Length: {one.contentLength} bytes):\n\n{one.body}"
            )
        return ToolResult(json.dumps([asdict(r) for r in results], ensure_ascii=False))

    async def _fetch_one(
        self,
        client: httpx.AsyncClient,
        url: str,
        format: str,
        result: FetchResult,
        robots: dict[str, urllib.robotparser.RobotFileParser | None],
    ) -> None:
        first_host = self._check_url(url)
        host_key = urlsplit(url).netloc
        if host_key not in robots:
            robots[host_key] = await self._robots(client, url, first_host)
        parser = robots[host_key]
        if parser is not None and not parser.can_fetch(USER_AGENT, url):
            raise Refused("URL blocked by robots.txt")
        headers = {"Accept": _ACCEPT[format], "User-Agent": USER_AGENT}
        async with self._get(client, url, headers, first_host) as response:
            result.statusCode = response.status_code
            result.status = f"{response.status_code} {response.reason_phrase}".strip()
            result.contentType = response.headers.get("content-type", "")
            body, truncated = await read_limited(response, MAX_BODY)
        text = body.decode(response.encoding or "utf-8", errors="replace")
        if "text/html" in result.contentType and format != "html":
            text = html_to_markdown(text) if format == "markdown" else html_to_text(text)
        if truncated:
            text += f"\n\n[truncated: the body is larger than {MAX_BODY} bytes]"
        result.body = text
        result.contentLength = len(text.encode())

    def _get(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], first_host: str
    ) -> _Redirecting:
        return _Redirecting(self, client, url, headers, first_host)

    def _check_url(self, url: str) -> str:
        """The URL's host, if the URL is one this toolset may fetch (domains only)."""
        host = check_url(url)
        if any(matches_domain(host, p) for p in self._options.blocked_domains):
            raise Refused(f"URL host {host!r} is blocked by blocked_domains")
        allowed = self._options.allowed_domains
        if allowed and not any(matches_domain(host, p) for p in allowed):
            raise Refused(f"URL host {host!r} is not in allowed_domains")
        return host

    async def _check_address(self, url: str) -> None:
        """Refuse a host that resolves to a non-public address, unless allowed."""
        if not self._options.allow_private_ips:
            await check_public_address(url, "fetch")

    async def _robots(
        self, client: httpx.AsyncClient, url: str, first_host: str
    ) -> urllib.robotparser.RobotFileParser | None:
        """The site's robots.txt rules; None (allow all) when it has none or is unreachable."""
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        try:
            async with self._get(client, robots_url, {"User-Agent": USER_AGENT}, first_host) as r:
                if r.status_code == 404:
                    return None
                if r.status_code != 200:
                    raise Refused(f"robots.txt check failed: unexpected status {r.status_code}")
                body, _ = await read_limited(r, _MAX_ROBOTS)
        except httpx.HTTPError:
            return None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        return parser


class _Redirecting:
    """``async with``: GET ``url``, following redirects by hand so every hop is checked."""

    def __init__(
        self,
        toolset: FetchToolset,
        client: httpx.AsyncClient,
        url: str,
        headers: dict[str, str],
        first_host: str,
    ) -> None:
        self._toolset = toolset
        self._client = client
        self._url = url
        self._headers = headers
        self._first_host = first_host
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        url = self._url
        for _ in range(_MAX_REDIRECTS + 1):
            host = self._toolset._check_url(url)
            await self._toolset._check_address(url)
            # Configured headers (credentials) go to the first host only.
            configured = self._toolset.headers if host == self._first_host else {}
            request = self._client.build_request(
                "GET", url, headers={**self._headers, **configured}
            )
            response = await self._client.send(request, stream=True)
            location = response.headers.get("location")
            if response.is_redirect and location:
                await response.aclose()
                url = urljoin(url, location)
                continue
            self._response = response
            return response
        raise Refused(f"stopped after {_MAX_REDIRECTS} redirects")

    async def __aexit__(self, *exc_info: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def matches_domain(host: str, pattern: str) -> bool:
    """docker-agent's domain rules: ``example.com`` is it and its subdomains, ``.example.com``
    and ``*.example.com`` its subdomains only, ``10.0.0.0/8`` an address range."""
    host = host.strip().strip("[]").rstrip(".").lower()
    pattern = pattern.strip().rstrip(".").lower()
    if not host or not pattern:
        return False
    if "/" in pattern:
        try:
            network = ipaddress.ip_network(pattern, strict=False)
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        mapped = getattr(address, "ipv4_mapped", None)
        return (mapped or address) in network
    if pattern.startswith("*."):
        pattern = pattern[1:]
    if pattern.startswith("."):
        return host.endswith(pattern)
    return host == pattern or host.endswith("." + pattern)


def html_to_markdown(html: str) -> str:
    from markdownify import MarkdownConverter

    soup = _readable(html)
    return MarkdownConverter(heading_style="ATX").convert_soup(soup).strip()


def html_to_text(html: str) -> str:
    lines = (line.strip() for line in _readable(html).get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _readable(html: str) -> Any:
    """The parsed page without what a reader never sees (scripts, styles, the head)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "noscript", "template"]):
        tag.decompose()
    return soup
