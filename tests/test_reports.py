"""Every report notebook (reports/*.py) executes under papermill on small fixture cubes.

Convention (one file per notebook, so helpers never edit the same file):
    tests/report_fixtures/<notebook stem>.py  defines
        def build(tmp_dir: pathlib.Path) -> dict[str, str | list[str]]
    which writes small cubes under tmp_dir with vbmi.results.write_cube (same kind, dims and variables
    as the real stage writes) and returns the notebook's parameters (parameter name -> cube path(s)).
Helpers shared by several fixture files go in tests/report_fixtures/_<name>.py (importable by name).
A notebook without a fixture file fails here, as does one whose parameters cell holds anything but
paths, or one that no workflow/rules/*.smk registers as a report section.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib
import re
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "reports").glob("*.py"))
FIXTURES = pathlib.Path(__file__).resolve().parent / "report_fixtures"


def _load_builder(stem: str):
    path = FIXTURES / f"{stem}.py"
    if not path.is_file():
        pytest.fail(
            f"reports/{stem}.py has no fixture: add tests/report_fixtures/{stem}.py with "
            "build(tmp_dir) -> dict of notebook parameters"
        )
    if str(FIXTURES) not in sys.path:  # shared helpers (tests/report_fixtures/_*.py) import by name
        sys.path.insert(0, str(FIXTURES))
    spec = importlib.util.spec_from_file_location(f"report_fixture_{stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def _parameters_cell(notebook_path: pathlib.Path) -> str:
    import jupytext

    nb = jupytext.read(notebook_path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{notebook_path.name}: expected exactly one cell tagged 'parameters', found {len(cells)}"
    return cells[0].source


# Text each notebook must show on its fixture cubes (in an output, where a reader sees it).
EXPECTED_OUTPUT: dict[str, list[str]] = {
    # the fixture's diverged run is a status, not a number; its exploded run is not disguised by rounding
    # ... and joint critics' own schedule is stated (the fixture's parts have 4 and 3 steps per level)
    "fig2_training": ["diverged at step 7", "-3.40e+07", "separable: 4 steps per level, joint: 3 steps per level"],
    # learning rates in scientific notation; cells whose every run diverged say so
    "table3_sweep": ["lr 1e-3", "runs diverged, first at step 10"],
    "performance": ["E = 8", "E = 64", "vbmi >= 1.0x the plain loop"],  # each engine target, met or missed
}
# Section pages open with their own verdicts from the claims module.
CLAIMS_SECTIONS: dict[str, str] = {
    "fig2_training": "training",
    "table3_sweep": "sweep_table3",
    "fig6_fig7": "sweep_fig6_fig7",
    "montecarlo": "montecarlo",
    "gradients": "gradients",
}
ISSUE_REF = re.compile(r"\bissues?\s*#?\d+", re.IGNORECASE)
# "A claim is code": on these pages every verdict a reader sees comes from vbmi.claims (the section_html
# cell); the rest of the page shows numbers only, so it can never contradict the verdicts.
VERDICTS_ONLY_FROM_CLAIMS = ("fig2_training", "table3_sweep", "fig6_fig7", "montecarlo", "gradients")
VERDICT_WORDS = re.compile(r"\b(holds?|does not hold|not tested at this scale|reproduced|reproduces|violated)\b",
                           re.IGNORECASE)


def _own_code_cells(nb) -> list:
    """Code cells other than the parameters cell and the cell that displays the claims module's verdicts."""
    return [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
            and "claims.section_html(" not in c.source]


def _output_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if "text" in o:
            parts.append(o["text"] if isinstance(o["text"], str) else "".join(o["text"]))
        for mime in ("text/markdown", "text/html", "text/plain"):
            v = o.get("data", {}).get(mime)
            if v:
                parts.append(v if isinstance(v, str) else "".join(v))
    return "\n".join(parts)


def test_there_are_notebooks() -> None:
    assert any(p.stem == "about" for p in NOTEBOOKS)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_parameters_cell_holds_only_paths(notebook: pathlib.Path) -> None:
    tree = ast.parse(_parameters_cell(notebook))
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, (
            f"{notebook.name}: the parameters cell may only assign paths, found {ast.dump(node)[:80]}"
        )
        value = node.value
        ok = (isinstance(value, ast.Constant) and isinstance(value.value, str)) or (
            isinstance(value, ast.List)
            and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts)
        )
        assert ok, f"{notebook.name}: parameter {ast.unparse(node.targets[0])} is not a path or list of paths"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_registered_by_the_workflow(notebook: pathlib.Path) -> None:
    rules = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    assert f'"reports/{notebook.name}"' in rules, (
        f"reports/{notebook.name} is not registered: call register_section(..., \"reports/{notebook.name}\", ...)"
    )


