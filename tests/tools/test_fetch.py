"""The fetch toolset against a real local HTTP server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from peers.loopback import QuietHandler, serving

from nbsession.tools import FetchToolset, ToolContext, ToolResult
from nbsession.tools.fetch import MAX_BODY, matches_domain

PAGE = b"""<html><head><title>T</title><script>var secret = 1;</script></head>
<body><h1>Hello</h1><p>Some <b>bold</b> text.</p><script>alert('x')</script></body></html>"""
BIG = b"x" * (MAX_BODY + 4096)


class Handler(QuietHandler):
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = {
        "/page.html": (200, "text/html; charset=utf-8", PAGE, {}),
        "/plain.txt": (200, "text/plain", b"just text", {}),
        "/big": (200, "application/octet-stream", BIG, {}),
        "/robots.txt": (200, "text/plain", b"User-agent: *\nDisallow: /private\n", {}),
        "/private/doc": (200, "text/plain", b"private", {}),
        "/missing": (404, "text/plain", b"no such page", {}),
    }

    def do_GET(self) -> None:  # the stdlib's name
        path = self.path
        if path == "/slow":
            time.sleep(3)  # the server is slow; the client's timeout is what is tested
            self.send_body(200, "text/plain", b"late", {})
        elif path == "/headers":
            seen = {"authorization": self.headers.get("Authorization", "")}
            self.send_body(200, "application/json", json.dumps(seen).encode(), {})
        elif path.startswith("/redirect?to="):
            self.send_body(302, "text/plain", b"", {"Location": path.split("=", 1)[1]})
        else:
            self.send_body(*self.routes.get(path, (404, "text/plain", b"", {})))


@pytest.fixture
def base() -> Iterator[str]:
    with serving(Handler) as url:
        yield url


LOCAL = {"allow_private_ips": True}


async def fetch(options: dict[str, Any], **arguments: Any) -> ToolResult:
    [tool] = await FetchToolset(options).tools()
    return await tool.call({"format": "text", **arguments}, ToolContext("s1", ""))


async def test_tool_definition() -> None:
    [tool] = await FetchToolset().tools()
    definition = tool.definition
    assert definition.name == "fetch" and not definition.read_only
    assert set(definition.parameters["properties"]) == {"urls", "format", "timeout"}
    assert definition.parameters["required"] == ["urls", "format"]


async def test_loopback_is_refused_unless_allowed(base: str) -> None:
    refused = await fetch({}, urls=[f"{base}/plain.txt"])
    assert refused.is_error and "non-public address 127.0.0.1" in refused.output
    allowed = await fetch(LOCAL, urls=[f"{base}/plain.txt"])
    assert allowed == ToolResult(
        f"Successfully fetched {base}/plain.txt (Status: 200, Length: 9 bytes):\n\njust text"
    )


async def test_html_as_markdown_text_and_html(base: str) -> None:
    url = f"{base}/page.html"
    markdown = (await fetch(LOCAL, urls=[url], format="markdown")).output
    assert "# Hello" in markdown and "**bold**" in markdown
    assert "secret" not in markdown and "alert" not in markdown
    text = (await fetch(LOCAL, urls=[url], format="text")).output
    assert text.endswith("Hello\nSome\nbold\ntext.")
    html = (await fetch(LOCAL, urls=[url], format="html")).output
    assert html.endswith(PAGE.decode())


async def test_size_limit_truncates_and_says_so(base: str) -> None:
    result = await fetch(LOCAL, urls=[f"{base}/big"])
    assert not result.is_error
    body = result.output.split("\n\n", 1)[1]
    assert body.startswith("x" * 1000)
    assert body.endswith(f"[truncated: the body is larger than {MAX_BODY} bytes]")
    assert body.count("x") == MAX_BODY


async def test_timeout(base: str) -> None:
    result = await fetch(LOCAL, urls=[f"{base}/slow"], timeout=1)
    assert result.is_error and result.output.startswith(f"Error fetching {base}/slow: ")


async def test_robots_txt_is_honoured(base: str) -> None:
    result = await fetch(LOCAL, urls=[f"{base}/private/doc"])
    assert result == ToolResult(
        f"Error fetching {base}/private/doc: URL blocked by robots.txt", is_error=True
    )


async def test_domain_lists_apply_to_every_redirect_hop(base: str) -> None:
    port = base.rsplit(":", 1)[1]
    to_localhost = f"{base}/redirect?to=http://localhost:{port}/plain.txt"
    blocked = await fetch({**LOCAL, "blocked_domains": ["localhost"]}, urls=[to_localhost])
    assert blocked.is_error and "blocked by blocked_domains" in blocked.output
    followed = await fetch(LOCAL, urls=[f"{base}/redirect?to=/plain.txt"])
    assert followed.output.endswith("just text")
    allow_list = await fetch({**LOCAL, "allowed_domains": ["example.com"]}, urls=[base])
    assert allow_list.is_error and "not in allowed_domains" in allow_list.output


async def test_configured_headers_go_to_the_first_host_only(
    base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = base.rsplit(":", 1)[1]
    monkeypatch.setenv("NBS_FETCH_TOKEN", "s3cret")
    options = {**LOCAL, "headers": {"Authorization": "Bearer ${env.NBS_FETCH_TOKEN}"}}
    direct = await fetch(options, urls=[f"{base}/headers"])
    assert json.loads(direct.output.split("\n\n", 1)[1]) == {"authorization": "Bearer s3cret"}
    other_host = f"{base}/redirect?to=http://localhost:{port}/headers"
    moved = await fetch(options, urls=[other_host])
    assert json.loads(moved.output.split("\n\n", 1)[1]) == {"authorization": ""}


async def test_several_urls_answer_a_json_list(base: str) -> None:
    result = await fetch(LOCAL, urls=[f"{base}/plain.txt", f"{base}/missing", "ftp://x/y"])
    first, missing, ftp = json.loads(result.output)
    assert first["statusCode"] == 200 and first["body"] == "just text"
    assert first["contentType"] == "text/plain" and first["contentLength"] == 9
    assert missing["statusCode"] == 404 and missing["status"] == "404 Not Found"
    assert ftp["error"] == "only HTTP and HTTPS URLs are supported"


async def test_bad_arguments() -> None:
    assert (await fetch(LOCAL, urls=[])).is_error
    assert (await fetch(LOCAL, urls=["x"], format="pdf")).is_error
    result = await fetch(LOCAL, urls=["not a url"])
    assert result.is_error and "missing scheme or host" in result.output


@pytest.mark.parametrize(
    ("host", "pattern", "matches"),
    [
        ("example.com", "example.com", True),
        ("docs.example.com", "example.com", True),
        ("badexample.com", "example.com", False),
        ("example.com", ".example.com", False),
        ("a.example.com", "*.example.com", True),
        ("EXAMPLE.com.", "example.com", True),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("::ffff:169.254.169.254", "169.254.0.0/16", True),
        ("example.com", "10.0.0.0/8", False),
    ],
)
def test_domain_patterns(host: str, pattern: str, matches: bool) -> None:
    assert matches_domain(host, pattern) is matches
