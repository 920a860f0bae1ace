# Estimators on tasks with known MI (vbmi.tasks): estimate_mi's critic, KSG and CCA on every task of the
# suite, several seeds each; one single-threaded job (a few minutes at the default scale).
#   -> cubes/estimators.nc (dims task x method x seed: estimate, interval, seconds, p-value; true_mi(task))


if is_active("estimators"):

    rule estimators_suite:
        output:
            cube=report(
                cube_path("estimators"),
                caption="../report/estimators.rst",
                category="Estimators on tasks with known MI",
            ),
        log:
            log_path("estimators_suite"),
        benchmark:
            bench_path("estimators_suite")
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        params:
            config=rule_config("estimators"),
        script:
            "../scripts/estimators.py"

    register_section(
        "estimators",
        "reports/estimators.py",
        {"est_cube": rules.estimators_suite.output.cube},
        "Estimators on tasks with known MI",
    )
