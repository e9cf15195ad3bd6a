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
# The backbone learns to predict masked tokens from their context, without labels: whole objects
# (all Q codes) are masked in the grouped layout, single tokens (15%, BERT's 80/10/10) in the flat
# one. Validation uses the same mask every epoch. A linear probe on the detached backbone output
# estimates, epoch by epoch, how useful the representation is for the downstream task.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import csv

import numpy as np

from treasure_lib import plots, runs, study
from treasure_lib.study.report import markdown_table, show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = study.stages.run_params(run)
backbone = study.stages.pretrained(run)
m = run.metrics()

# %% tags=["hide-input"]
logs = sorted((backbone / "logs").glob("version_*/metrics.csv"))
rows = list(csv.DictReader(open(logs[-1]))) if logs else []
epoch_rows = [r for r in rows if r.get("val/loss")]
curves = {}
for key, label in (("val/loss", "validation loss"), ("val/masked_accuracy", "masked accuracy"), ("val/probe_auc", "probe AUC")):
    pts = [(int(r["epoch"]), float(r[key])) for r in epoch_rows if r.get(key)]
    if pts:
        curves[label] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))
train = {}
for r in rows:
    if r.get("train/loss"):
        train.setdefault(int(r["epoch"]), []).append(float(r["train/loss"]))
if train:
    curves["training loss"] = (np.array(sorted(train)), np.array([np.mean(v) for _, v in sorted(train.items())]))
fig_loss = plots.training_curves({k: v for k, v in curves.items() if "loss" in k}, ylabel="Masked-token cross entropy",
                                 save_to=run.figures, name="pretrain_loss")
fig_acc = plots.training_curves({k: v for k, v in curves.items() if "loss" not in k}, ylabel="Accuracy / AUC",
                                save_to=run.figures, name="pretrain_accuracy")

# %% tags=["hide-input"]
per = {k.split("pretrain.masked_accuracy.")[1]: v for k, v in m.items() if k.startswith("pretrain.masked_accuracy.")}
show(markdown_table([{"masked tokens of": k, "accuracy": v} for k, v in sorted(per.items())]))
levels = {int(k.split("_")[1]): v for k, v in per.items() if k.startswith("level_")}
easiest, hardest = (max(levels, key=levels.get), min(levels, key=levels.get)) if levels else (None, None)
epochs_run = int(max(curves["validation loss"][0])) + 1 if "validation loss" in curves else None
converging = epochs_run is not None and int(m["pretrain.best_epoch"]) + 1 == epochs_run
show(f"After {int(m['pretrain.best_epoch']) + 1} epochs ({m['pretrain.train_seconds']:.0f} s) the backbone predicts "
     f"{m['pretrain.masked_accuracy']:.1%} of the masked tokens exactly (chance is about one in the codebook size); "
     + (f"level {easiest} is predicted best ({levels[easiest]:.1%}) and level {hardest} worst ({levels[hardest]:.1%}). "
        if levels else "")
     + (f"The best epoch is the last one run: the validation loss was still falling, so pretraining has not converged "
        f"in this budget (`pretrain.train.max_epochs`). " if converging else "")
     + f"The detached linear probe reaches a validation AUC of {m['pretrain.probe_auc']:.3f} for "
       f"'{params['pretrain']['probe_task'] or params['classify']['task']}' without any fine-tuning.")
