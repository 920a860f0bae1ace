# Shared helpers for all the .smk files: config validation, output paths, resources, report sections.
# The .smk files call these instead of retyping paths or reading config keys directly.
#
# How a stage plugs in: workflow/rules/<stage>.smk holds rules shaped like the body below, here of
# a rule mc_optimal_critic (its header line is left out because `snakemake --lint` greps comments too;
# report.smk has complete examples):
#       output:
#           cube=cube_path("montecarlo"),          # {results_dir}/cubes/montecarlo.nc
#       log:
#           log_path("mc_optimal_critic"),         # {results_dir}/logs/...log
#       benchmark:
#           bench_path("mc_optimal_critic"),       # {results_dir}/benchmarks/...tsv
#       params:
#           config=rule_config("montecarlo", "seed"),  # what the job reads: a change reruns it
#       threads: threads_per_job()
#       resources:
#           gpu=gpu_resources(),
#       conda:
#           "../../envs/torch.yaml"
#       script:
#           "../scripts/montecarlo.py"             # cfg = setup(snakemake) (= params.config); save_cube
#
#   if is_active("montecarlo"):                    # the rules may sit inside this guard too
#       register_section("montecarlo", "reports/montecarlo.py",
#                        {"mc_cube": rules.mc_optimal_critic.output.cube}, "Fig. 3: ...")

import json
import math
import re
import sys
from pathlib import Path

import jsonschema
import yaml

# The repository root (directory of the root Snakefile); notebooks and schemas are found from here,
# so the workflow also runs with `snakemake -s <repo>/Snakefile --directory <elsewhere>`.
REPO = Path(workflow.basedir)
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"

# Sections of the HTML report that are not experiment stages (no activate switch): the verdicts on
# the paper's claims (claims.smk), the run's provenance (report.smk) and the benchmarks/per-rule times
# (bench.smk). The index lists claims first and the appendix sections last (APPENDIX_SECTIONS).
BUILTIN_SECTIONS = ("claims", "about", "performance")
APPENDIX_SECTIONS = ("performance",)


class ConfigError(ValueError):
    """config.yaml (plus any --configfile/--config overrides) does not match the schema."""


def _dotted(path):
    """Config key path as written in messages: report.title, montecarlo.alphas[2]."""
    out = ""
    for part in path:
        out += (
            f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
        )
    return out or "<top level>"


def _lookup(cfg, path):
    for key in path:
        cfg = cfg[key]
    return cfg


def _format_error(error, cfg=None):
    """One line per problem, always naming the full config key."""
    where = list(error.absolute_path)
    # Schema nodes may carry their own message (x-vbmi-message); {bound} is the bound entry's name.
    message = (
        error.schema.get("x-vbmi-message") if isinstance(error.schema, dict) else None
    )
    if message:
        entry = error.instance
        if not isinstance(entry, dict) and cfg is not None and where:
            entry = _lookup(cfg, where[:-1])
        bound = entry.get("bound") if isinstance(entry, dict) else None
        return f"config key '{_dotted(where)}': {message.format(bound=bound)}"
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - allowed)
        return "; ".join(
            f"config key '{_dotted([*where, key])}' is not allowed (unknown key; "
            f"valid keys here: {', '.join(sorted(allowed)) or 'none'})"
            for key in unknown
        )
    if error.validator == "required":
        return f"config key '{_dotted(where)}': {error.message}"
    return f"config key '{_dotted(where)}' = {error.instance!r} is invalid: {error.message}"


def _validator_with_defaults(schema):
    """Draft 2020-12 validator that fills each missing key with its schema `default` while it checks."""
    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for key, spec in properties.items():
                if "default" in spec:
                    instance.setdefault(key, json.loads(json.dumps(spec["default"])))
        yield from check_properties(validator, properties, instance, subschema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})(schema)


def _non_finite(cfg, path=()):
    """Paths of every NaN or infinite number in `cfg` (JSON Schema's minimum/maximum let NaN through)."""
    if isinstance(cfg, float) and not math.isfinite(cfg):
        yield path
    elif isinstance(cfg, dict):
        for key, value in cfg.items():
            yield from _non_finite(value, (*path, key))
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _non_finite(value, (*path, i))


def _missing_files(cfg):
    """Problems with input files the config names, checked now rather than in a job that fails later."""
    dsprites = cfg.get("dsprites")
    if not (cfg.get("activate", {}).get("dsprites") and isinstance(dsprites, dict)):
        return []
    npz = dsprites.get("npz")
    if isinstance(npz, str) and not Path(npz).is_file():
        return [
            f"config key 'dsprites.npz' = {npz!r}: no such file (relative paths start in "
            f"{Path.cwd()}); give the path of the dSprites npz, or null to render the images"
        ]
    return []


