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
# # Masked-token pretraining
#
# The backbone learns to predict masked tokens from their context, without labels, on every training
# row of every sample: whole objects (all Q codes) are masked in the grouped layout, single tokens
# (15%, BERT's 80/10/10) in the flat one. Validation uses the same mask every epoch. The chance level
# of a masked accuracy is the share of the most frequent code, not 1/K. A linear probe on the detached
# backbone output estimates, epoch by epoch, how useful the representation is for the downstream task.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
from treasure_lib import plots, runs, study
from treasure_lib.formatting import markdown_table
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
rep = study.pretraining.report(run)
curves, m = rep["curves"], rep["metrics"]

# %% tags=["hide-input"]
fig_loss = plots.training_curves({label: curves[key] for key, label in (("train/loss", "training"),
                                                                          ("val/loss", "validation")) if key in curves},
                                 ylabel="Masked-token cross entropy", save_to=run.figures, name="pretrain_loss")
if "val/masked_accuracy" in curves:
    fig_acc = plots.training_curves({"validation": curves["val/masked_accuracy"]}, ylabel="Masked-token accuracy",
                                    references={"most frequent code (chance)": rep["baselines"]["all"]},
                                    save_to=run.figures, name="pretrain_accuracy")
if "val/probe_auc" in curves:
    fig_probe = plots.training_curves({"validation": curves["val/probe_auc"]}, ylabel="Linear-probe AUC",
                                      references={"chance": 0.5}, save_to=run.figures, name="pretrain_probe")

# %% tags=["hide-input"]
show(markdown_table(rep["table"]))
show(rep["text"])
