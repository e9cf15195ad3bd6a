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
# # Tokenization: what the tokens keep, in physics units
#
# One tokenizer card per collection is fitted on training rows (mixed across samples), then every
# input file is exported to token sequences. Here each card encodes held-out (test) objects and decodes
# the tokens back into features ("decoded"), and the difference is measured in physical units after
# 1, 2, ..., Q quantizer levels; then the physics built from objects: the jet 4-vector summed from
# tracks, or the dilepton and four-lepton masses.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
from treasure_lib import plots, runs, study
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
rep = study.tokenization.report(run)
show(rep.text["intro"])
show(rep.table("summary"))

# %% [markdown]
# ## The main collection, feature by feature
#
# The key feature before and after tokenization, and the residuals (decoded − original) of the first
# continuous features; each panel spans the core (median ± 5 σ68) and counts what falls outside.

# %% tags=["hide-input"]
fig_key = plots.distributions(**rep.figures["key_feature"], save_to=run.figures)
fig_res = plots.residuals(**rep.figures["residuals"], save_to=run.figures)
show(rep.text["levels"])

# %% [markdown]
# ## Physics built from decoded objects

# %% tags=["hide-input"]
if "jet_response" in rep.figures:
    fig_resp = plots.response_vs_pt(**rep.figures["jet_response"], save_to=run.figures)
figs_mass = [plots.distributions(**rep.figures[m], save_to=run.figures) for m in ("mll", "m4l") if m in rep.figures]
for name in ("jets", "leptons"):
    if rep.text.get(name):
        show(rep.text[name])

# %% [markdown]
# ## Leptons at detector resolution (events)
#
# On test events of the H → 4ℓ signal region, the selected quadruplet rebuilt from its decoded leptons: the width
# of the H peak (m4l) and of the Z peak (m_ll) against the same events' original leptons, after 1, 2, ..., Q levels.

# %% tags=["hide-input"]
if "lepton_peaks" in rep.tables:
    show(rep.table("lepton_peaks"))
    fig_m4l_sr = plots.distributions(**rep.figures["m4l_signal_region"], save_to=run.figures)
    show(rep.text["lepton_peaks"])
else:
    show("No electrons and muons are tokenized in this study: no lepton peaks to measure.")

# %% [markdown]
# ## Every feature, per collection

# %% tags=["hide-input"]
for name in rep.tables:
    if name not in ("summary", "lepton_peaks"):
        show(rep.table(name))
