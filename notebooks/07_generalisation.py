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
# # Generalisation
#
# The seed material's protocol: the tokenizer is fitted once on mixed samples; a classifier learns
# signal against one background and is then tested against the others, with the same tokens. A
# classifier that learned what the signal looks like keeps its AUC; one that learned "not
# background A" loses it. For events, the classifier is chapter 06's H vs ZZ* in the signal region,
# tested after the four-lepton preselection with cross-section weights. For jets, flavour is learned
# on ttbar jets and tested on the boosted Z' sample, whose jets reach far higher pT.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import numpy as np

from treasure_lib import plots, runs, study
from treasure_lib.formatting import fmt, markdown_table
from treasure_lib.object_collections import from_data as collections_from_data
from treasure_lib.study import names
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = run.params
kind = params.study.kind

# %% tags=["hide-input"]
if kind == "events":
    gen = study.generalisation.events(run, params.classify.task)
    show(markdown_table(study.generalisation.events_table(gen)))
    show(study.generalisation.events_sentence(gen))
else:
    gen = study.generalisation.jets(run)
    res = {s: r for s, r in gen["results"].items() if "error" not in r}
    rows = [{"tested on": names.sample(s),
             "b / c / light jets": f"{r['counts'].get('n_b', 0)} / {r['counts'].get('n_c', 0)} / "
             f"{r['counts'].get('n_light', 0)}",
             "light rej. @ 77%": fmt(r["summary"]["light_rejection_at_77"], r["summary"]["light_rejection_at_77_err"]),
             "c rej. @ 77%": fmt(r["summary"]["c_rejection_at_77"], r["summary"]["c_rejection_at_77_err"]),
             "b vs rest AUC": fmt(r["summary"]["auc_b"], r["summary"]["auc_b_err"])} for s, r in res.items()]
    show(markdown_table(rows))
    bins = params.classify.pt_bins_gev
    shown = {s: r for s, r in res.items() if any(np.isfinite(b["value"]) for b in r["bins"])}  # no empty legend entry
    if shown:
        fig = plots.performance_vs_variable(
            bins, {f"tested on {names.sample(s)}": np.array([b["value"] for b in r["bins"]]) for s, r in shown.items()},
            {f"tested on {names.sample(s)}": np.array([b["err"] for b in r["bins"]]) for s, r in shown.items()},
            xlabel=study.display.feature_label(collections_from_data(params.data)["jets"], "pt"),
            logy=True, ylabel="Light-jet rejection (flat 77% b-eff. per bin)", save_to=run.figures,
            name="generalisation_vs_pt")
    show(study.generalisation.jets_sentence(gen))
