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
# then (5) full tokens and (6) raw features. Below, the data checks: no event in two splits across
# stages, and no label proxy (file, process, event number) among the model inputs.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
from treasure_lib import plots, runs, study
from treasure_lib.study.report import markdown_table, show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = run.params
tasks = params["classify"]["leakage_tasks"] or [params["classify"]["task"]]
reports = {task: study.leakage.report(run, task) for task in tasks}

# %% tags=["hide-input"]
for task, rep in reports.items():
    fig = plots.table_figure(rep["table"], ["row", "name", "auc_text"], title=f"Leakage report: {task}",
                             headers=["", "Inputs", "AUC"], save_to=run.figures, name=f"leakage_{task}")
    show(f"**{task}**: " + rep["verdict"])

# %% tags=["hide-input"]
checks = next(iter(reports.values()))["checks"]
s = checks["splits"]
show(f"Split check: {s['n_identities']} event identities across the tokenizer fit and the token files, "
     f"{s['n_overlapping']} in two splits. Label-proxy check: the model inputs are "
     f"{', '.join(f'`{c}`' for c in sorted(checks['label_proxies']))}; none of them is sample bookkeeping (file, "
     f"process, dsid, event number) or a truth column (a check of the columns fed to the model, by name).")
