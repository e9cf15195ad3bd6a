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
# Everything is evaluated once, on the test split, with the task's weights (cross sections for the events
# tasks, none for flavour) and uncertainties.
# The cost table then says where information is lost: in quantisation (raw vs decoded) or in
# the model (decoded vs tokens). Last, the label-efficiency curve: how the pretrained backbone
# helps when only a fraction of the labels is available. With `classify.compare: false` (one point
# of a scan) the chapter trains and shows only the classifier its params describe.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import numpy as np

from treasure_lib import plots, runs, study
from treasure_lib.study.report import fmt, markdown_table, show
from treasure_lib.training import metrics_prefix, variant_name

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = study.stages.run_params(run)
c = params["classify"]
task, compare, fraction = c["task"], c["compare"], c["label_fraction"]
if compare:  # all labels: the label-efficiency curve below adds the fractions
    fraction = 1.0
    variants = {"tokens": dict(classify__mode="scratch", classify__inputs="tokens"),
                "tokens_finetuned": dict(classify__mode="finetune", classify__inputs="tokens"),
                "raw": dict(classify__mode="scratch", classify__inputs="features"),
                "decoded": dict(classify__mode="scratch", classify__inputs="decoded")}
    variants = {name: dict(kw, classify__label_fraction=1.0) for name, kw in variants.items()}
else:  # one scan point: the classifier these params describe
    variants = {variant_name(params): dict(classify__mode=c["mode"], classify__inputs=c["inputs"])}
results = {name: study.stages.classifier(run, classify__task=task, **kw) for name, kw in variants.items()}
prefix = {name: metrics_prefix(study.stages.run_params(run, classify__task=task, **kw)) for name, kw in variants.items()}
first = next(iter(variants))
flavour = any(k.endswith(".light_rejection_at_77") for k in results[first])
headline = "auc_macro" if any(k.endswith(".auc_macro") for k in results[first]) else "auc"
get = lambda name, q: results[name].get(f"{prefix[name]}.{q}", float("nan"))  # noqa: E731
rows = [{"inputs": name, headline: fmt(get(name, headline), get(name, headline + "_err")),
         **({"b vs rest AUC": fmt(get(name, "auc_b"), get(name, "auc_b_err")),
             "light rej. @77%": fmt(get(name, "light_rejection_at_77"), get(name, "light_rejection_at_77_err")),
             "c rej. @77%": fmt(get(name, "c_rejection_at_77"), get(name, "c_rejection_at_77_err"))} if flavour else {}),
         "best epoch": int(get(name, "best_epoch")), "parameters": int(get(name, "parameters")),
         "train s": round(get(name, "train_seconds"))} for name in variants]
show(markdown_table(rows))

# %% tags=["hide-input"]
preds = {name: study.stages.predictions(run, f"{task}-{name}-{round(100 * fraction)}") for name in variants}
if flavour:
    from treasure_lib.plots import flavour_rejection_curves

    curves = {name: flavour_rejection_curves(p["label"], p["probs"], p["weight"], f_c=c["f_c"])
              for name, p in preds.items()}
    fig_rej = plots.rejection_vs_efficiency(curves, backgrounds=["light", "c"], f_c=c["f_c"],
                                            save_to=run.figures, name="rejection_vs_efficiency")
    bins = c["pt_bins_gev"]
    in_pt = [n for n in ("tokens", "raw") if n in variants] or [first]
    vals = {name: [get(name, f"pt_bin_{lo:g}_{hi:g}.light_rejection_at_77") for lo, hi in zip(bins[:-1], bins[1:])]
            for name in in_pt}
    errs = {name: [get(name, f"pt_bin_{lo:g}_{hi:g}.light_rejection_at_77_err") for lo, hi in zip(bins[:-1], bins[1:])]
            for name in in_pt}
    fig_pt = plots.performance_vs_variable(bins, list(vals.values()), list(errs.values()), labels=list(vals),
                                           ylabel="Light-jet rejection at 77% b-eff.", logy=True, save_to=run.figures,
                                           name="light_rejection_vs_pt")
else:
    curves = {name: (p["label"] if p["probs"].shape[1] == 2 else (p["label"] == 1).astype(int),
                     p["probs"][:, 1], p["weight"]) for name, p in preds.items()}
    fig_roc = plots.roc_curves(curves, kind="rejection", signal="Signal", save_to=run.figures, name="roc")

merit = "light_rejection_at_77" if flavour else headline  # flavour: the b-tagging figure of merit
merit_name = "light-jet rejection at 77% b-efficiency" if flavour else headline
ranked = sorted(variants, key=lambda n: -get(n, merit))
stalled = [n for n in variants if get(n, "best_epoch") + 1 >= c["train"]["max_epochs"]] if fraction == 1 else []
caveats = (f" Still improving at their last epoch: {', '.join(stalled)}; more training "
           f"(`classify.train.max_epochs`) can change this ranking." if stalled else "")
if flavour:
    n_tau = int((preds[first]["label"] == 3).sum())
    caveats += (f" The macro AUC averages b, c, light and tau one-vs-rest AUCs with equal weight, so the {n_tau} tau "
                f"test jets count as much as the b-jets; the rejections are what b-tagging is judged by.")
