"""The ``lsp`` toolset: code intelligence from a language server spoken to over stdio
(docker-agent's tool names, arguments and answers).

``command`` and ``args`` start the server (``env`` added to the server's environment, with
``$VAR`` and ``${env.VAR}`` expanded), in ``working_dir`` (relative to the session's working
directory, which is the default) and with that directory as the workspace root. The server
starts at the beginning of the first turn that needs it, like an MCP server (one that cannot
start is a ``warning``); one that dies gives its call an error result and starts again at the
next turn. Only the tools the server advertises a capability for are offered.

Files are named by path (absolute, or relative to the workspace root) and must lie inside the
root; positions are 1-based, as the model sees them in files. A file is opened on the server
when a tool first names it, and its content is sent again whenever it changed on disk, so the
answers follow edits made by other tools. ``file_types`` (extensions) limits the files given
to the server. ``lsp_rename`` and ``lsp_format`` change files, so they ask for approval; the
others are read-only. docker-agent's call and type hierarchy, implementations, code actions,
signature help and inlay hints tools are not offered (yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from .base import ArgsT, Tool, ToolContext, ToolResult, Toolset, ToolsetEnv, expand_env
from .filesystem import PathEscape, resolve_inside

log = logging.getLogger("nbsession.tools.lsp")

START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 60.0
DIAGNOSTICS_WAIT = 2.0  # seconds a fresh file waits for the server's first diagnostics
_CLOSE_TIMEOUT = 5.0

SYMBOL_KINDS = (
    "File",
    "Module",
    "Namespace",
    "Package",
    "Class",
    "Method",
    "Property",
    "Field",
    "Constructor",
    "Enum",
    "Interface",
    "Function",
    "Variable",
    "Constant",
    "String",
    "Number",
    "Boolean",
    "Array",
    "Object",
    "Key",
    "Null",
    "EnumMember",
    "Struct",
    "Event",
    "Operator",
    "TypeParameter",
)
SEVERITIES = {1: "Error", 2: "Warning", 3: "Info", 4: "Hint"}
LANGUAGES = {
    ".py": "python",
    ".pyi": "python",
    ".go": "go",
    ".js": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".tsx": "typescriptreact",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cpp": "cpp",
    ".cc": "cpp",
    ".hpp": "cpp",
    ".java": "java",
    ".rb": "ruby",
    ".php": "php",
    ".cs": "csharp",
    ".kt": "kotlin",
    ".swift": "swift",
    ".lua": "lua",
    ".sh": "shellscript",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".md": "markdown",
    ".html": "html",
    ".css": "css",
}


class LSPOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    command: str = Field(min_length=1, description="The language server's executable")
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    file_types: list[str] = Field(default_factory=list, description="Extensions it handles")
    working_dir: str = ""


class NoArgs(BaseModel):
    pass


class FileArgs(BaseModel):
    file: str = Field(description="Absolute path to the source file")


class PositionArgs(FileArgs):
    line: int = Field(ge=1, description="Line number (1-based)")
    character: int = Field(ge=1, description="Character position on the line (1-based)")


class ReferencesArgs(PositionArgs):
    include_declaration: bool = Field(
        True, description="Include the declaration in results (default: true)"
    )


class WorkspaceSymbolsArgs(BaseModel):
    query: str = Field(description="Search query to filter symbols (supports fuzzy matching)")


class RenameArgs(PositionArgs):
    new_name: str = Field(min_length=1, description="The new name for the symbol")


class LSPError(Exception):
    """The server answered a request with an error, or is gone."""


class _Refused(Exception):
    """A call the toolset will not make (a file outside the root, of a type not handled)."""


class LSPToolset(Toolset):
    type: ClassVar[str] = "lsp"
    options_model = LSPOptions

    def __init__(
        self, options: Mapping[str, Any] | None = None, env: ToolsetEnv | None = None
    ) -> None:
        self._options = LSPOptions.model_validate(dict(options or {}))
        base = (env or ToolsetEnv()).working_dir or os.getcwd()
        self._root = os.path.realpath(os.path.join(base, self._options.working_dir))
        self._server: _Server | None = None
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._server is not None and self._server.alive

    async def start(self) -> None:
        """Start the server and do the initialize handshake; raises when that fails."""
        async with self._lock:
            if self.started:
                return
            await self.close()
            environment = {**os.environ}
            environment.update({k: expand_env(v) for k, v in self._options.env.items()})
            command = [self._options.command, *self._options.args]
            if not await asyncio.to_thread(os.path.isdir, self._root):
                raise RuntimeError(f"the lsp working_dir {self._root} is not a directory")
            server = _Server(command, self._root, environment)
            try:
                await asyncio.wait_for(server.open(), START_TIMEOUT)
            except (OSError, LSPError, asyncio.TimeoutError) as exc:
                await server.close()
                problem = f"cannot start the language server {command[0]}: {exc}"
                if server.stderr_tail.strip():
                    problem += f" (its stderr: {server.stderr_tail.strip()})"
                raise RuntimeError(problem) from None
            self._server = server

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def tools(self) -> list[Tool]:
        server = self._server
        if server is None:
            return []
        capabilities = server.capabilities
        tools: list[Tool] = []
        for name, title, description, capability, args, handler, read_only in _CATALOGUE:
            if capability and not _enabled(capabilities.get(capability)):
                continue
            tools.append(self._tool(name, title, description, args, handler, read_only))
        return tools

    def _tool(
        self,
        name: str,
        title: str,
        description: str,
        args: type[ArgsT],
        handler: Callable[[LSPToolset, _Server, ArgsT], Awaitable[str]],
        read_only: bool,
    ) -> Tool:
        async def run(parsed: ArgsT, _ctx: ToolContext) -> ToolResult | str:
            server = self._server
            if server is None or not server.alive:
                return ToolResult(
                    "The language server is not running; it starts again next turn.",
                    is_error=True,
                )
            return await handler(self, server, parsed)

        refused = (_Refused, LSPError, OSError, asyncio.TimeoutError)
        return self.function_tool(
            name, description, args, run, read_only=read_only, title=title, refused=refused
        )

    def _path(self, file: str) -> str:
        """The real path of ``file``, inside the root and of a handled type."""
        try:
            path = resolve_inside(self._root, file)
        except PathEscape as exc:
            raise _Refused(str(exc)) from None
        types = self._options.file_types
        if types:
            extension = os.path.splitext(path)[1].lower()
            if extension not in {"." + t.lower().lstrip(".") for t in types}:
                raise _Refused(f"LSP does not handle file type: {extension or path}")
        return path

    async def _document(self, server: _Server, file: str) -> str:
        """The file's URI, after the server has its current content."""
        path = self._path(file)
        text = await asyncio.to_thread(Path(path).read_text, "utf-8", "replace")
        return await server.sync(path, text)

    # The tools. Each returns the text the model reads, docker-agent's wording.

    async def workspace(self, server: _Server, _args: NoArgs) -> str:
        info = server.server_info
        lines = ["Workspace Information:", f"- Root: {self._root}"]
        lines.append(f"- LSP Command: {self._options.command}")
        if info.get("name"):
            lines.append(f"- Server: {info['name']} {info.get('version', '')}".rstrip())
        types = ", ".join(self._options.file_types) or "all"
        lines.extend([f"- File types: {types}", "", "Available Capabilities:"])
        for label, capability in _CAPABILITY_LABELS:
            enabled = _enabled(server.capabilities.get(capability))
            lines.append(f"- {label}: {'Yes' if enabled else 'No'}")
        return "\n".join(lines)

    async def hover(self, server: _Server, args: PositionArgs) -> str:
        result = await server.request("textDocument/hover", await self._at(server, args))
        if not result:
            return "No information available at this position"
        return _hover_text(result.get("contents"))

    async def definition(self, server: _Server, args: PositionArgs) -> str:
        result = await server.request("textDocument/definition", await self._at(server, args))
        return _locations(result) if result else "No definition found at this position"

    async def references(self, server: _Server, args: ReferencesArgs) -> str:
        params = await self._at(server, args)
        params["context"] = {"includeDeclaration": args.include_declaration}
        result = await server.request("textDocument/references", params)
        return _locations(result) if result else "No references found"

    async def document_symbols(self, server: _Server, args: FileArgs) -> str:
        uri = await self._document(server, args.file)
        result = await server.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
        return _symbols(result) if result else "No symbols found in file"

    async def workspace_symbols(self, server: _Server, args: WorkspaceSymbolsArgs) -> str:
        result = await server.request("workspace/symbol", {"query": args.query})
        if result:
            return _symbols(result)
        if not args.query:
            return "No symbols found in workspace"
        return f"No symbols found matching '{args.query}'"

    async def diagnostics(self, server: _Server, args: FileArgs) -> str:
        uri = await self._document(server, args.file)
        found = await server.diagnostics(uri, DIAGNOSTICS_WAIT)
        if not found:
            return f"No diagnostics for {args.file}"
        lines = [f"Diagnostics for {args.file}:"]
        for item in found:
            severity = SEVERITIES.get(item.get("severity", 0), "Unknown")
            line = item.get("range", {}).get("start", {}).get("line", 0) + 1
            lines.append(f"- [{severity}] Line {line}: {item.get('message', '')}")
        return "\n".join(lines)

    async def rename(self, server: _Server, args: RenameArgs) -> str:
        params = await self._at(server, args)
        params["newName"] = args.new_name
        edit = await server.request("textDocument/rename", params)
        if not edit:
            raise _Refused("Cannot rename symbol at this position")
        changes: dict[str, list[Mapping[str, Any]]] = dict(edit.get("changes") or {})
        for document in edit.get("documentChanges") or []:
            if "textDocument" in document:
                changes.setdefault(document["textDocument"]["uri"], []).extend(document["edits"])
        paths = {uri: self._path(_uri_path(uri)) for uri in changes}  # all inside, or none
        count = 0
        for uri, edits in changes.items():
            await self._apply(server, paths[uri], edits)
            count += len(edits)
        files = "\n".join(f"- {path}" for path in paths.values())
        return f"Renamed to '{args.new_name}': {count} edit(s) in {len(paths)} file(s):\n{files}"

    async def format(self, server: _Server, args: FileArgs) -> str:
        uri = await self._document(server, args.file)
        options = {"tabSize": 4, "insertSpaces": True}
        edits = await server.request(
            "textDocument/formatting", {"textDocument": {"uri": uri}, "options": options}
        )
        if not edits:
            return f"No formatting changes needed for {args.file}"
        await self._apply(server, self._path(args.file), edits)
        return f"Formatted {args.file}\nApplied {len(edits)} formatting change(s)"

    async def _at(self, server: _Server, args: PositionArgs) -> dict[str, Any]:
        uri = await self._document(server, args.file)
        position = {"line": args.line - 1, "character": args.character - 1}
        return {"textDocument": {"uri": uri}, "position": position}

    async def _apply(self, server: _Server, path: str, edits: list[Mapping[str, Any]]) -> None:
        """Apply the server's text edits to ``path`` on disk, and tell the server."""
        before = await asyncio.to_thread(Path(path).read_text, "utf-8")
        after = _edited(before, edits)
        await asyncio.to_thread(Path(path).write_text, after, "utf-8")
        await server.sync(path, after)


