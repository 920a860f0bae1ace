# Performance section of the HTML report: the bench's JSONs (python -m bench / make bench; committed
# references under bench/reference/, e.g. a GPU run) and this run's per-rule times from the
# `benchmark:` files every heavy rule writes under {results_dir}/benchmarks/.
# Include after the stage rule files and before report.smk (it waits for every registered cube, so
# the stages' benchmark files exist when it reads them).

# "performance" is a built-in section (common.smk: BUILTIN_SECTIONS), not an activate stage: it is
# cheap, so it has no switch.


rule performance_cube:
    input:
        # Bench JSONs present when the workflow is parsed: committed references, then this run's
        # results_dir (relative to the working directory, so a run elsewhere never reads the repo's).
        bench_jsons=sorted(map(str, REPO.glob("bench/reference/*.json")))
        + sorted(map(str, Path(RESULTS).glob("bench/bench_default_*.json"))),
        # Not read: ordering only, so every stage's benchmark files are complete before the summary.
        stage_cubes=all_section_cubes(),
    output:
        cube=cube_path("performance"),
    log:
        log_path("performance_cube"),
    conda:
        "../../envs/report.yaml"
    params:
        config=rule_config(),
        benchmarks_dir=f"{RESULTS}/benchmarks",
    script:
        "../scripts/performance_cube.py"


register_section(
    "performance",
    "reports/performance.py",
    {"performance_cube": rules.performance_cube.output.cube},
    "Performance: training, Monte Carlo and memory benchmarks, and per-rule times",
)
