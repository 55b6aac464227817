"""The HTTP transport: nbsession's REST + SSE API (SPEC 2-3) through httpx.

Error replies become the core's exception classes (by their SPEC ``code``); a connection that
cannot be made is ``ConnectionFailed`` naming the URL. SSE is read by ``SSEParser``, a small
reader of the format (the server writes one ``id:`` and one ``data:`` line per event, but any
valid SSE is understood), chunk by chunk, so a burst of events costs one parse per read.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from .errors import ConnectionFailed, NBSessionError, api_error
from .results import Event
from .transport import StreamDropped

REQUEST_TIMEOUT = 30.0
STREAM_READ_TIMEOUT = 120.0
"""Silence after which a stream counts as dropped; the server pings every 15 s by default."""


START_SEQ_HEADER = "X-Start-Seq"
"""The run stream's header naming the session's last seq before the turn (SPEC 2 extension)."""

_NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class SSEParser:
    """Splits an SSE byte stream into events; ``feed`` returns those a chunk completed."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[Event]:
        data = self._rest + chunk if self._rest else chunk
        if b"\r" in data:
            # CRLF or CR line ends; a CR at the very end may be half of a CRLF still to come.
            keep_cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                data = data[:-1] + b"\r"
        blocks = data.split(b"\n\n")
        self._rest = blocks.pop()
        events = []
        for block in blocks:
            # Our server's frames, "id: N\ndata: {json}", take the short path.
            head, found, payload = block.partition(b"\ndata: ")
            if found and head.startswith(b"id: ") and b"\n" not in payload:
                data = json.loads(payload)
                events.append(Event(int(head[4:]), data.get("type", ""), data))
                continue
            event = _parse_block(block)
            if event is not None:
                events.append(event)
        return events


def _parse_block(block: bytes) -> Event | None:
    """One event block in the general SSE syntax; comments and data-less blocks are None."""
    seq: int | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if name == b"data":
            data.append(value)
        elif name == b"id" and value.strip().isdigit():
            seq = int(value)
    if not data:
        return None
    return Event.parse(seq, b"\n".join(data))