def validate_config(cfg, schema_path=SCHEMA_PATH):
    """Check `cfg` against the schema, fill defaults in place, and raise ConfigError naming every bad key.

    Beyond the schema: every number must be finite, and files the config names must exist.
    Runs while the Snakefile is parsed, so a bad config stops the run before any job starts.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    non_finite = list(_non_finite(cfg))
    problems = [
        f"config key '{_dotted(p)}' = {_lookup(cfg, p)!r} is not a finite number"
        for p in non_finite
    ]
    errors = sorted(
        (
            e
            for e in _validator_with_defaults(schema).iter_errors(cfg)
            if tuple(e.absolute_path) not in non_finite
        ),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    problems += [_format_error(e, cfg) for e in errors]
    problems += _missing_files(cfg)
    if problems:
        lines = "\n  - ".join(problems)
        raise ConfigError(
            f"invalid configuration (schema: workflow/schemas/config.schema.yaml):\n  - {lines}"
        )


validate_config(config)

RESULTS = config["results_dir"]


class CubeFileError(RuntimeError):
    """A cube under {results_dir}/cubes exists but cannot be read; the message names it and the fix."""


def check_existing_cubes(results_dir=RESULTS):
    """Stop before any job if a cube on disk is unreadable (truncated by a full disk, a copy, a crash).

    Snakemake would take such a file as up to date, so every job reading it would fail on each rerun;
    deleting it makes Snakemake regenerate it. Opening a netCDF file reads its header and checks its
    length against the size HDF5 recorded, which is what a truncated file fails.
    """
    cubes = sorted(Path(results_dir).glob("cubes/**/*.nc"))
    if not cubes:
        return
    import netCDF4  # only when there are cubes; light (no torch)

    bad = []
    for path in cubes:
        try:
            netCDF4.Dataset(path, "r").close()
        except OSError as err:
            bad.append((path, err))
    if bad:
        listed = "\n".join(f"  - {path}: {err}" for path, err in bad)
        files = " ".join(str(path) for path, _ in bad)
        raise CubeFileError(
            f"unreadable result cube(s) (truncated or corrupt):\n{listed}\n"
            f"Delete them and rerun; Snakemake regenerates what is missing:\n  rm {files}"
        )


check_existing_cubes()


def cube_path(name):
    """Where the cube `name` lives: {results_dir}/cubes/<name>.nc (wildcards like {bound} pass through)."""
    return f"{RESULTS}/cubes/{name}.nc"


def log_path(name):
    """Log file of a job: {results_dir}/logs/<name>.log."""
    return f"{RESULTS}/logs/{name}.log"


def bench_path(name):
    """Snakemake `benchmark:` file of a job: {results_dir}/benchmarks/<name>.tsv."""
    return f"{RESULTS}/benchmarks/{name}.tsv"


def report_path(name):
    """A file of the HTML report: {results_dir}/report/<name>."""
    return f"{RESULTS}/report/{name}"


def rule_config(*keys, omit=()):
    """The part of the config a job depends on, for `params: config=rule_config(...)`.

    Every rule gets its config this way and its script reads only `snakemake.params` (setup() in
    workflow/scripts/_script.py returns `params.config`), so Snakemake reruns a job exactly when
    a key it reads changes. `keys` are top-level keys or dotted paths ("report.kernel"), `omit`
    dotted paths to leave out of them; `scale` and `device` are always included (every cube records
    them). The result keeps the config's nesting and is a copy, so a script cannot change `config`.
    """
    out = {}
    for key in ("scale", "device", *keys):
        *parents, leaf = key.split(".")
        node, target = config, out
        for part in parents:
            node = node[part]
            target = target.setdefault(part, {})
        target[leaf] = json.loads(json.dumps(node[leaf]))
    for key in omit:
        *parents, leaf = key.split(".")
        target = out
        for part in parents:
            target = target[part]
        del target[leaf]
    return out


def stage_config(stage):
    """The validated config section of one stage (training, sweep, montecarlo, gradients, dsprites, report)."""
    if stage not in config["activate"] and stage != "report":
        raise ValueError(
            f"unknown stage {stage!r}; stages: {', '.join(config['activate'])}, report"
        )
    return config[stage]


def is_active(stage):
    """Whether config `activate.<stage>` switches the stage on."""
    return bool(config["activate"][stage])


def threads_per_job():
    """Threads each job declares (and its script passes to torch.set_num_threads)."""
    return config["threads_per_job"]


def gpu_resources():
    """Value for `resources: gpu=gpu_resources()` on rules that can use a GPU.

    1 only when config `device` is cuda, so a SLURM profile can map it to a GPU request; 0 for cpu and
    auto, so local and CPU runs are not constrained by a resource they do not have.
    """
    return 1 if config["device"] == "cuda" else 0


# ---- report sections -------------------------------------------------------------------------
# Each stage's .smk registers one section per report notebook, guarded by its activate flag:
#   if is_active("montecarlo"):
#       register_section("montecarlo", "reports/montecarlo.py",
#                        {"mc_cube": rules.mc_optimal_critic.output.cube}, "Fig. 3: ...")
# report.smk (included last) renders each one to {results_dir}/report/<name>.html and links it from
# the index. A section is named after its activate key, alone or with a suffix: sweep, sweep_table3.
SECTIONS = {}
_SECTION_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def section_stage(name):
    """The activate key a section belongs to (its name or its name's prefix); None for built-ins."""
    if name in BUILTIN_SECTIONS:
        return None
    for stage in config["activate"]:
        if name == stage or name.startswith(f"{stage}_"):
            return stage
    raise ValueError(
        f"report section {name!r} must be named after its stage: one of "
        f"{', '.join(config['activate'])}, optionally followed by _<suffix>"
    )


def register_section(name, notebook, cubes, title):
    """Add a report section: `notebook` (reports/*.py, relative to the repo) run with `cubes`.

    `cubes` maps the notebook's parameters-cell names to cube paths (a path or a list of paths);
    they become the render job's named inputs and are passed to papermill as strings.
    """
    if not isinstance(name, str) or not _SECTION_NAME.match(name):
        raise ValueError(f"report section name {name!r} is not snake_case")
    if name in SECTIONS:
        raise ValueError(f"report section {name!r} is registered twice")
    stage = section_stage(name)
    if stage is not None and not is_active(stage):
        raise ValueError(
            f"report section {name!r} registered while activate.{stage} is false; "
            f'guard the call with `if is_active("{stage}"):`'
        )
    path = REPO / notebook
    if not path.is_file():
        raise ValueError(f"report section {name!r}: notebook {path} does not exist")
    params = {}
    for key, value in cubes.items():
        if not key.isidentifier() or key == "notebook":
            raise ValueError(
                f"report section {name!r}: parameter name {key!r} is not a valid notebook variable"
            )
        params[key] = (
            [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
        )
    SECTIONS[name] = {
        "name": name,
        "title": str(title),
        "stage": stage,
        "group": "appendix" if name in APPENDIX_SECTIONS else "main",
        "notebook": str(path),
        "cubes": params,
    }


def index_sections():
    """Registered sections in the order the index lists them: claims, about, the stages in the order
    their files registered them, then the engineering appendix (APPENDIX_SECTIONS)."""
    front = ("claims", "about")

    def rank(section):
        name = section["name"]
        if name in front:
            return front.index(name)
        return len(front) + (section["group"] == "appendix")

    # sorted() is stable: sections of one rank keep their registration order
    return sorted(SECTIONS.values(), key=rank)


def section_inputs(wildcards):
    """Named inputs of one section's render job: its notebook and its cubes."""
    section = SECTIONS[wildcards.section]
    return {"notebook": section["notebook"], **section["cubes"]}


def section_title(wildcards):
    """The title a section was registered with."""
    return SECTIONS[wildcards.section]["title"]


def section_parameter_names(wildcards):
    """The notebook parameters (names of cube inputs) of one section."""
    return sorted(SECTIONS[wildcards.section]["cubes"])


def prune_report_index(results_dir=RESULTS):
    """After a failed run: remove the index (and manifest) if a page it links to no longer exists.

    Snakemake deletes the outputs of a job that fails, so a section page that failed to re-render is
    gone while the index of an earlier run still links to it. The index is rebuilt by the next run.
    """
    pages_dir = Path(results_dir) / "report"
    index, manifest = pages_dir / "index.html", pages_dir / "manifest.json"
    if not index.is_file():
        return
    try:
        pages = [s["html"] for s in json.loads(manifest.read_text())["sections"]]
    except (OSError, ValueError, KeyError, TypeError):
        pages = None  # no readable manifest: the index cannot be trusted either
    missing = (
        ["manifest.json"]
        if pages is None
        else [p for p in pages if not (pages_dir / p).is_file()]
    )
    if missing:
        index.unlink()
        manifest.unlink(missing_ok=True)
        print(
            f"Removed {index}: it linked to {', '.join(missing)}, which this failed run left "
            "missing; fix the error above and rerun to rebuild the report.",
            file=sys.stderr,
        )


def all_section_cubes():
    """Every cube (*.nc) of every registered section, in registration order, without duplicates
    (a section may also take other files, e.g. the claims page its claims.json)."""
    paths = []
    for section in SECTIONS.values():
        for value in section["cubes"].values():
            for path in value if isinstance(value, list) else [value]:
                if path.endswith(".nc") and path not in paths:
                    paths.append(path)
    return paths

# ---- stage-specific helper functions ---------------------------------------------------------
# `snakemake --lint` flags a .smk file that defines both rules and functions, so a stage's helper
# functions live here, each stage in its own block delimited by
#   # ---- <stage> helpers (owner: <stage> stage) ----
#   ...
#   # ---- end <stage> helpers ----
# Stage files then contain only rules and register_section calls (lambdas are fine inline).
