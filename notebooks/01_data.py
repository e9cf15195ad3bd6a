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
from treasure_lib.study.report import markdown_table, show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = run.params
kind = params["study"]["kind"]
files = study.stages.ensure_data(run)
summary = study.data.summary(params)
rows = summary["table"]
show(markdown_table(rows))

# %% tags=["hide-input"]
total = sum(r["rows"] for r in rows)
split = {name: sum(r[name] for r in rows) for name in ("train", "val", "test")}
run.log_metrics({f"data.{r['sample']}.rows": r["rows"] for r in rows} | {f"data.all.{k}_rows": v for k, v in split.items()})
show(f"The {params['study']['name']} study reads **{len(files)} files** with **{total} rows** "
     f"({'jets' if kind == 'jets' else 'events'}) from {len(rows)} samples. The split assigns "
     f"{split['train']} / {split['val']} / {split['test']} rows to train / val / test "
     f"({100 * split['train'] / total:.1f} / {100 * split['val'] / total:.1f} / {100 * split['test'] / total:.1f} %, "
     f"configured {params['data']['split']['train']:.0%} / {params['data']['split']['val']:.0%} / "
     f"{params['data']['split']['test']:.0%}): every stage, from tokenizer fit to the final test, sees the same assignment.")

# %% tags=["hide-input"]
a = summary["arrays"]
if kind == "jets":
    from treasure_lib.collections import FLAVOUR_NAMES

    by_flavour = lambda x: {name: x[a["label"] == i] for i, name in enumerate(FLAVOUR_NAMES)}  # noqa: E731
    fig_pt = plots.by_class(by_flavour(a["jets_pt_gev"]), "Jet $p_T$ [GeV]", logy=True, save_to=run.figures, name="data_jet_pt")
    fig_n = plots.by_class(by_flavour(a["n_tracks"].astype(float)), "Tracks per jet", integer=True,
                           save_to=run.figures, name="data_tracks_per_jet")
    fig_sd0 = plots.by_class(by_flavour(np.clip(a["max_sd0"], -5, 40)), "Largest lifetime-signed $d_0/\\sigma_{d_0}$ of the jet's tracks",
                             save_to=run.figures, name="data_max_sd0")
    med = {name: float(np.median(v)) for name, v in by_flavour(a["max_sd0"]).items() if len(v)}
    show(f"b-jets carry displaced tracks: the median of the largest lifetime-signed $d_0$ significance is "
         f"{med.get('b', float('nan')):.1f} for b-jets, {med.get('c', float('nan')):.1f} for c-jets and "
         f"{med.get('light', float('nan')):.1f} for light jets; that is what the flavour tokens must keep.")
else:
    by_process = lambda x: {p: x[a["process"] == p] for p in np.unique(a["process"])}  # noqa: E731
    leptons = a["n_electrons"] + a["n_muons"]
    fig_l = plots.by_class(by_process(leptons.astype(float)), "Electrons + muons per event", integer=True,
                           save_to=run.figures, name="data_leptons")
    fig_j = plots.by_class(by_process(a["n_jets"].astype(float)), "Jets per event", integer=True,
                           save_to=run.figures, name="data_jets")
    four = {p: float(np.mean(v >= 4)) for p, v in by_process(leptons).items()}
    show(f"Four reconstructed leptons are common in the signal (ggH -> ZZ* -> 4l: {four.get('ggH_ZZ4l', float('nan')):.0%} "
         f"of events) and in qqZZ -> 4l ({four.get('qqZZ_4l', float('nan')):.0%}), rare elsewhere (ttbar "
         f"{four.get('ttbar', float('nan')):.1%}): lepton multiplicity alone separates much of the signal from most "
         f"backgrounds, which is why the leakage chapter asks what the tokens add beyond it.")
