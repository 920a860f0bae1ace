# The claims page: every empirical claim of the paper about Figs. 2-7, Table 3 and Sec. 3.1, checked on
# the cubes of the active stages (vbmi.claims); a stage that is switched off leaves its claims
# "not tested at this scale". claims.json is the machine-readable list; reports/claims.py renders it.
# Its inputs are the stages' outputs, so this file is included after the stage files.

# Cube group (vbmi.claims.CUBE_GROUPS) -> the cube(s) of its stage, for the active stages only.
CLAIMS_CUBES = {}
if is_active("training"):
    CLAIMS_CUBES["fig2"] = expand(rules.train_fig2.output.cube, part=FIG2_PARTS)
if is_active("sweep"):
    CLAIMS_CUBES["sweep"] = rules.sweep_merge.output.cube
if is_active("montecarlo"):
    CLAIMS_CUBES["montecarlo"] = rules.mc_optimal_critic.output.cube
if is_active("gradients"):
    CLAIMS_CUBES["gradients"] = rules.mc_gradients.output.cube
if is_active("dsprites"):
    CLAIMS_CUBES["dsprites"] = rules.dsprites_evaluate.output.cube


rule claims:
    input:
        **CLAIMS_CUBES,
    output:
        json=report_path("claims.json"),
    log:
        log_path("claims"),
    conda:
        "../../envs/report.yaml"
    threads: 1
    params:
        config=rule_config(),
    script:
        "../scripts/claims.py"


# The notebook's parameters: the JSON, and the cubes it was computed from (listed on the page).
register_section(
    "claims",
    "reports/claims.py",
    {
        "claims_json": rules.claims.output.json,
        **{
            f"{group}_cubes": paths if isinstance(paths, list) else [paths]
            for group, paths in CLAIMS_CUBES.items()
        },
    },
    "Claims of the paper: which hold at this scale",
)
