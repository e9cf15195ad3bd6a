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
# # Codebook health
#
# A codebook is healthy when its codes are used: per collection and quantizer level, the fraction
# of codes used by held-out objects (against what an even use would reach with as many objects), the
# dead codes, the perplexity and normalised entropy of the code usage, the token-frequency spectrum,
# and whether decode -> encode returns the same tokens. Training curves show the scale-aware
# dead-code replacement at work.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
from treasure_lib import plots, runs, study
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
rep = study.codebook_health.report(run)
show(rep.table("codebooks"))

# %% tags=["hide-input"]
if "usage" in rep.figures:
    fig_usage = plots.codebook_usage(**rep.figures["usage"], save_to=run.figures)
    fig_freq = plots.token_frequency(**rep.figures["frequency"], save_to=run.figures)
show(rep.text["usage"])

# %% tags=["hide-input"]
if "dead_codes" in rep.figures:
    fig_dead = plots.training_curves(**rep.figures["dead_codes"], save_to=run.figures)
    show(rep.text["dead_codes"])
