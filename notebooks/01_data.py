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
# # Data: the samples and their split
#
# What the study reads: the samples (one process per file), how many rows each holds, how every
# row is assigned once to train / val / test by a hash of its identity, and a few physics
# distributions to trust the inputs by. Missing default samples are generated first
# (Pythia 8 + FastJet + the ATLAS-like emulation; `treasure generate`).

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import numpy as np

from treasure_lib import plots, runs, study
from treasure_lib.formatting import markdown_table
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = run.params
kind = params.study.kind
files = study.stages.ensure_data(run)
summary = study.data.summary(params.data)
rows = summary["table"]
show(markdown_table(rows))

# %% tags=["hide-input"]
split = {name: sum(r[name] for r in rows) for name in ("train", "val", "test")}
run.log_metrics({f"data.{r['sample']}.rows": r["rows"] for r in rows}
                | {f"data.all.{k}_rows": v for k, v in split.items()})
show(study.data.split_sentence(params.study.name, kind, len(files), rows, params.data.split))

# %% tags=["hide-input"]
a = summary["arrays"]
if kind == "jets":
    from treasure_lib.object_collections import FLAVOUR_NAMES, from_data

    by_flavour = lambda x: {name: x[a["label"] == i] for i, name in enumerate(FLAVOUR_NAMES)}  # noqa: E731
    jet_pt = study.display.feature_label(from_data(params.data)["jets"], "pt")  # "Jet $p_{T}$ [GeV]", from objects.yaml
    fig_pt = plots.by_class(by_flavour(a["jets_pt_gev"]), jet_pt, logy=True, save_to=run.figures, name="data_jet_pt")
    fig_n = plots.by_class(by_flavour(a["n_tracks"].astype(float)), "Tracks per jet", integer=True,
                           save_to=run.figures, name="data_tracks_per_jet")
    fig_sd0 = plots.by_class(
        by_flavour(np.clip(a["max_sd0"], -5, 40)),
        "Largest lifetime-signed $d_0/\\sigma_{d_0}$ of the jet's tracks",
                             save_to=run.figures, name="data_max_sd0")
    show(study.data.displaced_tracks_sentence({name: float(np.median(v)) for name, v in by_flavour(a["max_sd0"]).items()
                                               if len(v)}))
else:
    by_process = lambda x: {p: x[a["process"] == p] for p in np.unique(a["process"])}  # noqa: E731
    leptons = a["n_electrons"] + a["n_muons"]
    fig_l = plots.by_class(by_process(leptons.astype(float)), "Electrons + muons per event", integer=True,
                           save_to=run.figures, name="data_leptons")
    fig_j = plots.by_class(by_process(a["n_jets"].astype(float)), "Jets per event", integer=True,
                           save_to=run.figures, name="data_jets")
    show(study.data.four_lepton_sentence({p: float(np.mean(v >= 4)) for p, v in by_process(leptons).items()}))

# %% [markdown]
# ## Event selection
#
# The events study compares the signal with the ZZ* background inside the H → 4ℓ signal region that the analysis
# selects (`selection.h4l`): four leptons in two same-flavour opposite-sign pairs, lepton pT and isolation
# thresholds, m12 and m34 ranges and the m4l window. Each sample's cut flow, with its cross section (fb) after each
# step; then the m4l of the events that pass every step before the window. (The jets study keeps the jets that
# pass `data.cuts`.)

# %% tags=["hide-input"]
if kind == "events":
    flow = study.data.cut_flow(params.data, params.selection)
    run.log_metrics(study.data.cut_flow_metrics(flow["flows"]))
    show(markdown_table(study.data.cut_flow_rows(flow["flows"], flow["cuts"], flow["unit"])))
    show(f"Each cell: events passing the step · their cross section × efficiency [{flow['unit']}] "
         "(weight × σ × filter efficiency × k-factor / sum of weights, summed).")
    show(study.data.cut_flow_sentence(flow["flows"], flow["generated"], flow["cuts"], flow["unit"]))
    fig_m4l = plots.samples.stacked(study.data.m4l_stack(flow), "$m_{4\\ell}$ [GeV]", bins=np.arange(100.0, 151.0, 1.0),
                                    unit=flow["unit"], lines=flow["cuts"].m4l_window_gev, save_to=run.figures,
                                    name="data_m4l_before_window")
    show(study.data.peak_sentence(flow["m4l"], flow["cuts"], flow["unit"]))
else:
    show("The jets study applies no event selection beyond the jet cuts above.")
