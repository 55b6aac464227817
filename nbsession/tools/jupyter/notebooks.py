"""Notebooks as a model reads and edits them: numbered cells in text, and cell edits.

A notebook is nbformat-4 JSON (a dict). Rendering follows the ``# %%`` cell-marker convention
(jupytext's percent format), which models know; the same rendering without outputs is what a
cell edit's confirmation diffs, so a person approving it sees exactly which cells change.
Edits are pure: they return a new notebook and leave the given one untouched.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Literal

from ..filesystem import unified_diff
from .outputs import bounded, joined, outputs_text

CellType = Literal["code", "markdown", "raw"]


class CellError(ValueError):
    """An edit that does not fit the notebook (an index out of range)."""


def cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return list(notebook.get("cells") or [])


def kernel_name(notebook: dict[str, Any]) -> str:
    return str(((notebook.get("metadata") or {}).get("kernelspec") or {}).get("name", ""))


def cell_header(index: int, cell: dict[str, Any], full: bool = True) -> str:
    """``# %% [code] cell 3 id=ab12 In [7]``; without ``full``, only the type: what a diff
    shows, where inserting a cell must not renumber every cell after it."""
    parts = [f"# %% [{cell.get('cell_type', 'code')}]"]
    if full:
        parts.append(f"cell {index}")
        if cell.get("id"):
            parts.append(f"id={cell['id']}")
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None:
            parts.append(f"In [{cell['execution_count']}]")
    return " ".join(parts)


def render(
    notebook: dict[str, Any],
    *,
    outputs: bool = True,
    start: int = 0,
    limit: int | None = None,
    output_limit: int = 2000,
) -> str:
    """Cells ``start`` to ``start + limit`` as text; each cell's outputs cut to
    ``output_limit`` characters."""
    every = cells(notebook)
    chosen = every[start : None if limit is None else start + limit]
    blocks = []
    for index, cell in enumerate(chosen, start):
        source = joined(cell.get("source", ""))
        block = f"{cell_header(index, cell)}\n{source}".rstrip("\n")
        if outputs and cell.get("outputs"):
            text = bounded(outputs_text(cell["outputs"]), output_limit)
            block += "\n# Out:\n" + "\n".join(f"# | {line}" for line in text.splitlines())
        blocks.append(block)
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def diff(before: dict[str, Any] | None, after: dict[str, Any], path: str) -> str:
    """The unified diff of two versions' cells (sources and types, not outputs)."""
    return unified_diff(None if before is None else structure(before), structure(after), path)


def structure(notebook: dict[str, Any]) -> str:
    """The cells as edits change them: types and sources, no numbers, ids or outputs."""
    blocks = [
        f"{cell_header(0, cell, full=False)}\n{joined(cell.get('source', ''))}".rstrip("\n")
        for cell in cells(notebook)
    ]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _has_ids(notebook: dict[str, Any]) -> bool:
    """Whether cells carry ids: nbformat 4.5 and later require them, 4.4 forbids them."""
    return (notebook.get("nbformat", 4), notebook.get("nbformat_minor", 0)) >= (4, 5)


def new_cell(notebook: dict[str, Any], cell_type: CellType, source: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": cell_type, "metadata": {}, "source": source}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    if _has_ids(notebook):
        cell["id"] = uuid.uuid4().hex[:8]
    return cell


def _check(notebook: dict[str, Any], index: int, *, inserting: bool = False) -> int:
    count = len(cells(notebook))
    top = count if inserting else count - 1
    if index < 0:
        index += count + (1 if inserting else 0)
    if not 0 <= index <= top:
        where = f"0..{top}" if top >= 0 else "none (the notebook has no cells)"
        raise CellError(f"cell index out of range: the notebook has {count} cells (valid: {where})")
    return index


def insert_cell(
    notebook: dict[str, Any], index: int, source: str, cell_type: CellType
) -> tuple[dict[str, Any], int]:
    """A copy with a new cell at ``index`` (``-1``: at the end); the index it got."""
    index = _check(notebook, index, inserting=True)
    changed = copy.deepcopy(notebook)
    changed.setdefault("cells", []).insert(index, new_cell(notebook, cell_type, source))
    return changed, index


def replace_cell(
    notebook: dict[str, Any], index: int, source: str, cell_type: CellType | None
) -> tuple[dict[str, Any], int]:
    """A copy whose cell ``index`` has the new source (and type); a code cell's outputs are
    cleared, since they came from the old source. Its id and metadata stay."""
    index = _check(notebook, index)
    changed = copy.deepcopy(notebook)
    old = changed["cells"][index]
    kind = cell_type or old.get("cell_type", "code")
    cell = new_cell(notebook, kind, source)
    cell["metadata"] = old.get("metadata", {})
    if "id" in old:
        cell["id"] = old["id"]
    changed["cells"][index] = cell
    return changed, index


def delete_cell(notebook: dict[str, Any], index: int) -> tuple[dict[str, Any], int]:
    index = _check(notebook, index)
    changed = copy.deepcopy(notebook)
    del changed["cells"][index]
    return changed, index
