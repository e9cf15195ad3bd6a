# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Leakage: is the classifier reading the event shape?
#
# A too-good result is a bug until shown otherwise. Each row of the report trains on less
# information than the full tokens: (1) object counts only, with gradient-boosted trees;
# (2) the transformer with every code replaced by a per-type constant (structure only);
# (3) codes shuffled across events within each type; (4) fixed slots without SEP or type ids;
# then (5) full tokens and (6) raw features (both with several seeds). A row whose model did not finish
# learning bounds nothing and is named as such. Below, the data checks: no row in two splits across
# everything the stages read, and no model input that names the sample beyond what the label explains.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
from treasure_lib import plots, runs, study
from treasure_lib.formatting import markdown_table
from treasure_lib.study import names
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = run.params
tasks = params.classify.leakage_tasks or [params.classify.task]
reports = {task: study.leakage.report(run, task) for task in tasks}

# %% tags=["hide-input"]
for task, rep in reports.items():
    show(f"**{names.task(task)}**\n\n" + markdown_table(study.leakage.table_rows(rep)) + "\n\n" + rep["verdict"])

# %% tags=["hide-input"]
show(study.leakage.checks_sentence(next(iter(reports.values()))["checks"]))
