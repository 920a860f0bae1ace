# The HTML report: one page per registered section (papermill), an about page, and an index.
# Included last, so every stage has registered its sections (common.smk: register_section).


rule run_info:
    output:
        cube=cube_path("run_info"),
    log:
        log_path("run_info"),
    conda:
        "../../envs/torch.yaml"
    threads: threads_per_job()
    params:
        # All of it: the about page shows the resolved config this run was made with.
        config=rule_config(*config),
    script:
        "../scripts/run_info.py"


register_section(
    "about",
    "reports/about.py",
    {"run_info_cube": rules.run_info.output.cube, "cube_paths": all_section_cubes()},
    "About this run: scale, device and provenance",
)


rule render_section:
    input:
        unpack(section_inputs),
    output:
        html=report(
            report_path("{section}.html"),
            caption="../report/section.rst",
            category="Report sections",
            labels={"section": "{section}"},
        ),
        notebook=report_path("notebooks/{section}.ipynb"),
    log:
        log_path("report/{section}"),
    wildcard_constraints:
        section="|".join(re.escape(name) for name in SECTIONS),
    conda:
        "../../envs/report.yaml"
    threads: threads_per_job()
    params:
        config=rule_config("report.kernel", "report.cell_timeout_s"),
        parameters=section_parameter_names,
        title=section_title,
    script:
        "../scripts/render_notebook.py"


rule render_index:
    input:
        sections=expand(report_path("{section}.html"), section=list(SECTIONS)),
        run_info=rules.run_info.output.cube,
    output:
        html=report(
            report_path("index.html"),
            caption="../report/index.rst",
            category="Report index",
        ),
        manifest=report_path("manifest.json"),
    log:
        log_path("report/index"),
    conda:
        "../../envs/report.yaml"
    params:
        config=rule_config("report.title"),
        sections=index_sections(),
    script:
        "../scripts/render_index.py"
