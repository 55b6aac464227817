"""The filesystem toolset on real files: docker-agent's tools, confined to the working dir."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from nbsession.tools import FilesystemToolset, Tool, ToolContext, ToolResult, build_toolsets
from nbsession.tools.filesystem import PathEscape, resolve_inside

DOCKER_AGENT_TOOLS = {
    "directory_tree",
    "edit_file",
    "list_directory",
    "read_file",
    "read_multiple_files",
    "search_files",
    "search_files_content",
    "write_file",
    "create_directory",
    "remove_directory",
}
READ_ONLY = {
    "directory_tree",
    "list_directory",
    "read_file",
    "read_multiple_files",
    "search_files",
    "search_files_content",
}


async def tool(name: str, options: dict | None = None) -> Tool:
    tools = {t.definition.name: t for t in await FilesystemToolset(options).tools()}
    return tools[name]


async def call(
    root: Path, name: str, options: dict | None = None, **arguments: object
) -> ToolResult:
    return await (await tool(name, options)).call(arguments, ToolContext("s1", str(root)))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    (work / "src" / "pkg").mkdir(parents=True)
    (work / "src" / "main.py").write_text("import os\nprint('hello')\n# TODO: more\n")
    (work / "src" / "pkg" / "util.py").write_text("def helper():\n    return 42  # TODO\n")
    (work / "README.md").write_text("line 1\nline 2\nline 3\nline 4\n")
    (work / ".git").mkdir()
    (work / ".git" / "config").write_text("TODO in git\n")
    (tmp_path / "secret.txt").write_text("TODO outside\n")
    return work


async def test_tool_names_schemas_and_read_only_flags() -> None:
    tools = {t.definition.name: t.definition for t in await FilesystemToolset().tools()}
    assert set(tools) == DOCKER_AGENT_TOOLS
    assert {name for name, d in tools.items() if d.read_only} == READ_ONLY
    edit = tools["edit_file"].parameters
    assert edit["required"] == ["path", "edits"]
    item = edit["$defs"]["Edit"]["properties"]
    assert set(item) == {"oldText", "newText"}
    assert set(tools["read_file"].parameters["properties"]) == {"path", "line", "limit"}
    search = tools["search_files_content"].parameters["properties"]
    assert set(search) == {"path", "query", "is_regex", "excludePatterns"}
    assert "json" in tools["read_multiple_files"].parameters["properties"]


async def test_read_whole_file_and_line_ranges(root: Path) -> None:
    assert await call(root, "read_file", path="README.md") == ToolResult(
        "line 1\nline 2\nline 3\nline 4\n"
    )
    assert (await call(root, "read_file", path="README.md", line=2, limit=2)).output == (
        "line 2\nline 3\n"
    )
    assert (await call(root, "read_file", path="README.md", line=4)).output == "line 4\n"
    assert (await call(root, "read_file", path="README.md", line=9)).output == ""
    bad = await call(root, "read_file", path="README.md", line=0)
    assert bad.is_error and "line" in bad.output


async def test_read_errors_are_results(root: Path) -> None:
    missing = await call(root, "read_file", path="nope.txt")
    assert missing.is_error and "not found" in missing.output
    (root / "blob.bin").write_bytes(b"\x00\x01\x02")
    binary = await call(root, "read_file", path="blob.bin")
    assert binary.is_error and "binary" in binary.output
    directory = await call(root, "read_file", path="src")
    assert directory.is_error


async def test_read_multiple_files_text_and_json(root: Path) -> None:
    text = await call(root, "read_multiple_files", paths=["README.md", "nope"])
    assert text.output.startswith("=== README.md ===\nline 1\n")
    assert "=== nope ===\nnot found" in text.output
    as_json = await call(root, "read_multiple_files", paths=["src/pkg/util.py"], json=True)
    assert json.loads(as_json.output) == [
        {"path": "src/pkg/util.py", "content": "def helper():\n    return 42  # TODO\n"}
    ]


async def test_list_directory_and_tree(root: Path) -> None:
    listing = await call(root, "list_directory", path=".")
    assert listing.output == "FILE README.md\nDIR  src"  # .git is skipped (ignore_vcs)
    with_vcs = await call(root, "list_directory", {"ignore_vcs": False}, path=".")
    assert "DIR  .git" in with_vcs.output
    (root / "empty").mkdir()
    assert (await call(root, "list_directory", path="empty")).output.startswith(
        "Directory is empty"
    )

    tree = json.loads((await call(root, "directory_tree", path="src")).output)
    assert tree == {
        "name": "src",
        "type": "directory",
        "children": [
            {"name": "main.py", "type": "file"},
            {
                "name": "pkg",
                "type": "directory",
                "children": [{"name": "util.py", "type": "file"}],
            },
        ],
    }
    shallow = json.loads((await call(root, "directory_tree", path=".", max_depth=1)).output)
    src = next(child for child in shallow["children"] if child["name"] == "src")
    assert src["children"] == []


async def test_search_by_glob_and_by_content(root: Path) -> None:
    names = await call(root, "search_files", path=".", pattern="*.py")
    assert names.output.splitlines() == ["src/main.py", "src/pkg/util.py"]
    excluded = await call(root, "search_files", path=".", pattern="*.py", excludePatterns=["pkg"])
    assert excluded.output == "src/main.py"
    assert (await call(root, "search_files", path=".", pattern="*.rs")).output == "No files found"

    found = await call(root, "search_files_content", path=".", query="TODO")
    assert found.output.splitlines() == [
        "src/main.py:3:3: # TODO: more",
        "src/pkg/util.py:2:18:     return 42  # TODO",
    ]  # nothing from .git, nothing from outside the working dir
    regex = await call(root, "search_files_content", path="src", query=r"ret\w+ \d+", is_regex=True)
    assert regex.output == "src/pkg/util.py:2:5:     return 42  # TODO"
    none = await call(root, "search_files_content", path=".", query="absent")
    assert none.output == "No results found"
    bad = await call(root, "search_files_content", path=".", query="(", is_regex=True)
    assert bad.is_error and "Invalid regex" in bad.output


async def test_write_creates_parents_and_overwrites(root: Path) -> None:
    result = await call(root, "write_file", path="new/dir/file.txt", content="hi\n")
    assert result == ToolResult("File written successfully: new/dir/file.txt (3 bytes)")
    assert (root / "new" / "dir" / "file.txt").read_text() == "hi\n"
    await call(root, "write_file", path="new/dir/file.txt", content="bye")
    assert (root / "new" / "dir" / "file.txt").read_text() == "bye"


async def test_each_written_file_is_reported_even_when_post_edit_fails(root: Path) -> None:
    written: list[str] = []
    failing = {"post_edit": [{"path": "b.txt", "cmd": "exit 3"}]}
    tools = {t.definition.name: t for t in await FilesystemToolset(failing, written.append).tools()}
    ctx = ToolContext("s1", str(root))
    await tools["write_file"].call({"path": "a.txt", "content": "x"}, ctx)
    assert (await tools["write_file"].call({"path": "b.txt", "content": "y"}, ctx)).is_error
    edit = {"path": "a.txt", "edits": [{"oldText": "x", "newText": "z"}]}
    await tools["edit_file"].call(edit, ctx)
    await tools["edit_file"].call(edit, ctx)  # x is gone: refused, nothing written
    await tools["create_directory"].call({"paths": ["d"]}, ctx)
    a, b = str((root / "a.txt").resolve()), str((root / "b.txt").resolve())
    assert written == [a, b, a]


async def test_edit_applies_several_exact_replacements(root: Path) -> None:
    result = await call(
        root,
        "edit_file",
        path="src/main.py",
        edits=[
            {"oldText": "print('hello')", "newText": "print('bye')"},
            {"oldText": "# TODO: more\n", "newText": ""},
        ],
    )
    assert result.output == (
        "File edited successfully. Changes:\nEdit 1: Replaced 14 characters\n"
        "Edit 2: Replaced 13 characters"
    )
    assert (root / "src" / "main.py").read_text() == "import os\nprint('bye')\n"


async def test_edit_refusals_change_nothing(root: Path) -> None:
    before = (root / "README.md").read_text()
    missing = await call(
        root, "edit_file", path="README.md", edits=[{"oldText": "x", "newText": ""}]
    )
    assert missing == ToolResult("Edit 1 failed: old text not found", is_error=True)
    ambiguous = await call(
        root,
        "edit_file",
        path="README.md",
        edits=[{"oldText": "line 4", "newText": "four"}, {"oldText": "line", "newText": "L"}],
    )
    assert ambiguous.is_error and "Edit 2 failed: old text appears 3 times" in ambiguous.output
    empty = await call(root, "edit_file", path="README.md", edits=[{"oldText": "", "newText": "x"}])
    assert empty.is_error
    assert (root / "README.md").read_text() == before


async def test_preview_is_a_unified_diff(root: Path) -> None:
    ctx = ToolContext("s1", str(root))
    edit = await tool("edit_file")
    diff = await edit.preview(
        {"path": "README.md", "edits": [{"oldText": "line 2\n", "newText": "LINE TWO\n"}]}, ctx
    )
    assert diff == (
        "--- a/README.md\n+++ b/README.md\n@@ -1,4 +1,4 @@\n line 1\n-line 2\n+LINE TWO\n"
        " line 3\n line 4\n"
    )
    write = await tool("write_file")
    created = await write.preview({"path": "n.txt", "content": "a\nb"}, ctx)
    assert created == (
        "--- /dev/null\n+++ b/n.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n\\ No newline at end of file\n"
    )
    # A call that would fail previews nothing; the call reports the problem.
    assert await write.preview({"path": "../x", "content": ""}, ctx) == ""
    assert await (await tool("read_file")).preview({"path": "README.md"}, ctx) == ""
    assert not (root / "n.txt").exists()  # previews never write


async def test_directories_are_created_and_removed(root: Path) -> None:
    made = await call(root, "create_directory", paths=["a/b", "c"])
    assert made.output == ("Directory created successfully: a/b\nDirectory created successfully: c")
    assert (root / "a" / "b").is_dir()
    removed = await call(root, "remove_directory", paths=["a/b"])
    assert removed.output == "Directory removed successfully: a/b"
    not_empty = await call(root, "remove_directory", paths=["src"])
    assert not_empty.is_error and (root / "src").is_dir()
    itself = await call(root, "remove_directory", paths=["."])
    assert itself.is_error
    assert "FILE README.md" in (await call(root, "list_directory", path=".")).output


async def test_post_edit_command_runs_with_the_path(root: Path) -> None:
    options = {"post_edit": [{"path": "*.py", "cmd": 'echo "$path" >> post.log'}]}
    await call(root, "write_file", options, path="x.py", content="")
    await call(root, "write_file", options, path="x.txt", content="")
    assert (root / "post.log").read_text() == f"{(root / 'x.py').resolve()}\n"
    failing = {"post_edit": [{"path": "*", "cmd": "exit 3"}]}
    result = await call(root, "write_file", failing, path="y.txt", content="")
    assert result.is_error and "post-edit command failed" in result.output


# -- confinement ------------------------------------------------------------------------

ESCAPES = [
    pytest.param("../secret.txt", id="dotdot"),
    pytest.param("src/../../secret.txt", id="dotdot-inside"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("~", id="home"),
]


@pytest.mark.parametrize("path", ESCAPES)
async def test_paths_outside_are_refused_by_every_tool(root: Path, path: str) -> None:
    calls = {
        "read_file": {"path": path},
        "read_multiple_files": {"paths": [path]},
        "list_directory": {"path": path},
        "directory_tree": {"path": path},
        "search_files": {"path": path, "pattern": "*"},
        "search_files_content": {"path": path, "query": "TODO"},
        "write_file": {"path": path, "content": "pwned"},
        "edit_file": {"path": path, "edits": [{"oldText": "TODO", "newText": "x"}]},
        "create_directory": {"paths": [path]},
        "remove_directory": {"paths": [path]},
    }
    for name, arguments in calls.items():
        result = await call(root, name, **arguments)
        assert "outside the working directory" in result.output, name
        assert result.is_error or name == "read_multiple_files", name
    assert (root.parent / "secret.txt").read_text() == "TODO outside\n"


async def test_inside_paths_with_dotdot_and_absolute_are_fine(root: Path) -> None:
    assert (await call(root, "read_file", path="src/../README.md")).output.startswith("line 1")
    absolute = str(root / "README.md")
    assert (await call(root, "read_file", path=absolute)).output.startswith("line 1")


async def test_symlinks_out_of_the_working_dir_are_refused(root: Path) -> None:
    outside = root.parent
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    for name, arguments in {
        "read_file": {"path": "link.txt"},
        "write_file": {"path": "link.txt", "content": "pwned"},
        "write_file ": {"path": "linkdir/new.txt", "content": "pwned"},
        "list_directory": {"path": "linkdir"},
        "edit_file": {"path": "link.txt", "edits": [{"oldText": "TODO", "newText": "x"}]},
    }.items():
        result = await call(root, name.strip(), **arguments)
        assert result.is_error and "symbolic link" in result.output, name
    assert (outside / "secret.txt").read_text() == "TODO outside\n"
    assert not (outside / "new.txt").exists()
    # Walks neither descend into the link nor read the linked file.
    found = await call(root, "search_files_content", path=".", query="TODO")
    assert "outside" not in found.output
    tree = json.loads((await call(root, "directory_tree", path=".")).output)
    linkdir = next(child for child in tree["children"] if child["name"] == "linkdir")
    assert linkdir == {"name": "linkdir", "type": "file"}


async def test_symlinks_within_the_working_dir_work(root: Path) -> None:
    (root / "alias.md").symlink_to(root / "README.md")
    assert (await call(root, "read_file", path="alias.md")).output.startswith("line 1")


def test_resolve_inside_through_a_symlinked_root(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    alias = str(tmp_path / "alias")
    assert resolve_inside(alias, "f.txt") == os.path.join(str(real), "f.txt")
    assert resolve_inside(alias, os.path.join(alias, "f.txt")) == os.path.join(str(real), "f.txt")
    with pytest.raises(PathEscape):
        resolve_inside(alias, str(tmp_path))


async def test_the_tools_key_keeps_only_the_listed_tools() -> None:
    [toolset] = build_toolsets([("filesystem", {"tools": ["read_file", "list_directory"]})])
    assert toolset.type == "filesystem"
    assert sorted(t.definition.name for t in await toolset.tools()) == [
        "list_directory",
        "read_file",
    ]
    with pytest.raises(ValueError, match="tools"):
        build_toolsets([("filesystem", {"tools": "read_file"})])


async def test_readonly_offers_only_the_tools_that_read() -> None:
    [toolset] = build_toolsets([("filesystem", {"readonly": True})])
    names = {tool.definition.name for tool in await toolset.tools()}
    assert "read_file" in names and "list_directory" in names
    assert not names & {"write_file", "edit_file", "create_directory", "remove_directory"}
