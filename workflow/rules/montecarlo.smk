# Optimal-critic experiments: no training, exact critics on the d = 20 Gaussian, so the only
# error is each bound's own bias and variance.
#   Fig. 3: bias / variance / MSE of every bound's value -> cubes/montecarlo.nc
#   Fig. 4: MSE of every bound's encoder gradient, best alpha map -> cubes/gradients.nc
# Each is one single-threaded job of a few minutes at the default scale (replicates are a tensor dim).


if is_active("montecarlo"):

    rule mc_optimal_critic:
        output:
            cube=report(
                cube_path("montecarlo"),
                caption="../report/montecarlo.rst",
                category="Optimal critics (Fig. 3)",
            ),
        log:
            log_path("mc_optimal_critic"),
        benchmark:
            bench_path("mc_optimal_critic")
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        resources:
            gpu=gpu_resources(),
        params:
            config=rule_config("montecarlo", "seed"),
        script:
            "../scripts/montecarlo.py"

    register_section(
        "montecarlo",
        "reports/montecarlo.py",
        {"mc_cube": rules.mc_optimal_critic.output.cube},
        "Fig. 3: bias, variance and MSE of MI bounds with the optimal critic",
    )


if is_active("gradients"):

    rule mc_gradients:
        output:
            cube=report(
                cube_path("gradients"),
                caption="../report/gradients.rst",
                category="Gradient accuracy (Fig. 4)",
            ),
        log:
            log_path("mc_gradients"),
        benchmark:
            bench_path("mc_gradients")
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        resources:
            gpu=gpu_resources(),
        params:
            config=rule_config("gradients", "seed"),
        script:
            "../scripts/gradients.py"

    register_section(
        "gradients",
        "reports/gradients.py",
        {"grad_cube": rules.mc_gradients.output.cube},
        "Fig. 4: gradient accuracy of MI bounds and the best alpha per MI and batch size",
    )