class HTTPEventSource:
    """An open SSE response; the server ending it is None, a broken connection a drop."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        start = response.headers.get(START_SEQ_HEADER, "")
        self.start_seq = int(start) if start.isdigit() else None
        self._chunks = response.aiter_raw()
        self._parser = SSEParser()

    async def read_batch(self) -> list[Event] | None:
        while True:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                return None
            except (httpx.TransportError, httpx.StreamError) as exc:
                raise StreamDropped(str(exc) or type(exc).__name__) from exc
            events = self._parser.feed(chunk)
            if events:
                return events

    async def aclose(self) -> None:
        await self._response.aclose()


class HTTPTransport:
    """One server's API; ``url`` ends with ``/nbsession`` (the extension's base path)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        uds: str | None = None,
        timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        self.where = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.where + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout),
            # Small writes (a request's body after its head) must go out at once, not wait
            # for the server's delayed ACK (~40 ms per request otherwise).
            transport=httpx.AsyncHTTPTransport(uds=uds)
            if uds
            else httpx.AsyncHTTPTransport(socket_options=_NODELAY),
        )

    # -- plumbing -------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        session_id: str | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
                method,
                path,
                content=None if body is None else json.dumps(body),
                params=params,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{self.where}/{path}", _describe(exc)) from exc
        if response.status_code >= 400:
            raise self._error(response, session_id)
        return response

    async def _json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        return (await self._request(method, path, body, **kwargs)).json()

    def _error(self, response: httpx.Response, session_id: str | None) -> NBSessionError:
        try:
            payload = response.json()
            code, message = payload["code"], payload["message"]
        except (ValueError, KeyError, TypeError):
            code = "internal" if response.status_code >= 500 else "invalid_request"
            message = f"{response.status_code} {response.reason_phrase} from {response.url}"
        attributes: dict[str, Any] = {"url": str(response.url)}
        if session_id is not None:
            attributes["session_id"] = session_id
        if "Retry-After" in response.headers:
            attributes["retry_after"] = int(response.headers["Retry-After"] or 1)
        return api_error(code, response.status_code, message, **attributes)

    async def _stream(
        self, method: str, path: str, body: Any, headers: Mapping[str, str], session_id: str
    ) -> HTTPEventSource:
        request = self._http.build_request(
            method,
            path,
            content=None if body is None else json.dumps(body),
            headers={"Content-Type": "application/json", **headers},
            timeout=httpx.Timeout(REQUEST_TIMEOUT, read=STREAM_READ_TIMEOUT),
        )
        try:
            response = await self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"{self.where}/{path}", _describe(exc)) from exc
        if response.status_code >= 400:
            await response.aread()
            await response.aclose()
            raise self._error(response, session_id)
        return HTTPEventSource(response)

    # -- operations -----------------------------------------------------------------------

    async def ping(self) -> None:
        await self._request("GET", "api/ping")

    async def list_agents(self) -> list[dict[str, Any]]:
        return await self._json("GET", "api/agents")

    async def list_sessions(
        self, limit: int | None, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        params = {}
        if limit is not None:
            params["limit"] = str(limit)
        if before is not None:
            params["before"] = before
        response = await self._request("GET", "api/sessions", params=params or None)
        return response.json(), response.headers.get("X-Next-Cursor")

    async def create_session(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return await self._json("POST", "api/sessions", dict(template))

    async def import_session(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return await self._json("POST", "api/sessions/import", dict(data))

    async def delete_session(self, session_id: str) -> None:
        await self._request(
            "DELETE",
            f"api/sessions/{session_id}",
            params={"wait": "true"},
            session_id=session_id,
        )

    async def snapshot(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"api/sessions/{session_id}/snapshot", session_id=session_id)

    async def recovery(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"api/sessions/{session_id}/recovery", session_id=session_id)

    async def status(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"api/sessions/{session_id}/status", session_id=session_id)

    async def notebook(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"api/sessions/{session_id}/notebook", session_id=session_id)

    async def start_turn(
        self,
        session_id: str,
        agent: str,
        messages: Sequence[Mapping[str, Any]],
        model: str,
    ) -> HTTPEventSource:
        body: dict[str, Any] = {"messages": list(messages)}
        if model:
            body["model"] = model
        # Detached: the turn must survive a dropped connection (the SDK resumes on /events);
        # a turn is cancelled on purpose only, by cancel().
        path = f"api/sessions/{session_id}/agent/{agent}?detach=true"
        return await self._stream("POST", path, body, {}, session_id)

    async def events(self, session_id: str, since: int | None) -> HTTPEventSource:
        headers = {"Last-Event-ID": str(since)} if since is not None else {}
        return await self._stream(
            "GET", f"api/sessions/{session_id}/events", None, headers, session_id
        )

    async def cancel(self, session_id: str) -> None:
        await self._request("POST", f"api/sessions/{session_id}/cancel", session_id=session_id)

    async def resume(self, session_id: str, confirmation: str, reason: str, tool_name: str) -> None:
        body: dict[str, Any] = {"confirmation": confirmation}
        if reason:
            body["reason"] = reason
        if tool_name:
            body["tool_name"] = tool_name
        await self._request(
            "POST", f"api/sessions/{session_id}/resume", body, session_id=session_id
        )

    async def elicitation(
        self,
        session_id: str,
        action: str,
        content: Mapping[str, Any] | None,
        elicitation_id: str,
    ) -> None:
        body: dict[str, Any] = {"action": action}
        if content is not None:
            body["content"] = dict(content)
        if elicitation_id:
            body["elicitation_id"] = elicitation_id
        await self._request(
            "POST", f"api/sessions/{session_id}/elicitation", body, session_id=session_id
        )

    async def steer(self, session_id: str, messages: Sequence[Mapping[str, Any]]) -> None:
        await self._request(
            "POST",
            f"api/sessions/{session_id}/steer",
            {"messages": list(messages)},
            session_id=session_id,
        )

    async def follow_up(
        self, session_id: str, messages: Sequence[Mapping[str, Any]], idempotency_key: str
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return await self._json(
            "POST",
            f"api/sessions/{session_id}/followup",
            {"messages": list(messages)},
            headers=headers,
            session_id=session_id,
        )

    async def models(self, session_id: str) -> dict[str, Any]:
        return await self._json("GET", f"api/sessions/{session_id}/models", session_id=session_id)

    async def set_title(self, session_id: str, title: str) -> None:
        await self._request(
            "PATCH", f"api/sessions/{session_id}/title", {"title": title}, session_id=session_id
        )

    async def set_starred(self, session_id: str, starred: bool) -> None:
        await self._request(
            "PATCH",
            f"api/sessions/{session_id}/starred",
            {"starred": starred},
            session_id=session_id,
        )

    async def aclose(self) -> None:
        await self._http.aclose()


def _describe(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__
