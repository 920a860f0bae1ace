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
