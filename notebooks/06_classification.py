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
# # Classification: tokens against raw features
#
# The same backbone and head, trained from scratch on tokens, fine-tuned from the pretrained
# backbone, on the raw (scaled) object features, and on the tokens decoded back into features.
# Each model is trained with several seeds (`classify.seeds`) and evaluated once, on the test split,
# with the task's weights. A number is the mean over seeds, with two uncertainties: the test-sample
# one (a bootstrap of the test rows with the working point recomputed in every replicate) and the
# seed spread. Two models are compared *paired*, on the same resampled rows. Jet flavour is judged
# by light- and c-jet rejection at fixed b-jet efficiency; tau jets are reported apart.
# Then: where information is lost (raw -> decoded is quantisation, decoded -> tokens the model on
# codes), and the label-efficiency curve. With `classify.compare: false` (one point of a scan) the
# chapter trains and shows only the classifier its params describe.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import numpy as np

from treasure_lib import metrics, plots, runs, study
from treasure_lib.formatting import markdown_table
from treasure_lib.object_collections import from_data as collections_from_data
from treasure_lib.study import names
from treasure_lib.study.report import show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = study.stages.run_params(run)
c = params.classify
if not c.compare:
    single = study.classification.single(run)
    show(single["text"])
else:
    rep = study.classification.report(run)
    show(markdown_table(rep["table"]))
    show("\n\n".join(rep["text"]))

# %% tags=["hide-input"]
if c.compare:
    models = rep["models"]
    first = {v: models.probs[v][0] for v in rep["variants"]}
    shown_as = {v: f"{names.model(v)}, seed {c['seeds'][0]}" if len(models.probs[v]) > 1 else names.model(v)
                for v in first}  # the curves are one seed's; the table quotes seed means
    y, w = models.rows["label"], models.rows["weight"]
    if study.seeds.is_flavour(rep["task"]):
        curves = {shown_as[v]: metrics.flavour_rejection_curves(y, p, w, f_c=c.f_c) for v, p in first.items()}
        fig_rej = plots.rejection_vs_efficiency(curves, backgrounds=["light", "c"], f_c=c.f_c,
                                                save_to=run.figures, name="rejection_vs_efficiency")
        bins = c.pt_bins_gev
        fig_pt = plots.performance_vs_variable(
            bins, {names.model(v): np.array([r["value"] for r in rows]) for v, rows in rep["pt_bins"].items()},
            {names.model(v): np.array([r["err"] for r in rows]) for v, rows in rep["pt_bins"].items()},
            xlabel=study.display.feature_label(collections_from_data(params.data)["jets"], "pt"),
            ylabel="Light-jet rejection (flat 77% b-eff. per bin)", logy=True, save_to=run.figures,
            name="light_rejection_vs_pt")
    else:
        curves = {shown_as[v]: (y if p.ndim == 1 or p.shape[1] == 2 else (y == 1).astype(int),
                                p if p.ndim == 1 else p[:, 1], w) for v, p in first.items()}
        fig_roc = plots.roc_curves(curves, kind="rejection", signal="Signal", save_to=run.figures, name="roc")

# %% tags=["hide-input"]
if c.compare:
    eff = rep["label_efficiency"]
    xs = [pt[0] for pt in eff["curve"]["tokens"]]
    series = {}
    for v, pts in eff["curve"].items():
        mean = np.array([pt[1] for pt in pts])
        err = np.array([np.hypot(pt[2], pt[3] if np.isfinite(pt[3]) else 0.0) for pt in pts])
        series[names.model(v)] = (mean, mean - err, mean + err)
    fig_eff = plots.label_efficiency(xs, series, ylabel=names.first_upper(names.statistic(rep["stat"])),
                                     save_to=run.figures, name="label_efficiency")
    show(eff["text"])

# %% tags=["hide-input"]
if c.compare and c.also:
    show("\n\n".join(study.classification.also(run)))
