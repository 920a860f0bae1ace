"""Render one report section: jupytext (py:percent) -> papermill (cube paths injected) -> HTML, code hidden."""

import os
import pathlib
import sys

import jupytext
import nbformat
import papermill
import xarray as xr
from _notebook import check_page
from _script import _SRC, REPO, setup
from nbconvert import HTMLExporter
from traitlets.config import Config

config = setup(snakemake)  # noqa: F821 (injected by Snakemake)
smk = snakemake  # noqa: F821

parameters = {}
for name in smk.params.parameters:
    value = getattr(smk.input, name)
    parameters[name] = [str(v) for v in value] if isinstance(value, list) else str(value)
print(f"rendering {smk.input.notebook} with parameters {parameters}")

# The kernel is a child process: give it vbmi (even when not installed) and one thread per job.
env_path = os.pathsep.join(p for p in (str(_SRC), os.environ.get("PYTHONPATH", "")) if p)
os.environ["PYTHONPATH"] = env_path
os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")

notebook = jupytext.read(smk.input.notebook)
kernel = config["report"]["kernel"]
notebook.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
executed = papermill.execute_notebook(
    notebook,
    str(smk.output.notebook),
    parameters=parameters,
    kernel_name=kernel,
    cwd=os.getcwd(),  # the workdir, so relative cube paths resolve
    execution_timeout=int(config["report"]["cell_timeout_s"]),
    progress_bar=False,
    log_output=True,
    stdout_file=sys.stdout,
    stderr_file=sys.stderr,
)

# A link back to the index and the provenance of the section's cubes above its own content.
cube_paths = [p for v in parameters.values() for p in (v if isinstance(v, list) else [v]) if p.endswith(".nc")]
stamps = set()
for path in cube_paths:
    with xr.open_dataset(path) as cube:  # lazy: only the attributes are read
        stamps.add(f"scale **{cube.attrs.get('scale')}**, device **{cube.attrs.get('device')}**, "
                   f"commit `{str(cube.attrs.get('git_commit'))[:12]}`")
banner = "[&larr; Report index](index.html)"
if stamps:
    banner += " &middot; cubes from " + "; ".join(sorted(stamps))
executed = nbformat.read(str(smk.output.notebook), as_version=4)
# Fail rather than publish a page with an empty section or output that nbconvert would drop.
check_page(executed, os.path.relpath(str(smk.input.notebook), REPO))
executed.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
html_config = Config()
html_config.TagRemovePreprocessor.enabled = True
html_config.TagRemovePreprocessor.remove_cell_tags = {"remove_cell"}
html_config.TagRemovePreprocessor.remove_input_tags = {"remove_input"}
exporter = HTMLExporter(config=html_config, exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
body, _ = exporter.from_notebook_node(executed, resources={"metadata": {"name": smk.params.title}})
pathlib.Path(smk.output.html).write_text(body, encoding="utf-8")
print(f"wrote {smk.output.html}")
