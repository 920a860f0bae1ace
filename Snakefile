# vbmi: reproduce "On Variational Bounds of Mutual Information" (Poole et al., ICML 2019).
#   snakemake --cores all --workflow-profile workflow/profiles/default        # default scale
#   snakemake ... --configfile workflow/scales/paper.yaml                      # paper scale
# Outputs: {results_dir}/cubes/*.nc, {results_dir}/report/index.html, and
# `snakemake --report report.html` for the standard report with provenance.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


# common.smk validates the config (a bad key stops here, before any job) and defines every helper.
include: "workflow/rules/common.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/montecarlo.smk"
include: "workflow/rules/dsprites.smk"
include: "workflow/rules/estimators.smk"  # estimators on tasks with known MI (vbmi.tasks)
# After the stages (it waits for their cubes, so their benchmark files are complete).
include: "workflow/rules/bench.smk"
include: "workflow/rules/claims.smk"
# Last: it renders every section the stage files registered, then the index.
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        rules.render_index.output.html,


# A failed job's outputs are deleted (e.g. a section page that failed to re-render): drop an index of
# an earlier run that would link to a missing page (common.smk: prune_report_index).
onerror:
    prune_report_index()
