"""The base handler: authentication, body limits, JSON in and out, errors as ``{code, message}``.

Handlers built on it stay thin: they parse with ``body()`` / the ``*_arg`` helpers, call the
manager and ``reply()``. Any exception ends as a JSON error through ``write_error``: named
errors with their status and sentence, anything else as a logged 500 with no details sent.

Request bodies are streamed (``tornado.web.stream_request_body``), so nothing is read before
``prepare()`` has authenticated the request and checked its declared length: a client without
a token, or one announcing too large a body, is answered right after its headers. The body
then arrives through ``data_received``, capped at ``NBSessionApp.max_request_bytes``, and is
put in ``request.body`` once complete, where the parsing helpers read it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import math
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from jupyter_core.utils import ensure_async
from jupyter_server.auth import User
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.prometheus.log_functions import prometheus_log_method
from pydantic import BaseModel, ValidationError
from tornado.web import HTTPError, stream_request_body

from ..errors import InvalidRequest, NBSessionError, RequestTooLarge, Unauthorized
from ..notebook import json_cut_short
from .errors import ErrorReply, error_reply

if TYPE_CHECKING:
    from ..manager import SessionManager
    from .app import NBSessionApp
    from .routes import Operation, Route

BodyT = TypeVar("BodyT", bound=BaseModel)

MAX_WAIT = 300.0
"""Every wait or timeout a client asks for is capped at five minutes (docker-agent's bound)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
DURATION_PATTERN = r"^(?:\d+(?:\.\d+)?|(?:\d+(?:\.\d+)?(?:ms|s|m|h))+)$"
"""What ``parse_duration`` accepts, as the OpenAPI document declares it."""
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_AUTH_SCHEMES = frozenset({"bearer", "token"})

MAX_JSON_DEPTH = 64
"""Request JSON nests at most this deep: far below what any parser in the chain (Python's
recursion limit, pydantic's JSON reader when the store reads an item back) refuses."""
MAX_INT_DIGITS = 100
INT64_MAX = 2**63 - 1
_INT64_DIGITS = len(str(INT64_MAX))
# A \u escape of a UTF-16 surrogate: the only way a lone one gets into decoded UTF-8 text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


MAX_COUNT = 10_000
"""The largest count a query parameter takes (a page of the session list)."""


def parse_duration(text: str, name: str) -> float:
    """Seconds from ``30s``, ``5m``, ``500ms``, ``1m30s`` or bare seconds, capped at 5 minutes.

    The Go-style suffixes are what docker-agent clients send; ``name`` is the parameter the
    400 names when ``text`` is none of these (``DURATION_PATTERN`` says exactly which).
    """
    if not re.fullmatch(DURATION_PATTERN, text):
        shown = text if len(text) <= 40 else f"{text[:37]}..."
        raise InvalidRequest(
            f"{name} must be a duration like 10s, 5m or 500ms, got {shown!r}.", field=name
        )
    parts = _DURATION.findall(text)
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts) if parts else float(text)
    return min(seconds, MAX_WAIT)  # a long digit string is a large float, never an error


def _reject_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON; Python's parser accepts them."""
    raise InvalidRequest(f"The body is not valid JSON: {name} is not a JSON number.", field="body")


def _finite_float(text: str) -> float:
    """A JSON number too large for a float (``1e999``) would read as infinity: refused."""
    value = float(text)
    if not math.isfinite(value):
        raise InvalidRequest(
            f"The body has a number too large for JSON: {text[:40]}.", field="body"
        )
    return value


def _bounded_int(text: str) -> int:
    """An integer literal of at most ``MAX_INT_DIGITS`` digits: converting longer ones costs
    quadratic time (Python refuses them past 4300 digits). Typed fields check their own range
    (token counts are 64-bit); free-form JSON may hold any integer that reads back."""
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise InvalidRequest(
            f"The body has an integer of {len(text)} characters; at most {MAX_INT_DIGITS} "
            "digits are accepted.",
            field="body",
        )
    return int(text)