class _Server:
    """One language server process and its JSON-RPC stream (Content-Length framing)."""

    def __init__(self, command: list[str], root: str, env: dict[str, str]) -> None:
        self._command = command
        self._root = root
        self._env = env
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 0
        self._write_lock = asyncio.Lock()
        self._open: dict[str, tuple[int, str]] = {}  # uri -> (version, text sent)
        self._diagnostics: dict[str, list[dict[str, Any]]] = {}
        self._published = asyncio.Condition()
        self._stderr_reader: asyncio.Task[None] | None = None
        self.stderr_tail = ""  # the end of what the server wrote to stderr, for messages
        self.capabilities: dict[str, Any] = {}
        self.server_info: dict[str, Any] = {}

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and self._reader is not None

    async def open(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            *self._command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self._root,
            env=self._env,
        )
        self._reader = asyncio.create_task(self._read())
        self._stderr_reader = asyncio.create_task(self._drain_stderr())
        result = await self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": Path(self._root).as_uri(),
                "workspaceFolders": [{"uri": Path(self._root).as_uri(), "name": "root"}],
                "capabilities": {
                    "textDocument": {
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "documentSymbol": {"hierarchicalDocumentSymbolSupport": True},
                        "publishDiagnostics": {},
                        "synchronization": {"didSave": False},
                    },
                    "workspace": {"symbol": {}, "workspaceEdit": {"documentChanges": True}},
                },
            },
        )
        self.capabilities = dict(result.get("capabilities") or {})
        self.server_info = dict(result.get("serverInfo") or {})
        await self._send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    async def request(self, method: str, params: Mapping[str, Any]) -> Any:
        if not self.alive:
            raise LSPError("The language server stopped.")
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
            await self._send(message)
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        finally:
            self._pending.pop(request_id, None)

    async def sync(self, path: str, text: str) -> str:
        """Make the server's copy of ``path`` ``text`` (open it, or send the change)."""
        uri = Path(path).as_uri()
        known = self._open.get(uri)
        if known is None:
            language = LANGUAGES.get(os.path.splitext(path)[1].lower(), "plaintext")
            document = {"uri": uri, "languageId": language, "version": 1, "text": text}
            self._diagnostics.pop(uri, None)
            await self._notify("textDocument/didOpen", {"textDocument": document})
            self._open[uri] = (1, text)
        elif known[1] != text:
            version = known[0] + 1
            self._diagnostics.pop(uri, None)
            await self._notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": version},
                    "contentChanges": [{"text": text}],
                },
            )
            self._open[uri] = (version, text)
        return uri

    async def diagnostics(self, uri: str, wait: float) -> list[dict[str, Any]]:
        """The server's latest diagnostics for ``uri``, waiting up to ``wait`` seconds for the
        first ones after the file was opened or changed."""
        async with self._published:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(
                    self._published.wait_for(lambda: uri in self._diagnostics), wait
                )
            return list(self._diagnostics.get(uri, []))

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._shutdown(), _CLOSE_TIMEOUT)
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
        if self._stderr_reader is not None:  # what the server said last, unless it hangs on
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr_reader), _CLOSE_TIMEOUT)
        for task in (self._reader, self._stderr_reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._stderr_reader = None

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while chunk := await self._proc.stderr.read(4096):
            self.stderr_tail = (self.stderr_tail + chunk.decode("utf-8", "replace"))[-1000:]

    async def _shutdown(self) -> None:
        await self.request("shutdown", {})
        await self._notify("exit", {})

    async def _notify(self, method: str, params: Mapping[str, Any]) -> None:
        await self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _send(self, message: Mapping[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise LSPError("The language server stopped.")
        body = json.dumps(message).encode()
        async with self._write_lock:
            try:
                proc.stdin.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise LSPError(f"The language server stopped: {exc}") from None

    async def _read(self) -> None:
        """Read messages until the server's output ends: answers resolve their requests,
        diagnostics are kept, and requests from the server get an empty answer."""
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while True:
                length = 0
                while True:
                    line = await stdout.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.decode("ascii", "replace").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                await self._dispatch(json.loads(await stdout.readexactly(length)))
        except (asyncio.IncompleteReadError, ValueError, OSError) as exc:
            log.warning("language server %s: unreadable output: %s", self._command[0], exc)
        finally:
            self._reader = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(LSPError("The language server stopped."))

    async def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            future = self._pending.get(message.get("id", -1))
            if future is not None and not future.done():
                error = message.get("error")
                if error:
                    code, text = error.get("code"), error.get("message")
                    future.set_exception(LSPError(f"LSP error {code}: {text}"))
                else:
                    future.set_result(message.get("result"))
        elif "id" in message:  # a request from the server (configuration, progress...)
            await self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
        elif message["method"] == "textDocument/publishDiagnostics":
            params = message.get("params") or {}
            async with self._published:
                self._diagnostics[params.get("uri", "")] = list(params.get("diagnostics") or [])
                self._published.notify_all()


def _enabled(capability: Any) -> bool:
    return capability is not None and capability is not False


def _uri_path(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme != "file":
        raise _Refused(f"not a file URI: {uri!r}")
    return unquote(parts.path)


def _position(item: Mapping[str, Any]) -> tuple[int, int]:
    start = item.get("range", item.get("targetSelectionRange", {})).get("start", {})
    return start.get("line", 0) + 1, start.get("character", 0) + 1


def _locations(result: Any) -> str:
    items = result if isinstance(result, list) else [result]
    lines = []
    for item in items:
        uri = item.get("uri") or item.get("targetUri", "")
        line, character = _position(item)
        lines.append(f"- {_display(uri)}:{line}:{character}")
    if len(lines) == 1 and not isinstance(result, list):
        return lines[0]
    return f"Found {len(lines)} location(s):\n" + "\n".join(lines)


def _display(uri: str) -> str:
    try:
        return _uri_path(uri)
    except _Refused:
        return uri


def _kind(kind: int) -> str:
    return SYMBOL_KINDS[kind - 1] if 1 <= kind <= len(SYMBOL_KINDS) else f"Kind{kind}"


def _symbols(result: list[dict[str, Any]]) -> str:
    lines: list[str] = []

    def nested(symbols: list[dict[str, Any]], indent: str) -> None:
        for symbol in symbols:
            line = symbol["range"]["start"]["line"] + 1
            lines.append(f"{indent}- {_kind(symbol.get('kind', 0))} {symbol['name']} (line {line})")
            nested(symbol.get("children") or [], indent + "  ")

    if "location" not in result[0]:  # DocumentSymbol: a tree
        nested(result, "")
        return "\n".join(lines)
    for symbol in result:  # SymbolInformation: a flat list with locations
        location = symbol["location"]
        line = location["range"]["start"]["line"] + 1
        where = f"{_display(location['uri'])}:{line}"
        text = f"- {_kind(symbol.get('kind', 0))} {symbol['name']} ({where})"
        if symbol.get("containerName"):
            text += f" [in {symbol['containerName']}]"
        lines.append(text)
    return "\n".join(lines)


def _hover_text(contents: Any) -> str:
    if isinstance(contents, str):
        return contents
    if isinstance(contents, dict):
        value = contents.get("value")
        return value if isinstance(value, str) else json.dumps(contents)
    if isinstance(contents, list):
        return "\n\n".join(_hover_text(item) for item in contents)
    return json.dumps(contents)


def _edited(text: str, edits: list[Mapping[str, Any]]) -> str:
    """``text`` with LSP text edits applied (positions counted in characters, from the end so
    earlier offsets stay valid)."""
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)

    def offset(position: Mapping[str, int]) -> int:
        line = position["line"]
        if line >= len(starts):
            return len(text)
        end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
        return min(starts[line] + position["character"], end)

    spans = sorted(
        ((offset(e["range"]["start"]), offset(e["range"]["end"]), e["newText"]) for e in edits),
        reverse=True,
    )
    for start, end, new in spans:
        text = text[:start] + new + text[end:]
    return text


# name, title, description, capability ("" = always), arguments, handler, read-only
_CATALOGUE: tuple[tuple[str, str, str, str, type[BaseModel], Any, bool], ...] = (
    (
        "lsp_workspace",
        "Get Workspace Info",
        "Get workspace info and LSP server capabilities. Use at session start to discover "
        "available features. Takes no arguments.",
        "",
        NoArgs,
        LSPToolset.workspace,
        True,
    ),
    (
        "lsp_hover",
        "Get Symbol Info",
        "Get type signature, documentation, and hover info for a symbol at a given position.",
        "hoverProvider",
        PositionArgs,
        LSPToolset.hover,
        True,
    ),
    (
        "lsp_definition",
        "Go to Definition",
        "Find the definition location of a symbol. Returns file path and line number.",
        "definitionProvider",
        PositionArgs,
        LSPToolset.definition,
        True,
    ),
    (
        "lsp_references",
        "Find References",
        "Find all references to a symbol across the codebase. IMPORTANT: You MUST use this "
        "before modifying any symbol definition. Set include_declaration to false to exclude "
        "the definition itself.",
        "referencesProvider",
        ReferencesArgs,
        LSPToolset.references,
        True,
    ),
    (
        "lsp_document_symbols",
        "List File Symbols",
        "List all symbols (functions, types, methods, variables, etc.) defined in a file as a "
        "hierarchical list.",
        "documentSymbolProvider",
        FileArgs,
        LSPToolset.document_symbols,
        True,
    ),
    (
        "lsp_workspace_symbols",
        "Search Workspace Symbols",
        "Search for symbols across the workspace using fuzzy matching. Primary tool for "
        "locating symbols.",
        "workspaceSymbolProvider",
        WorkspaceSymbolsArgs,
        LSPToolset.workspace_symbols,
        True,
    ),
    (
        "lsp_diagnostics",
        "Get Diagnostics",
        "Get compiler errors, warnings, and hints for a file. IMPORTANT: You MUST call this "
        "after every code modification on edited files.",
        "",
        FileArgs,
        LSPToolset.diagnostics,
        True,
    ),
    (
        "lsp_rename",
        "Rename Symbol",
        "Rename a symbol across the entire workspace. WRITE operation - modifies files on "
        "disk. Run lsp_diagnostics on modified files afterward.",
        "renameProvider",
        RenameArgs,
        LSPToolset.rename,
        False,
    ),
    (
        "lsp_format",
        "Format File",
        "Format a file according to language standards. WRITE operation - modifies the file "
        "on disk. Only format after lsp_diagnostics reports no errors.",
        "documentFormattingProvider",
        FileArgs,
        LSPToolset.format,
        False,
    ),
)

_CAPABILITY_LABELS = (
    ("Hover", "hoverProvider"),
    ("Go to Definition", "definitionProvider"),
    ("Find References", "referencesProvider"),
    ("Document Symbols", "documentSymbolProvider"),
    ("Workspace Symbols", "workspaceSymbolProvider"),
    ("Formatting", "documentFormattingProvider"),
    ("Rename", "renameProvider"),
)
