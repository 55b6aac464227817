"""The ``filesystem`` toolset: read, write, edit, list and search the session's working dir.

Tool names, arguments and answers follow docker-agent's toolset, so agent files and prompts
written for it behave the same. One difference is deliberate: every path is confined to the
session's working directory. A path is resolved against it, normalised, and then resolved
again through symbolic links; a path that lands outside (``../x``, ``/etc/passwd``, a link
pointing out) is refused before anything is touched. Walks (tree, searches) do not follow
links to directories, and skip linked files that point outside.

The check and the I/O are two steps, so a process that swaps a directory for a link in between
could still win the race; the model has no way to create links through these tools, which is
the threat this guards against.

Reading tools are read-only (no approval by default); writing ones ask, and their confirmation
carries a unified diff of the change (``Tool.preview``). File work runs on a thread, so a large
tree never stalls the server's event loop. Each file written is reported to ``on_write`` (inside
Jupyter, the host announces it so an editor open on the file reloads).
"""

from __future__ import annotations

import asyncio
import difflib
import fnmatch
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from .base import ArgsT, FixedToolset, FunctionTool, Tool, ToolContext, ToolResult

# Entries a listing or a tree shows at most, and the size of a search's answer (docker-agent's).
MAX_ENTRIES = 1000
MAX_SEARCH_OUTPUT = 1 << 20
# Files larger than this are not searched; the first bytes decide whether a file is text.
MAX_SEARCH_FILE = 10 << 20
_SNIFF_BYTES = 8192
_POST_EDIT_TIMEOUT = 60.0

# Told the absolute path of each file a tool wrote, on the event loop's thread.
OnWrite = Callable[[str], None]


class PathEscape(ValueError):
    """A path that resolves outside the session's working directory."""


def resolve_inside(root: str, path: str) -> str:
    """The real path ``path`` names, relative to ``root`` or absolute, if it lies inside root.

    ``~`` is expanded as docker-agent does (and then refused unless the home directory is the
    root). Raises `PathEscape` for a path outside, lexically or through a symbolic link.
    """
    base = os.path.abspath(root)
    real_root = os.path.realpath(base)
    lexical = os.path.normpath(os.path.join(base, os.path.expanduser(path) if path else "."))
    if not (_within(lexical, base) or _within(lexical, real_root)):
        raise PathEscape(f"path {path!r} is outside the working directory {base}")
    real = os.path.realpath(lexical)
    if not _within(real, real_root):
        raise PathEscape(
            f"path {path!r} leads outside the working directory {base} through a symbolic link"
        )
    return real


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class PostEdit(BaseModel):
    path: str = Field(description="Glob matched against the edited file's name")
    cmd: str = Field(description="Shell command run after the edit, with $path set to the file")


class FilesystemOptions(BaseModel):
    """The ``filesystem`` entry's options (docker-agent's names); other keys are not ours."""

    model_config = ConfigDict(extra="ignore")

    ignore_vcs: bool = Field(True, description="Skip .git directories in listings and searches")
    post_edit: list[PostEdit] = Field(default_factory=list)
    readonly: bool = Field(False, description="Offer only the tools that read")


class ReadFileArgs(BaseModel):
    path: str = Field(description="File to read")
    line: PositiveInt | None = Field(
        None,
        description="1-based line number to start reading from (defaults to the first line)",
    )
    limit: PositiveInt | None = Field(
        None,
        description="Maximum number of lines to read (defaults to reading through the end)",
    )


class ReadMultipleFilesArgs(BaseModel):
    paths: list[str] = Field(description="Files to read")
    json_: bool = Field(False, alias="json", description="Return result as JSON")


class WriteFileArgs(BaseModel):
    path: str = Field(description="File to write")
    content: str = Field(description="File content")


class Edit(BaseModel):
    oldText: str = Field(  # docker-agent's argument name
        description=(
            "Exact text to replace. Must be non-empty and must match exactly once in the file: "
            "include surrounding context to disambiguate, or send one edit per occurrence to "
            "change several."
        )
    )
    newText: str = Field(description="Replacement text")


class EditFileArgs(BaseModel):
    path: str = Field(description="File to edit")
    edits: list[Edit] = Field(description="Edits to apply")


class DirectoryArgs(BaseModel):
    path: str = Field(description="Directory to list")


class DirectoryTreeArgs(BaseModel):
    path: str = Field(description="Directory to traverse")
    max_depth: PositiveInt | None = Field(None, description="Levels to descend (default: all)")


