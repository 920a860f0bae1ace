# Decoder-free representation learning on dSprites (Sec. 3.1, Fig. 5).
# data (render or read the npz, cache bit-packed) -> train (one job per seed, checkpointed, GPU when
# present) -> evaluate (one `dsprites` cube: training curves, factor-MI scores vs a random encoder,
# Fig. 5 tuning data) -> report section reports/dsprites.py.
DSPRITES = stage_config("dsprites")
DSPRITES_DIR = f"{RESULTS}/dsprites"
DSPRITES_SEEDS = [config["seed"] + i for i in range(DSPRITES["seeds"])]


# The nested dict vbmi.dsprites.train.config_from_dict takes (the seed comes from the wildcard).
DSPRITES_OBJECTIVE_KEYS = (
    "tc_delta",
    "smooth_gamma",
    "noise_var",
    "dual_lr",
    "lambda_tc_init",
    "lambda_smooth_init",
    "lambda_max",
    "tc_ramp_start",
    "tc_ramp_steps",
    "dual",
    "lambda_min",
    "tc_lower",
    "tc_fixed",
    "ijs_memory",
    "tc_memory",
    "memory_start",
    "memory_tc_delta",
)
DSPRITES_TRAIN = {
    "steps": DSPRITES["steps"],
    "batch_size": DSPRITES["batch_size"],
    "lr": DSPRITES["lr"],
    "grad_clip": DSPRITES["grad_clip"],
    "memory_lr_scale": DSPRITES["memory_lr_scale"],
    "log_every": DSPRITES["log_every"],
    "checkpoint_every_s": DSPRITES["checkpoint_every_s"],
    "encoder": {"latent_dim": DSPRITES["latent_dim"], "q_hidden": DSPRITES["q_hidden"]},
    "objective": {k: DSPRITES[k] for k in DSPRITES_OBJECTIVE_KEYS},
}


if is_active("dsprites"):

    rule dsprites_data:
        output:
            cache=f"{DSPRITES_DIR}/data.npz",
        log:
            log_path("dsprites/data"),
        benchmark:
            bench_path("dsprites/data")
        priority: 1  # a chain (data, train, evaluate): started early, it does not end the run alone
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        params:
            config=rule_config("dsprites.npz", "dsprites.n_images", "seed"),
        script:
            "../scripts/dsprites_data.py"

    rule dsprites_train:
        input:
            data=rules.dsprites_data.output.cache,
        output:
            model=f"{DSPRITES_DIR}/seed{{seed}}/model.pt",
        log:
            log_path("dsprites/train_seed{seed}"),
        benchmark:
            bench_path("dsprites/train_seed{seed}")
        wildcard_constraints:
            seed=r"\d+",
        priority: 1  # a chain (data, train, evaluate): started early, it does not end the run alone
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        resources:
            gpu=gpu_resources(),
        params:
            config=rule_config(),
            seed=lambda wildcards: int(wildcards.seed),
            # Not an output: Snakemake would delete it when a job fails, and it is what a rerun resumes from.
            checkpoint=f"{DSPRITES_DIR}/seed{{seed}}/checkpoint.pt",
            train=DSPRITES_TRAIN,
        script:
            "../scripts/dsprites_train.py"

    rule dsprites_evaluate:
        input:
            data=rules.dsprites_data.output.cache,
            models=expand(rules.dsprites_train.output.model, seed=DSPRITES_SEEDS),
        output:
            cube=report(
                cube_path("dsprites"),
                caption="../report/dsprites.rst",
                category="dSprites",
            ),
        log:
            log_path("dsprites/evaluate"),
        benchmark:
            bench_path("dsprites/evaluate")
        conda:
            "../../envs/torch.yaml"
        threads: threads_per_job()
        resources:
            gpu=gpu_resources(),
        params:
            config=rule_config("dsprites", "seed"),
            seeds=DSPRITES_SEEDS,
        script:
            "../scripts/dsprites_evaluate.py"

    register_section(
        "dsprites",
        "reports/dsprites.py",
        {"dsprites_cube": rules.dsprites_evaluate.output.cube},
        "Fig. 5: decoder-free representation learning on dSprites",
    )