def parse_json(body: bytes) -> Any:
    """Decode a request body, refusing what no session may hold (SPEC 2: a 400, never a 500).

    The one gate every JSON body passes: text that is not UTF-8, lone surrogates (``\\ud800``
    has no UTF-8 form, so no store or client could read it back), ``NaN``, infinities and
    integers of thousands of digits, and nesting deeper than ``MAX_JSON_DEPTH``. The walk
    that finds surrogates and depth runs only when a cheap scan of the text says it could
    find something.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The body is not UTF-8 text.", field="body") from None
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        if json_cut_short(text, exc):
            raise InvalidRequest(
                f"The body is truncated: its JSON stops after {len(text)} characters.",
                field="body",
            ) from None
        raise InvalidRequest(f"The body is not valid JSON: {exc}.", field="body") from None
    except ValueError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.", field="body") from None
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(text):
        _check_tree(value)
    return value


def _check_tree(value: Any) -> None:
    """Depth and Unicode of a decoded document, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            if isinstance(node, dict):
                for key in node:
                    _check_text(key)
                node = node.values()
            stack.extend((child, depth + 1) for child in node)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            raise InvalidRequest(
                "The body is not valid Unicode: it has a lone surrogate (such as \\ud800).",
                field="body",
            ) from None


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"The body is nested more than {MAX_JSON_DEPTH} levels deep.", field="body"
    )


def dump_json(payload: Any) -> str:
    """Reply JSON. A non-finite float would make invalid JSON for every client: it raises
    ``ValueError`` instead, which ends as a logged 500 (request bodies never carry one)."""
    return json.dumps(payload, allow_nan=False)


def _field_name(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "content")`` -> ``messages[0].content``, as the manager names fields."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else part
    return name or "body"


def _seq(value: str, source: str) -> int:
    """A sequence number: ASCII digits ("²" is a digit to ``str.isdigit``) within 64 bits,
    a 5000-digit string refused before conversion."""
    if not (value.isascii() and value.isdigit()) or (
        len(value) > _INT64_DIGITS or int(value) > INT64_MAX
    ):
        raise InvalidRequest(f"{source} must be a non-negative 64-bit integer.", field=source)
    return int(value)


def _declared_length(value: str) -> int | None:
    """A ``Content-Length`` of ASCII digits, else None (tornado refuses the malformed ones).

    One too long to be a 64-bit length is malformed too, refused before Python converts it.
    """
    if not (value.isascii() and value.isdigit()):
        return None
    if len(value) > _INT64_DIGITS or int(value) > INT64_MAX:
        raise InvalidRequest("Content-Length is not a valid length.", field="Content-Length")
    return int(value)


