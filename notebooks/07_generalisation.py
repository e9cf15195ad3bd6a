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
# background A" loses it. For jets, flavour is learned on ttbar jets and tested on the boosted
# Z' sample, whose jets reach far higher pT.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import numpy as np

from treasure_lib import plots, runs, study
from treasure_lib.study.report import fmt, markdown_table, show
from treasure_lib.training import MIN_JETS_PER_BIN

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = run.params
kind = params["study"]["kind"]

# %% tags=["hide-input"]
if kind == "events":
    gen = study.generalisation.events(run, params["classify"]["task"])
    table = sorted(gen["table"], key=lambda r: -r["auc"])
    show(markdown_table([{"tested against": r["background"] + (" (trained on)" if r["trained_on"] else ""),
                          "AUC": fmt(r["auc"], r["auc_err"]), "change": fmt(r["auc_change"]), "background events": r["n_background"]}
                         for r in table]))
    fig = plots.table_figure([{"background": r["background"], "auc": fmt(r["auc"], r["auc_err"]), "change": fmt(r["auc_change"])}
                              for r in table], ["background", "auc", "change"], title="Trained on signal vs qqZZ",
                             headers=["Tested against", "AUC", "Change"], save_to=run.figures, name="generalisation")
    worst = min(table, key=lambda r: r["auc"])
    trained = next(r for r in table if r["trained_on"])
    below = [r["background"] for r in table if r["auc"] + r["auc_err"] < 0.5]
    show(f"Trained against qqZZ (AUC {fmt(trained['auc'], trained['auc_err'])}), the classifier separates the signal from "
         f"{worst['background']} with AUC {fmt(worst['auc'], worst['auc_err'])} ({worst['auc_change']:+.3f}). "
         + (f"Below 0.5 ({', '.join(below)}), it ranks that background as *more* signal-like than the signal: it learned "
            f"'not qqZZ' (hard, isolated four-lepton events) rather than what the signal looks like, so a classifier for "
            f"a search against all backgrounds must be trained against all of them." if below else
            "The AUC holds up against every background: the classifier learned what the signal looks like."))
else:
    gen = study.generalisation.jets(run)
    res = gen["results"]
    rows = [{"tested on": s, "jets": r["rows"], "b vs rest AUC": fmt(r["summary"].get("auc_b", np.nan), r["summary"].get("auc_b_err")),
             "light rej. @77%": fmt(r["summary"].get("light_rejection_at_77", np.nan), r["summary"].get("light_rejection_at_77_err")),
             "c rej. @77%": fmt(r["summary"].get("c_rejection_at_77", np.nan), r["summary"].get("c_rejection_at_77_err")),
             "auc_macro (classes present)": fmt(r["summary"]["auc_macro"], r["summary"].get("auc_macro_err"))}
            for s, r in res.items()]
    show(markdown_table(rows))
    bins = params["classify"]["pt_bins_gev"]
    vals, errs = [], []
    for s, r in res.items():
        vals.append([r["summary"].get(f"pt_bin_{lo:g}_{hi:g}.light_rejection_at_77", np.nan) for lo, hi in zip(bins[:-1], bins[1:])])
        errs.append([r["summary"].get(f"pt_bin_{lo:g}_{hi:g}.light_rejection_at_77_err", np.nan) for lo, hi in zip(bins[:-1], bins[1:])])
    fig = plots.performance_vs_variable(bins, vals, errs, labels=[f"tested on {s}" for s in res], logy=True,
                                        ylabel="Light-jet rejection at 77% b-eff.", save_to=run.figures, name="generalisation_vs_pt")
    a, b = list(res)[:2] if len(res) > 1 else (list(res)[0], list(res)[0])
    main = run.metrics().get(f"classify.{params['classify']['task']}.tokens.light_rejection_at_77", np.nan)
    rej = lambda s: fmt(res[s]["summary"].get("light_rejection_at_77", np.nan),  # noqa: E731
                        res[s]["summary"].get("light_rejection_at_77_err"))
    show(f"Trained on ttbar jets only, the flavour model rejects light jets by {rej(a)} at 77% b-efficiency on ttbar test "
         f"jets (the classifier of chapter 06, trained on every sample, reaches {main:.3g}) and by {rej(b)} on {b} jets, "
         f"whose pT spectrum extends where the training sample has few jets. The b-vs-rest AUC and the rejections are "
         f"compared, not the macro AUC: a sample without tau jets averages fewer classes. Bins with fewer than "
         f"{MIN_JETS_PER_BIN} b or light jets have no rejection (too few jets to say where it degrades).")
