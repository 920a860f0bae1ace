"""Report pages never publish an empty section or drop a cell's output (workflow/scripts/_notebook.py)."""

from __future__ import annotations

import ast
import sys

import jupytext
import nbformat
import pytest

from _pipeline import REPO, SCRIPTS

sys.path.insert(0, str(SCRIPTS))
from _notebook import NotebookCheckError, check_page, dropped_outputs, empty_headings  # noqa: E402

v4 = nbformat.v4


def _shown(source: str, tags: list[str] | None = None, text: str = "a table") -> nbformat.NotebookNode:
    """A code cell that displayed `text` (empty text: displayed nothing)."""
    cell = v4.new_code_cell(source, metadata={"tags": tags or []})
    if text:
        cell.outputs = [v4.new_output("display_data", data={"text/plain": text})]
    return cell


def _nb(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return v4.new_notebook(cells=list(cells))


def test_heading_with_visible_output_passes() -> None:
    nb = _nb(v4.new_markdown_cell("# Title\n\nIntro."), v4.new_markdown_cell("## Findings"), _shown("display(x)", ["remove_input"]))
    assert empty_headings(nb) == []
    check_page(nb, "ok.py")


def test_heading_whose_only_output_was_removed_is_empty() -> None:
    """The bug: a remove_cell cell's display() vanished, leaving 'Findings' with nothing under it."""
    nb = _nb(
        v4.new_markdown_cell("# Title\n\nIntro."),
        v4.new_markdown_cell("## Findings, with the numbers behind them"),
        _shown("display(findings)", ["remove_cell"]),
        v4.new_markdown_cell("## Next"),
        _shown("display(y)"),
    )
    assert empty_headings(nb) == ["## Findings, with the numbers behind them"]
    assert dropped_outputs(nb) == [2]
    with pytest.raises(NotebookCheckError, match=r"table3_sweep\.py.*'## Findings, with the numbers behind them'"):
        check_page(nb, "reports/table3_sweep.py")


def test_heading_followed_by_empty_output_or_a_same_level_heading_is_empty() -> None:
    nb = _nb(
        v4.new_markdown_cell("# Title"),
        v4.new_markdown_cell("## A"),
        _shown("compute()", ["remove_input"], text=""),  # ran, showed nothing
        v4.new_markdown_cell("## B\n### B.1\ntext"),
        v4.new_markdown_cell("## C"),
    )
    # Title holds subsections; B holds B.1 (which has text); A and C (at the end) hold nothing
    assert empty_headings(nb) == ["## A", "## C"]


def test_subheading_counts_for_its_parent_and_code_fences_are_not_headings() -> None:
    nb = _nb(v4.new_markdown_cell("# T\n```yaml\n# not a heading\n```"), v4.new_markdown_cell("## S\nbody"))
    assert empty_headings(nb) == []


def test_stderr_warnings_are_not_content() -> None:
    cell = v4.new_code_cell("import x", metadata={"tags": ["remove_input"]})
    cell.outputs = [v4.new_output("stream", name="stderr", text="DeprecationWarning: ...")]
    assert empty_headings(_nb(v4.new_markdown_cell("## S"), cell)) == ["## S"]
    assert dropped_outputs(_nb(cell)) == []


def _shows_output(node: ast.stmt) -> bool:
    """A top-level statement that displays something: display(...)/print(...)/plt.show() or a bare
    expression whose value a notebook shows (its last line)."""
    if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Call):
        return False
    func = node.value.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name in {"display", "print", "show"}


@pytest.mark.parametrize("notebook", sorted((REPO / "reports").glob("*.py")), ids=lambda p: p.stem)
def test_report_cells_that_display_are_not_removed_whole(notebook) -> None:
    """Cells whose output a reader must see are tagged remove_input; only silent cells are remove_cell."""
    nb = jupytext.read(notebook)
    offending = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "remove_cell" not in cell.metadata.get("tags", []):
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        if any(_shows_output(stmt) for stmt in ast.parse(source).body):
            offending.append(f"cell {i}: {cell.source.splitlines()[0][:60]!r}")
    assert not offending, f"{notebook.name}: remove_cell cells that display output: {offending}"


def test_render_script_fails_naming_notebook_and_heading(tmp_path) -> None:
    """Through workflow/scripts/render_notebook.py: a heading whose only output sat in a remove_cell cell
    stops the render, the console names the notebook and the heading, and no page is written."""
    from _pipeline import run_workflow_script

    notebook = tmp_path / "empty_section.py"
    notebook.write_text(
        "# %% [markdown]\n# # A page\n#\n# Intro.\n\n"
        "# %% [markdown]\n# ## Findings\n\n"
        '# %% tags=["remove_cell"]\nprint("the findings")\n'
    )
    html = tmp_path / "page.html"
    proc = run_workflow_script(
        "render_notebook.py",
        log=tmp_path / "render.log",
        input={"notebook": str(notebook)},
        output={"html": str(html), "notebook": str(tmp_path / "page.ipynb")},
        params={
            "config": {"scale": "test", "device": "cpu", "report": {"kernel": "python3", "cell_timeout_s": 120}},
            "parameters": [],
            "title": "test",
        },
        cwd=tmp_path,
    )
    assert proc.returncode != 0
    console = proc.stderr
    assert "vbmi: rule render_notebook failed" in console, console + (tmp_path / "render.log").read_text()
    assert "empty_section.py" in console and "'## Findings' has nothing under it" in console, console
    assert "tagged remove_cell but shows stream output 'the findings'" in console, console
    assert not html.exists()