@pytest.mark.parametrize("stem", sorted(CLAIMS_SECTIONS))
def test_section_pages_open_with_their_verdicts(stem: str) -> None:
    import jupytext

    nb = jupytext.read(REPO / "reports" / f"{stem}.py")
    code = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    first = code[0]
    assert f'claims.section_html("{CLAIMS_SECTIONS[stem]}"' in first.source, (
        f"reports/{stem}.py: the first cell after the parameters must display claims.section_html(...)"
    )
    assert "remove_input" in first.metadata.get("tags", [])


@pytest.mark.parametrize("stem", VERDICTS_ONLY_FROM_CLAIMS)
def test_section_pages_compute_no_verdicts_of_their_own(stem: str) -> None:
    import jupytext

    nb = jupytext.read(REPO / "reports" / f"{stem}.py")
    hits = [m.group(0) for c in _own_code_cells(nb) for m in VERDICT_WORDS.finditer(c.source)]
    assert not hits, f"reports/{stem}.py writes verdict words outside vbmi.claims: {hits}"


def test_verdict_words_are_caught() -> None:
    # the old pages' own checks printed these; the words of a claims page must be caught too
    for text in ("-> **holds**.", "Fig. 6's finding **does not hold here** at this level", "not tested at this scale",
                 "the trend is reproduced", "(VIOLATED)"):
        assert VERDICT_WORDS.search(text), text
    for text in ("threshold", "household", "placeholders", "3 of 8 excluded", "row closest to the true MI"):
        assert not VERDICT_WORDS.search(text), text


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_no_issue_numbers_where_a_reader_looks(notebook: pathlib.Path) -> None:
    hits = ISSUE_REF.findall(notebook.read_text())
    assert not hits, f"reports/{notebook.name} refers to {hits}: say what is meant instead"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_on_fixture_cubes(notebook: pathlib.Path, tmp_path: pathlib.Path) -> None:
    import jupytext
    import papermill

    build = _load_builder(notebook.stem)
    cube_dir = tmp_path / "cubes"
    cube_dir.mkdir()
    parameters = build(cube_dir)
    declared = {ast.unparse(n.targets[0]) for n in ast.parse(_parameters_cell(notebook)).body}
    assert set(parameters) == declared, (
        f"fixture parameters {sorted(parameters)} != notebook parameters {sorted(declared)}"
    )
    for value in parameters.values():
        for path in value if isinstance(value, list) else [value]:
            assert pathlib.Path(path).is_file(), f"fixture did not write {path}"

    nb = jupytext.read(notebook)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    os.environ["OMP_NUM_THREADS"] = "1"
    src = str(REPO / "src")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    executed = papermill.execute_notebook(
        nb,
        str(tmp_path / f"{notebook.stem}.ipynb"),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(tmp_path),
        execution_timeout=300,
        progress_bar=False,
    )
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert sum(len(c.get("outputs", [])) for c in executed.cells) > 0, "the notebook displayed nothing"
    # nbconvert drops `remove_cell` cells whole: what they display would never reach the page.
    lost = [i for i, c in enumerate(executed.cells) if "remove_cell" in c.metadata.get("tags", [])
            and any(o.get("output_type") in ("display_data", "execute_result") for o in c.get("outputs", []))]
    assert not lost, f"cells {lost} are tagged remove_cell but display output: tag them remove_input"
    shown = "\n".join(_output_text(c) for c in executed.cells)
    for text in EXPECTED_OUTPUT.get(notebook.stem, []):
        assert text in shown, f"{notebook.name} on its fixture does not show {text!r}"
    assert not ISSUE_REF.search(shown), f"{notebook.name} shows {ISSUE_REF.search(shown).group(0)!r} to the reader"
    if notebook.stem in VERDICTS_ONLY_FROM_CLAIMS:
        own = "\n".join(_output_text(c) for c in _own_code_cells(executed))
        assert not VERDICT_WORDS.search(own), (
            f"{notebook.name} shows {VERDICT_WORDS.search(own).group(0)!r} outside the claims module's verdicts")
