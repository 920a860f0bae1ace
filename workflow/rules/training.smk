# Critic training: Fig. 2 (estimate vs step for every bound) and the Appendix C.1 sweep
# (Table 3, Figs. 6-7). Every job trains an ensemble of runs as batched models
# (vbmi.experiments.training.train_ensemble), checkpoints under {results_dir}/checkpoints so a killed job
# rerun with --rerun-incomplete resumes where it stopped, and writes one cube.
#   Fig. 2: one job per (critic, dataset)  -> cubes/training/fig2_<critic>_<dataset>.nc
#   sweep:  sweep.max_members_per_job / sweep.max_cost_per_job cut the runs into jobs
#           -> cubes/sweep/part<i>.nc -> merged cubes/sweep.nc
# Run planning is torch-free (numpy only), so building the DAG (`snakemake -n`) never imports torch.
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))
from vbmi.experiments.plan import fig2_parts, sweep_parts

TRAINING = stage_config("training")
SWEEP = stage_config("sweep")
FIG2_PARTS = list(fig2_parts(TRAINING, config["seed"]))
SWEEP_PARTS = list(range(len(sweep_parts(SWEEP, config["seed"]))))


if is_active("training"):

    rule train_fig2:
        output:
            cube=report(
                cube_path("training/fig2_{part}"),
                caption="../report/training.rst",
                category="Training (Fig. 2)",
                labels={"part": "{part}"},
            ),
        log:
            log_path("training/fig2_{part}"),
        benchmark:
            bench_path("training/fig2_{part}")
        wildcard_constraints:
            part="|".join(FIG2_PARTS),
        # the longest jobs of the default scale: started first, so the short ones fill the cores around them
        priority: 2
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        resources:
            gpu=gpu_resources(),
        params:
            config=rule_config("training", "seed"),
            # Not an output: Snakemake would delete it when a job fails, and a rerun resumes from it.
            checkpoint=f"{RESULTS}/checkpoints/training/fig2_{{part}}.pt",
        script:
            "../scripts/train_fig2.py"

    register_section(
        "training",
        "reports/fig2_training.py",
        {"fig2_cubes": expand(rules.train_fig2.output.cube, part=FIG2_PARTS)},
        "Fig. 2: MI estimates during training on the Gaussian and cubic staircases",
    )


if is_active("sweep"):

    rule train_sweep:
        output:
            cube=cube_path("sweep/part{part}"),
        log:
            log_path("sweep/part{part}"),
        benchmark:
            bench_path("sweep/part{part}")
        wildcard_constraints:
            part=r"\d+",
        priority: 1  # next longest after Fig. 2's
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        resources:
            gpu=gpu_resources(),
        params:
            # figure_levels only chooses what the figures show (sweep_merge): no retraining for it.
            config=rule_config("sweep", "seed", omit=["sweep.figure_levels"]),
            checkpoint=f"{RESULTS}/checkpoints/sweep/part{{part}}.pt",
        script:
            "../scripts/train_sweep.py"

    rule sweep_merge:
        input:
            parts=expand(rules.train_sweep.output.cube, part=SWEEP_PARTS),
        output:
            cube=report(
                cube_path("sweep"),
                caption="../report/sweep.rst",
                category="Sweep (Table 3, Figs. 6-7)",
            ),
        log:
            log_path("sweep/merge"),
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        params:
            config=rule_config("sweep", "seed"),
        script:
            "../scripts/sweep_merge.py"

    register_section(
        "sweep_table3",
        "reports/table3_sweep.py",
        {"sweep_cube": rules.sweep_merge.output.cube},
        "Table 3: best estimates of the hyperparameter sweep, beside the paper's",
    )
    register_section(
        "sweep_fig6_fig7",
        "reports/fig6_fig7.py",
        {"sweep_cube": rules.sweep_merge.output.cube},
        "Figs. 6 and 7: bias vs variance across architectures; I_alpha vs other interpolations",
    )
