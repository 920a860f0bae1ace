"""Checks on an executed report notebook before it becomes HTML (used by render_notebook.py).

The HTML shows markdown cells and the outputs of code cells (inputs are hidden), minus cells tagged
`remove_cell`, which nbconvert drops whole, output included. So a cell whose output a reader must see
is tagged `remove_input`, and a heading with nothing visible under it means output went missing.
"""

from __future__ import annotations

import re
from typing import Any

REMOVE_CELL = "remove_cell"
_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


class NotebookCheckError(RuntimeError):
    """A rendered report page would be wrong (an empty section, output that nbconvert drops)."""


def _tags(cell: Any) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _visible_output(output: Any) -> bool:
    """Whether one output of a code cell shows anything on the page."""
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("name") == "stdout" and bool(str(output.get("text", "")).strip())
    if kind in ("display_data", "execute_result"):
        data = output.get("data", {})
        return any(str(v).strip() for v in data.values())
    return kind == "error"


def _describe(output: Any) -> str:
    """A short description of one visible output, for error messages."""
    if output.get("output_type") == "stream":
        text = str(output.get("text", ""))
    elif output.get("output_type") == "error":
        text = f"{output.get('ename')}: {output.get('evalue')}"
    else:
        data = output.get("data", {})
        text = str(data.get("text/plain", next(iter(data), "")))
    text = " ".join(text.split())
    return f"{output.get('output_type')} output {text[:60]!r}"


def page_blocks(nb: Any) -> list[tuple[str, int, str]]:
    """The page as nbconvert renders it: ("heading", level, text) and ("content", 0, "") blocks in order."""
    blocks: list[tuple[str, int, str]] = []
    for cell in nb.cells:
        if REMOVE_CELL in _tags(cell):
            continue
        if cell.cell_type == "markdown":
            fenced = False
            for line in str(cell.source).splitlines():
                if _FENCE.match(line):
                    fenced = not fenced
                    blocks.append(("content", 0, ""))
                    continue
                match = None if fenced else _HEADING.match(line)
                if match:
                    blocks.append(("heading", len(match.group(1)), match.group(2)))
                elif line.strip():
                    blocks.append(("content", 0, ""))
        elif cell.cell_type == "code" and any(_visible_output(o) for o in cell.get("outputs", [])):
            blocks.append(("content", 0, ""))
    return blocks


def empty_headings(nb: Any) -> list[str]:
    """Headings with nothing visible under them before the next heading of the same or a higher level
    (a subheading counts as content; an empty subheading is reported itself)."""
    blocks = page_blocks(nb)
    empty = []
    for i, (kind, level, text) in enumerate(blocks):
        if kind != "heading":
            continue
        following = blocks[i + 1 :]
        end = next((j for j, b in enumerate(following) if b[0] == "heading" and b[1] <= level), len(following))
        if not following[:end]:
            empty.append(f"{'#' * level} {text}")
    return empty


def dropped_outputs(nb: Any) -> list[int]:
    """Indices of cells tagged remove_cell whose visible output nbconvert would drop with them."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and REMOVE_CELL in _tags(cell)
        and any(_visible_output(o) for o in cell.get("outputs", []))
    ]


def check_page(nb: Any, name: str) -> None:
    """Raise NotebookCheckError naming `name` (the notebook) and every problem found."""
    problems = [f"heading '{h}' has nothing under it (hidden or empty output?)" for h in empty_headings(nb)]
    for i in dropped_outputs(nb):
        cell = nb.cells[i]
        first = next((line for line in str(cell.source).splitlines() if line.strip()), "")
        shown = _describe(next(o for o in cell.outputs if _visible_output(o)))
        problems.append(
            f"the cell starting {first[:60]!r} is tagged remove_cell but shows {shown}, which nbconvert "
            "drops with the cell; tag it remove_input (hide the code, keep the output)"
        )
    if problems:
        raise NotebookCheckError(f"report notebook {name}: " + "; ".join(problems))