@stream_request_body
class NBSessionHandler(ExtensionHandlerMixin, APIHandler):
    """What every nbsession route shares; the route it serves comes from the route table."""

    route: Route

    def initialize(self, name: str, route: Route) -> None:  # type: ignore[override]
        super().initialize(name)
        self.route = route
        self.client_gone = asyncio.Event()
        self._received = bytearray()

    @property
    def app(self) -> NBSessionApp:
        return self.extensionapp  # type: ignore[return-value]

    @property
    def operation(self) -> Operation:
        return self.route.operations[self.request.method or ""]

    async def manager(self) -> SessionManager:
        """The server's manager, opened on first use (tests never run the post-start hook)."""
        return await self.app.started_manager()

    def manager_unstarted(self) -> SessionManager:
        """The manager without opening its store, for routes that only read agent sources:
        they keep working while the session store is down."""
        return self.app.manager

    # -- authentication and limits --------------------------------------------------------

    async def prepare(self) -> None:  # type: ignore[override]
        """Authenticate, then refuse oversized bodies, before jupyter-server's own checks.

        This runs after the headers and before any body byte is read (the body is streamed),
        so a 401 or a 413 for a declared length costs no buffering; answering here closes the
        connection instead of reading the body. jupyter-server would answer 403 to a missing
        credential; the contract is a 401 with ``WWW-Authenticate: Bearer``, so the decision
        is made here and jupyter-server then sees an authenticated user. Its XSRF check,
        which tornado's own pre-``prepare`` call skips for lack of a user, runs in its
        ``prepare`` for cookie-authenticated writes, from the header or the query (a form
        field in the body is not read: the body has not arrived).
        """
        method = self.request.method or ""
        if method != "OPTIONS" and not self.route.open:
            await self._authenticate()
        if self.route.operations and method not in (*self.route.operations, "OPTIONS"):
            # Before jupyter-server's checks, which would answer a write's lack of XSRF token.
            raise HTTPError(405)
        limit = self.app.max_request_bytes
        declared = _declared_length(self.request.headers.get("Content-Length", ""))
        if declared is not None and declared > limit:
            raise RequestTooLarge(f"The request body is larger than {limit} bytes.")
        # Registered before tornado awaits the body, so it runs before the method does.
        self._body_future.add_done_callback(self._body_complete)
        await super().prepare()

    async def _authenticate(self) -> None:
        scheme, _, credential = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in _AUTH_SCHEMES:
            if not self._known_token(credential.strip()):
                raise Unauthorized("The token in the Authorization header is not valid.")
            # Header credentials cannot be forged cross-site, so jupyter-server's XSRF and
            # origin checks are skipped for them, as jupyter-server does for its own token.
            self._token_authenticated = True
            self.current_user = self._jupyter_current_user = User(
                username="nbsession-api", name="nbsession API client"
            )
            return
        # A browser's login cookie (or ?token=): only when the server authenticates at all;
        # with auth disabled every request would "log in" as an anonymous user.
        if self.identity_provider.auth_enabled:
            user = await ensure_async(self.identity_provider.get_user(self))
            if user is not None:
                self.current_user = self._jupyter_current_user = user
                return
        raise Unauthorized("Authentication required: send Authorization: Bearer <token>.")

    def _known_token(self, credential: str) -> bool:
        """Constant-time match against the extension's token and the server's token."""
        given = credential.encode()
        matches = [
            hmac.compare_digest(given, token.encode())
            for token in (self.app.auth_token, self.identity_provider.token)
            if token
        ]
        return any(matches)

    # -- the streamed body ---------------------------------------------------------------

    @property
    def _body_future(self) -> asyncio.Future[None]:
        """Tornado's signal that the streamed body is complete (set before the method runs)."""
        return self.request._body_future

    def data_received(self, chunk: bytes) -> None:
        """Keep the body up to the limit; past it (a chunked body has no declared length),
        answer 413 at once. Tornado then discards the rest and closes the connection."""
        if self._finished:
            return
        limit = self.app.max_request_bytes
        if len(self._received) + len(chunk) > limit:
            self._received = bytearray()
            error = RequestTooLarge(f"The request body is larger than {limit} bytes.")
            self.send_error(413, exc_info=(RequestTooLarge, error, None))
            return
        self._received += chunk

    def _body_complete(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is None:
            self.request.body = bytes(self._received)
        self._received = bytearray()

    # -- parsing --------------------------------------------------------------------------

    def json_value(self, required: bool = True) -> Any:
        """The body as JSON (``None`` when empty and not required)."""
        if not self.request.body.strip():
            if required:
                raise InvalidRequest("A JSON body is required.", field="body")
            return None
        return parse_json(self.request.body)

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, for bodies passed through to the manager as they are."""
        value = self.json_value()
        if not isinstance(value, dict):
            raise InvalidRequest("The body must be a JSON object.", field="body")
        return value

    def body(self, model: type[BodyT], value: Any = None) -> BodyT:
        """Validate the body (or ``value``, an adapted body) against the route's request model.

        The model must be the one the route table documents for this method, so the OpenAPI
        document and the validation cannot diverge.
        """
        if model is not self.operation.body:
            raise TypeError(f"{type(self).__name__} validates {model.__name__}, not its route's.")
        if value is None:
            value = self.json_value()
        try:  # strict all the way down: a nested model's lax mode would take "yes" for true
            return model.model_validate(value, strict=True)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            field = _field_name(first["loc"])
            raise InvalidRequest(f"{field}: {first['msg']}.", field=field) from None

    def _query(self, name: str) -> str | None:
        if name not in self.operation.query_names:
            raise TypeError(f"{type(self).__name__} reads ?{name}, which its route omits.")
        # Not stripped: a value is what the document's schema describes, spaces included.
        return self.get_query_argument(name, None, strip=False)

    @overload
    def duration_arg(self, name: str, default: float) -> float: ...

    @overload
    def duration_arg(self, name: str, default: None) -> float | None: ...

    def duration_arg(self, name: str, default: float | None) -> float | None:
        value = self._query(name)
        return default if value is None else parse_duration(value, name)

    def flag_arg(self, name: str) -> bool:
        value = self._query(name)
        if value is None:
            return False
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise InvalidRequest(f"{name} must be true or false, got {value!r}.", field=name)

    def count_arg(self, name: str) -> int | None:
        """``?name=`` as a count from 1 to ``MAX_COUNT``; None when absent."""
        value = self._query(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit() and len(value) <= 9) or not (
            1 <= int(value) <= MAX_COUNT
        ):
            raise InvalidRequest(f"{name} must be an integer from 1 to {MAX_COUNT}.", field=name)
        return int(value)

    def seq_arg(self, name: str, header: str) -> int | None:
        """A resume point from ``?name=`` or, when absent, the ``header`` (SPEC 3).

        Both are checked when both are sent: a malformed one is a 400 even where the other wins.
        """
        query = self._query(name)
        sent = self.request.headers.get(header)
        from_header = None if sent is None else _seq(sent, header)
        return from_header if query is None else _seq(query, name)

    # -- replies --------------------------------------------------------------------------

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(dump_json(payload))

    def send_reply(self, reply: ErrorReply) -> None:
        self.set_status(reply.status)
        for header, value in reply.headers:
            self.set_header(header, value)
        if not self._body_future.done():
            # An answer before the whole body (a 401, a 413): tornado closes the connection
            # rather than read the rest, and the client must know not to reuse it.
            self.set_header("Connection", "close")
        self.finish(dump_json(reply.body()))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error is ``{"code", "message"}``; tracebacks stay in the server log.

        A 405 says which methods the path has (``Allow``, RFC 9110): the route's own and
        OPTIONS, which jupyter-server answers on every API path.
        """
        exc_info = kwargs.get("exc_info")
        reply = error_reply(exc_info[1] if exc_info else None, status_code)
        if reply.status == 405:
            allowed = ", ".join([*self.route.operations, "OPTIONS"])
            reply = dataclasses.replace(reply, headers=(*reply.headers, ("Allow", allowed)))
        self.send_reply(reply)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Expected errors are answered, not logged (the access log has the status line).

        Tornado's own version logs the full URI, which may carry ``?token=``: only the path
        is logged here.
        """
        if isinstance(value, (NBSessionError, HTTPError)):
            return
        self.log.error(
            "nbsession: unhandled error in %s %s",
            self.request.method,
            self.request.path,
            exc_info=(typ, value, tb),  # type: ignore[arg-type]
        )

    def _log(self) -> None:
        """The access-log line (tornado's per-handler hook, kept for overriding).

        jupyter-server logs every 5xx at ERROR with a dump of request headers. Our 503 is a
        wait that timed out (or ``/ready`` saying no): the answer the client asked for, so it
        is one WARNING line, like a client error, with the path only. Other statuses go to
        jupyter-server's log function as usual.
        """
        if self.get_status() != 503:
            super()._log()
            return
        self.log.warning(
            "503 %s %s (%s) %.2fms",
            self.request.method,
            self.request.path,
            self.request.remote_ip,
            1000.0 * self.request.request_time(),
        )
        if self.serverapp.record_http_request_metrics:
            prometheus_log_method(self)

    def on_connection_close(self) -> None:
        """Streams watch this to stop writing (and, for a run, to cancel the turn)."""
        self.client_gone.set()
        super().on_connection_close()
