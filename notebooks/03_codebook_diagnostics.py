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
# of codes used by held-out objects, the dead codes, the perplexity and normalised entropy of the
# code usage, the token-frequency spectrum, and whether decode -> encode returns the same tokens.
# Training curves show the scale-aware dead-code replacement at work.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import csv

import numpy as np

from treasure_lib import diagnostics, plots, runs, study
from treasure_lib.diagnostics import reconstruction as reco
from treasure_lib.sequences import TokenizerSet
from treasure_lib.study.report import markdown_table, show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = study.stages.run_params(run)
cards = study.stages.tokenizers(run)
tokens = TokenizerSet.from_params(params)
held = reco.held_out(params, "test", max_rows=4000)

# %% tags=["hide-input"]
health, reencode, rows = {}, {}, []
for card, tok in tokens.tokenizers.items():
    if tok.kind == "binning":  # no codebook to judge, but its tokens carry bits too
        run.log_metrics({f"tokenizer.{card}.bits_per_object": reco.bits_per_object(tok)})
        continue
    feats, mask = tokens.card_inputs(held, card)
    if not mask.any():
        continue
    indices = tok.encode(feats, mask)
    health[card] = diagnostics.codebook_health(indices, tok.codebook_size)
    reencode[card] = diagnostics.reencode_fraction(tok.encode, tok.decode, indices)
    run.log_metrics(diagnostics.scalar_summary(health[card], f"codebook.{card}.")
                    | {f"codebook.{card}.reencode_fraction": reencode[card],
                       f"tokenizer.{card}.bits_per_object": reco.bits_per_object(tok)})
    for level, h in health[card].items():
        rows.append({"collection": card, "level": level, "objects": h["n_objects"], "K": h["codebook_size"],
                     "used fraction": h["utilization"], "dead codes": h["dead_codes"], "perplexity": h["perplexity"],
                     "norm. entropy": h["normalized_entropy"]})
show(markdown_table(rows))

# %% tags=["hide-input"]
fig_usage = plots.codebook_usage(health, save_to=run.figures, name="codebook_usage")
fig_freq = plots.token_frequency(health, save_to=run.figures, name="token_frequency")
worst = min(rows, key=lambda r: r["used fraction"])
show(f"The least used codebook is {worst['collection']} {worst['level'].replace('_', ' ')}: {worst['used fraction']:.0%} of its "
     f"{worst['K']} codes appear on {worst['objects']} held-out objects (perplexity {worst['perplexity']:.0f}). "
     f"Decode -> encode returns the same tokens for "
     + ", ".join(f"{100 * f:.0f}% of {c}" for c, f in reencode.items())
     + " objects: the rest sit near a code boundary, where the decoder's output lands on a neighbour.")

# %% tags=["hide-input"]
history = {}
for card in health:
    logs = sorted((cards / card / "logs").glob("version_*/metrics.csv"))
    if not logs:
        continue
    steps = [r for r in csv.DictReader(open(logs[-1])) if r.get("train/replaced_level_1")]
    levels = sorted(k for k in steps[0] if k.startswith("train/replaced_level_")) if steps else []
    for k in levels:
        by_epoch = {}
        for r in steps:
            by_epoch.setdefault(int(r["epoch"]), []).append(float(r[k]))
        history[f"{card} {k.rsplit('_', 2)[-2]} {k[-1]}"] = (np.array(sorted(by_epoch)), np.array([np.mean(v) for _, v in sorted(by_epoch.items())]))
if history:
    fig_dead = plots.training_curves(history, ylabel="Codes replaced per step (fraction of K)", logy=False,
                                     save_to=run.figures, name="dead_code_replacement")
    last = {k: v[1][-1] for k, v in history.items()}
    show("Dead codes are re-drawn when a code's running count falls below a fraction of a uniform share, so rare "
         "collections are not churned: in the last epoch at most " + f"{100 * max(last.values()):.1f}% of a codebook "
         "was replaced per step (" + ", ".join(f"{k}: {100 * v:.2f}%" for k, v in list(last.items())[:6]) + ").")