class SearchFilesArgs(BaseModel):
    path: str = Field(description="Starting directory")
    pattern: str = Field(description="Glob matched against file and directory names, e.g. *.py")
    excludePatterns: list[str] = Field(  # docker-agent's argument name
        default_factory=list, description="Patterns to exclude"
    )


class SearchFilesContentArgs(BaseModel):
    path: str = Field(description="Starting directory")
    query: str = Field(min_length=1, description="Text or regex to search")
    is_regex: bool = Field(False, description="Treat query as regex")
    excludePatterns: list[str] = Field(  # docker-agent's argument name
        default_factory=list, description="Patterns to exclude"
    )


class DirectoriesArgs(BaseModel):
    paths: list[str] = Field(description="Directories")


@dataclass(frozen=True)
class _Change:
    """A write or edit worked out before it happens: what the preview shows and the call does."""

    path: str
    before: str | None  # None: the file does not exist yet
    after: str
    done: str  # the answer once written


class _Refused(Exception):
    """A call the model should read about as an error result (escape, not found, no match)."""


class FilesystemToolset(FixedToolset):
    """docker-agent's filesystem tools, confined to the session's working directory.

    Options: ``ignore_vcs``, ``post_edit`` and ``readonly`` (see FilesystemOptions). Raises
    ``pydantic.ValidationError`` (a ``ValueError``) when an option has the wrong type.
    """

    type: ClassVar[str] = "filesystem"
    options_model = FilesystemOptions

    def __init__(
        self, options: Mapping[str, Any] | None = None, on_write: OnWrite | None = None
    ) -> None:
        self._options = FilesystemOptions.model_validate(dict(options or {}))
        self._on_write = on_write
        self._tools: list[Tool] = [
            self._tool(
                "directory_tree",
                "Directory Tree",
                "Get a recursive tree view of files and directories as a JSON structure.",
                DirectoryTreeArgs,
                self._directory_tree,
            ),
            _ChangeTool(
                self,
                name="edit_file",
                title="Edit",
                description=(
                    "Make line-based edits to a text file. Each edit replaces exact line "
                    "sequences with new content. Every oldText must match exactly once."
                ),
                args=EditFileArgs,
                plan=self._plan_edit,
            ),
            self._tool(
                "list_directory",
                "List Directory",
                "Get a detailed listing of all files and directories in a specified path.",
                DirectoryArgs,
                self._list_directory,
            ),
            self._tool(
                "read_file",
                "Read",
                "Read the contents of a file from the file system. By default the complete file "
                "is returned; the optional line (1-based start line) and limit (maximum number "
                "of lines) arguments select a line range.",
                ReadFileArgs,
                self._read_file,
            ),
            self._tool(
                "read_multiple_files",
                "Read Multiple Files",
                "Read the contents of multiple files simultaneously.",
                ReadMultipleFilesArgs,
                self._read_multiple_files,
            ),
            self._tool(
                "search_files",
                "Search Files",
                "Recursively search for files and directories whose name matches a GLOB pattern.",
                SearchFilesArgs,
                self._search_files,
            ),
            self._tool(
                "search_files_content",
                "Search Files Content",
                "Searches for text or regex patterns in the content of files.",
                SearchFilesContentArgs,
                self._search_files_content,
            ),
            _ChangeTool(
                self,
                name="write_file",
                title="Write",
                description=(
                    "Create a new file or completely overwrite an existing file with new content."
                ),
                args=WriteFileArgs,
                plan=self._plan_write,
            ),
            self._tool(
                "create_directory",
                "Create Directory",
                "Create one or more new directories or nested directory structures.",
                DirectoriesArgs,
                self._create_directory,
                read_only=False,
            ),
            self._tool(
                "remove_directory",
                "Remove Directory",
                "Remove one or more empty directories.",
                DirectoriesArgs,
                self._remove_directory,
                read_only=False,
            ),
        ]

    async def tools(self) -> list[Tool]:
        if self._options.readonly:
            return [tool for tool in self._tools if tool.definition.read_only]
        return await super().tools()

    def _tool(
        self,
        name: str,
        title: str,
        description: str,
        args: type[ArgsT],
        work: Callable[[ArgsT, str], str],
        *,
        read_only: bool = True,
    ) -> Tool:
        """A tool whose blocking ``work(args, root)`` runs on a thread; `_Refused` -> error."""

        async def run(parsed: ArgsT, ctx: ToolContext) -> str:
            return await asyncio.to_thread(work, parsed, _root(ctx))

        return self.function_tool(
            name, description, args, run, read_only=read_only, title=title, refused=(_Refused,)
        )

    # -- reading ------------------------------------------------------------------------

    def _read_file(self, args: ReadFileArgs, root: str) -> str:
        path = _resolve(root, args.path)
        text = _read_text(path, args.path)
        if args.line is None and args.limit is None:
            return text
        lines = text.splitlines(keepends=True)
        start = (args.line or 1) - 1
        end = len(lines) if args.limit is None else start + args.limit
        return "".join(lines[start:end])

    def _read_multiple_files(self, args: ReadMultipleFilesArgs, root: str) -> str:
        contents = []
        for name in args.paths:
            try:
                content = _read_text(_resolve(root, name), name)
            except _Refused as exc:
                content = str(exc)
            contents.append({"path": name, "content": content})
        if args.json_:
            return json.dumps(contents, ensure_ascii=False)
        return "".join(f"=== {c['path']} ===\n{c['content']}\n\n" for c in contents)

    def _list_directory(self, args: DirectoryArgs, root: str) -> str:
        path = _resolve(root, args.path)
        try:
            entries = sorted(os.scandir(path), key=lambda entry: entry.name)
        except FileNotFoundError:
            raise _Refused(f"not found: {args.path}") from None
        except OSError as exc:
            raise _Refused(f"Error reading directory: {exc.strerror}") from None
        lines = []
        for entry in entries:
            if self._ignored(entry.name):
                continue
            kind = "DIR " if entry.is_dir(follow_symlinks=False) else "FILE"
            lines.append(f"{kind} {entry.name}")
            if len(lines) >= MAX_ENTRIES:
                lines.append("...output truncated due to file limit...")
                break
        if not lines:
            return f"Directory is empty: {args.path or '.'}"
        return "\n".join(lines)

    def _directory_tree(self, args: DirectoryTreeArgs, root: str) -> str:
        path = _resolve(root, args.path)
        if not os.path.isdir(path):
            raise _Refused(f"not a directory: {args.path}")
        budget = [MAX_ENTRIES]

        def node(where: str, name: str, depth: int) -> dict[str, Any]:
            if not os.path.isdir(where) or os.path.islink(where):
                return {"name": name, "type": "file"}
            children: list[dict[str, Any]] = []
            if args.max_depth is None or depth < args.max_depth:
                try:
                    entries = sorted(os.scandir(where), key=lambda entry: entry.name)
                except OSError:
                    entries = []
                for entry in entries:
                    if budget[0] <= 0:
                        break
                    if self._ignored(entry.name):
                        continue
                    budget[0] -= 1
                    children.append(node(entry.path, entry.name, depth + 1))
            return {"name": name, "type": "directory", "children": children}

        return json.dumps(node(path, os.path.basename(path) or path, 0), ensure_ascii=False)

    def _search_files(self, args: SearchFilesArgs, root: str) -> str:
        start = _resolve(root, args.path)
        found = []
        for where, is_dir in self._walk(start, args.excludePatterns):
            if fnmatch.fnmatch(os.path.basename(where), args.pattern):
                found.append(os.path.relpath(where, root) + ("/" if is_dir else ""))
                if len(found) >= MAX_ENTRIES:
                    found.append("...output truncated due to file limit...")
                    break
        return "\n".join(found) if found else "No files found"

    def _search_files_content(self, args: SearchFilesContentArgs, root: str) -> str:
        start = _resolve(root, args.path)
        if args.is_regex:
            try:
                pattern = re.compile(args.query)
            except re.error as exc:
                raise _Refused(f"Invalid regex pattern: {exc}") from None
        else:
            pattern = re.compile(re.escape(args.query))
        out: list[str] = []
        size = 0
        for where, is_dir in self._walk(start, args.excludePatterns):
            if is_dir or not _is_searchable(where, root):
                continue
            try:
                with open(where, encoding="utf-8", errors="replace") as file:
                    for number, line in enumerate(file, 1):
                        match = pattern.search(line)
                        if match is None:
                            continue
                        text = _preview(line.rstrip("\n"), match.start(), match.end())
                        entry = (
                            f"{os.path.relpath(where, root)}:{number}:{match.start() + 1}: {text}"
                        )
                        out.append(entry)
                        size += len(entry) + 1
                        if size >= MAX_SEARCH_OUTPUT:
                            out.append(
                                "\n[Output truncated: exceeded 1 MiB limit. Narrow the search "
                                "with a more specific query, path, or exclude patterns.]"
                            )
                            return "\n".join(out)
            except OSError:
                continue
        return "\n".join(out) if out else "No results found"

    def _walk(self, start: str, excludes: list[str]) -> Iterator[tuple[str, bool]]:
        """Every entry under ``start`` (not following directory links), minus exclusions."""
        for where, dirs, files in os.walk(start):
            kept = []
            for name in sorted(dirs):
                full = os.path.join(where, name)
                if self._ignored(name) or _excluded(excludes, os.path.relpath(full, start)):
                    continue
                kept.append(name)
                yield full, True
            dirs[:] = kept
            for name in sorted(files):
                full = os.path.join(where, name)
                if not _excluded(excludes, os.path.relpath(full, start)):
                    yield full, False

    def _ignored(self, name: str) -> bool:
        return self._options.ignore_vcs and name == ".git"

    # -- writing ------------------------------------------------------------------------

    def _plan_write(self, args: WriteFileArgs, root: str) -> _Change:
        path = _resolve(root, args.path)
        if os.path.isdir(path):
            raise _Refused(f"{args.path} is a directory")
        before = _read_text(path, args.path) if os.path.exists(path) else None
        size = len(args.content.encode())
        return _Change(
            path, before, args.content, f"File written successfully: {args.path} ({size} bytes)"
        )

    def _plan_edit(self, args: EditFileArgs, root: str) -> _Change:
        path = _resolve(root, args.path)
        before = _read_text(path, args.path)
        after = before
        changes = []
        for index, edit in enumerate(args.edits, 1):
            # Checked against the running text: an earlier edit may have removed a duplicate.
            if not edit.oldText:
                raise _Refused(f"Edit {index} failed: oldText must not be empty")
            count = after.count(edit.oldText)
            if count == 0:
                raise _Refused(f"Edit {index} failed: old text not found")
            if count > 1:
                raise _Refused(
                    f"Edit {index} failed: old text appears {count} times; include more "
                    "surrounding context so it matches exactly once, or send one edit per "
                    "occurrence to change several"
                )
            after = after.replace(edit.oldText, edit.newText, 1)
            changes.append(f"Edit {index}: Replaced {len(edit.oldText)} characters")
        if len(changes) == 1:
            done = "File edited successfully. " + changes[0].removeprefix("Edit 1: ")
        else:
            done = "File edited successfully. Changes:\n" + "\n".join(changes)
        return _Change(path, before, after, done)

    def apply(self, change: _Change, root: str, written: list[str]) -> str:
        """Write a planned change (creating parent directories) and run post-edit commands;
        the path goes to ``written`` once the file is written, whatever post-edit does."""
        try:
            os.makedirs(os.path.dirname(change.path), exist_ok=True)
            with open(change.path, "w", encoding="utf-8", newline="") as file:
                file.write(change.after)
        except OSError as exc:
            raise _Refused(f"Error writing file: {exc.strerror or exc}") from None
        written.append(change.path)
        failure = self._post_edit(change.path, root)
        if failure:
            raise _Refused(f"{change.done}, but the post-edit command failed: {failure}")
        return change.done

    def announce(self, written: list[str]) -> None:
        """Report written files to ``on_write`` (called back on the event loop's thread)."""
        if self._on_write is not None:
            for path in written:
                self._on_write(path)

    def _post_edit(self, path: str, root: str) -> str:
        """Run the post-edit commands whose glob matches the file's name; the first failure."""
        for rule in self._options.post_edit:
            if not fnmatch.fnmatch(os.path.basename(path), rule.path):
                continue
            try:
                done = subprocess.run(
                    ["/bin/sh", "-c", rule.cmd],
                    cwd=root,
                    env={**os.environ, "path": path},
                    capture_output=True,
                    text=True,
                    timeout=_POST_EDIT_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return f"{rule.cmd!r} timed out"
            if done.returncode != 0:
                return f"{rule.cmd!r} exited with {done.returncode}: {done.stdout}{done.stderr}"
        return ""

    def _create_directory(self, args: DirectoriesArgs, root: str) -> str:
        done = []
        for name in args.paths:
            try:
                os.makedirs(_resolve(root, name), exist_ok=True)
            except OSError as exc:
                raise _Refused(f"Error creating directory {name}: {exc.strerror}") from None
            done.append(f"Directory created successfully: {name}")
        return "\n".join(done)

    def _remove_directory(self, args: DirectoriesArgs, root: str) -> str:
        done = []
        for name in args.paths:
            path = _resolve(root, name)
            if path == os.path.realpath(root):
                raise _Refused("Error removing directory: the working directory itself")
            try:
                os.rmdir(path)
            except OSError as exc:
                raise _Refused(f"Error removing directory {name}: {exc.strerror}") from None
            done.append(f"Directory removed successfully: {name}")
        return "\n".join(done)


class _ChangeTool(FunctionTool[Any]):
    """write_file / edit_file: plan the change, show it as a diff, then apply that plan.

    The call plans again rather than reusing the preview's plan: the file may have changed
    while the person read the confirmation, and the answer must describe what was written.
    """

    def __init__(
        self,
        toolset: FilesystemToolset,
        *,
        name: str,
        title: str,
        description: str,
        args: type[BaseModel],
        plan: Callable[[Any, str], _Change],
    ) -> None:
        self._toolset = toolset
        self._plan = plan
        super().__init__(
            name=name,
            description=description,
            args=args,
            func=self._run,
            title=title,
            category=toolset.type,
        )

    async def _run(self, args: Any, ctx: ToolContext) -> ToolResult:
        written: list[str] = []

        def work(parsed: Any, root: str) -> str:
            return self._toolset.apply(self._plan(parsed, root), root, written)

        result = await _in_thread(work, args, _root(ctx))
        self._toolset.announce(written)
        return result

    async def preview(self, arguments: Mapping[str, Any], ctx: ToolContext) -> str:
        try:
            parsed = self._args.model_validate(dict(arguments))
            return await asyncio.to_thread(self._diff, parsed, _root(ctx))
        except (ValueError, _Refused, OSError):
            return ""  # the call itself will report what is wrong

    def _diff(self, parsed: Any, root: str) -> str:
        change = self._plan(parsed, root)
        label = os.path.relpath(change.path, os.path.realpath(root))
        return unified_diff(change.before, change.after, label)


def unified_diff(before: str | None, after: str, label: str) -> str:
    """A ``git diff``-style unified diff; a new file diffs against ``/dev/null``."""
    old_name = "/dev/null" if before is None else f"a/{label}"
    lines = difflib.unified_diff(
        (before or "").splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=old_name,
        tofile=f"b/{label}",
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


def _root(ctx: ToolContext) -> str:
    return ctx.working_dir or os.getcwd()


async def _in_thread(work: Callable[[Any, str], str], args: Any, root: str) -> ToolResult:
    try:
        return ToolResult(await asyncio.to_thread(work, args, root))
    except _Refused as exc:
        return ToolResult(str(exc), is_error=True)


def _resolve(root: str, path: str) -> str:
    try:
        return resolve_inside(root, path)
    except PathEscape as exc:
        raise _Refused(str(exc)) from None


def _read_text(path: str, label: str) -> str:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise _Refused(f"not found: {label}") from None
    except IsADirectoryError:
        raise _Refused(f"{label} is a directory; use list_directory") from None
    except OSError as exc:
        raise _Refused(f"Error reading {label}: {exc.strerror}") from None
    if b"\0" in data[:_SNIFF_BYTES]:
        raise _Refused(f"{label} is a binary file ({len(data)} bytes); only text can be read")
    return data.decode("utf-8", errors="replace")


def _is_searchable(path: str, root: str) -> bool:
    """A regular text file no larger than the limit, really inside the root (links checked)."""
    if not _within(os.path.realpath(path), os.path.realpath(root)):
        return False
    try:
        if not os.path.isfile(path) or os.path.getsize(path) > MAX_SEARCH_FILE:
            return False
        with open(path, "rb") as file:
            return b"\0" not in file.read(_SNIFF_BYTES)
    except OSError:
        return False


def _excluded(patterns: list[str], relative: str) -> bool:
    """docker-agent's exclusion: ``dir/*`` prefixes, or a glob on the path, name or a parent."""
    parts = relative.replace(os.sep, "/").split("/")
    for pattern in patterns:
        prefix = pattern.removesuffix("/*")
        joined = "/".join(parts)
        if prefix != pattern and (joined == prefix or joined.startswith(prefix + "/")):
            return True
        if any(fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))):
            return True
        if fnmatch.fnmatch(parts[-1], pattern):
            return True
    return False


def _preview(line: str, start: int, end: int) -> str:
    """A long matching line cut to the match with some context on each side."""
    if len(line) <= 100:
        return line
    return line[max(start - 20, 0) : min(end + 20, len(line))]


__all__ = ["FilesystemToolset", "PathEscape", "resolve_inside", "unified_diff"]