if compare:
    a, b = ranked[:2]
    gap = get(a, merit) - get(b, merit)
    err = float(np.hypot(get(a, merit + "_err"), get(b, merit + "_err")))
    show(f"On the test split, the raw-feature model reaches {headline} = {fmt(get('raw', headline), get('raw', headline + '_err'))}, "
         f"the decoded-features model {fmt(get('decoded', headline), get('decoded', headline + '_err'))} and the token model "
         f"{fmt(get('tokens', headline), get('tokens', headline + '_err'))} from scratch "
         f"({fmt(get('tokens_finetuned', headline), get('tokens_finetuned', headline + '_err'))} fine-tuned from the pretrained "
         f"backbone). By {merit_name}, '{a}' ({fmt(get(a, merit), get(a, merit + '_err'))}) is "
         f"{'ahead of' if gap > 2 * err else 'not significantly ahead of'} '{b}' ({fmt(get(b, merit), get(b, merit + '_err'))}; "
         f"difference {gap:.3g} ± {err:.2g}). Raw minus decoded is the cost of quantisation, decoded minus tokens what "
         f"the model fails to extract from discrete codes." + caveats)
else:
    show(f"The `{first}` classifier ({c['mode']}, {fraction:.0%} of the labels, seed "
         f"{c['seed'] if c['seed'] is not None else params['study']['seed']}) reaches {headline} = "
         f"{fmt(get(first, headline), get(first, headline + '_err'))} on the test split." + caveats)

# %% tags=["hide-input"]
m = run.metrics()
cost = [{"collection": card, "bits / object": m.get(f"tokenizer.{card}.bits_per_object"),
         "pT IQR/median of reco/orig": m.get(f"tokenizer.{card}.pt.response_iqr_over_median", float("nan"))}
        for card in sorted({k.split(".")[1] for k in m if k.startswith("tokenizer.") and k.endswith(".bits_per_object")})]
if compare and cost:
    show("**What tokenization costs**: what each object's tokens can carry and how well they reproduce its pT, then "
         f"the downstream {headline} of the whole sequence: raw features "
         f"{fmt(get('raw', headline), get('raw', headline + '_err'))} -> decoded tokens "
         f"{fmt(get('decoded', headline), get('decoded', headline + '_err'))} (the quantisation) -> tokens "
         f"{fmt(get('tokens', headline), get('tokens', headline + '_err'))} (the model on discrete codes).\n\n"
         + markdown_table(cost))

# %% tags=["hide-input"]
fractions = sorted(set(c["label_fractions"])) if compare else []
curve = {"from scratch": [], "fine-tuned": []}
for f in fractions:
    for label, mode in (("from scratch", "scratch"), ("fine-tuned", "finetune")):
        r = study.stages.classifier(run, classify__task=task, classify__mode=mode, classify__label_fraction=f)
        variant = "tokens" if mode == "scratch" else "tokens_finetuned"
        key = f"classify.{task}.{variant}.label_fraction_{round(100 * f)}.{headline}"
        curve[label].append((r[key], r.get(key + "_err", float("nan"))))
if fractions:
    for label, name in (("from scratch", "tokens"), ("fine-tuned", "tokens_finetuned")):
        curve[label].append((get(name, headline), get(name, headline + "_err")))
    xs = fractions + [1.0]
    fig_eff = plots.label_efficiency(xs, {k: (np.array([v[0] for v in vals]), np.array([v[0] - v[1] for v in vals]),
                                              np.array([v[0] + v[1] for v in vals])) for k, vals in curve.items()},
                                     ylabel={"auc_macro": "Macro one-vs-rest AUC", "auc": "AUC"}[headline],
                                     save_to=run.figures, name="label_efficiency")
    gain = [b[0] - a[0] for a, b in zip(curve["from scratch"], curve["fine-tuned"])]
    gain_err = [float(np.hypot(a[1], b[1])) for a, b in zip(curve["from scratch"], curve["fine-tuned"])]
    real = [g > 2 * e for g, e in zip(gain, gain_err)]
    if all(real) and gain[0] >= max(gain):
        verdict = "pretraining helps, and most where labels are scarce"
    elif all(real):
        verdict = "pretraining helps at every fraction, but not most where labels are scarce"
    elif any(real):
        verdict = "the gain is significant only at some fractions (" + ", ".join(
            f"{x:.0%}" for x, r in zip(xs, real) if r) + ")"
    else:
        verdict = "no gain is significant at this sample size"
    show(f"Fine-tuning changes {headline} relative to training from scratch by "
         + ", ".join(f"{g:+.3f} ± {e:.2g} at {x:.0%}" for g, e, x in zip(gain, gain_err, xs))
         + f" of the labels: {verdict}. Every point takes as many optimizer steps as with all labels "
           f"(`classify.equal_steps`).")

# %% tags=["hide-input"]
for extra in (c["also"] if compare else []):
    r = {name: study.stages.classifier(run, classify__task=extra, **variants[name]) for name in ("tokens", "raw")}
    key = "auc_macro" if any(k.endswith(".auc_macro") for k in r["tokens"]) else "auc"
    n_eff = r["tokens"].get(f"classify.{extra}.tokens.n_eff_background")
    n_bkg = r["tokens"].get(f"classify.{extra}.tokens.n_background")
    weighted = (f"; the weighted background is worth {n_eff:.0f} of its {n_bkg:.0f} test events (cross-section weights "
                f"make a few samples dominate: chapter 04 says what event shape alone explains)"
                if n_eff is not None and n_bkg and n_eff < 0.5 * n_bkg else "")
    show(f"**{extra}**: tokens {fmt(r['tokens'][f'classify.{extra}.tokens.{key}'], r['tokens'].get(f'classify.{extra}.tokens.{key}_err'))}"
         f", raw features {fmt(r['raw'][f'classify.{extra}.raw.{key}'], r['raw'].get(f'classify.{extra}.raw.{key}_err'))} ({key})"
         + weighted + ".")
