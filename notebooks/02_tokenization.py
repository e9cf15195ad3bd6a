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
# input file is exported to token sequences. Here each card encodes and decodes held-out (test)
# objects, and the difference is measured in physical units after 1, 2, ..., Q quantizer levels;
# then the physics built from objects: the jet 4-vector summed from tracks, or the dilepton and
# four-lepton masses.

# %% tags=["parameters"]
params_file = "params/default.yaml"
run_dir = None
overrides = []

# %% tags=["hide-input"]
import json

import numpy as np

from treasure_lib import plots, runs, study
from treasure_lib.diagnostics import reconstruction as reco
from treasure_lib.sequences import TokenizerSet
from treasure_lib.study.report import markdown_table, show

run = runs.open_run(params_file, run_dir, overrides)
plots.style.show_when_made()
params = study.stages.run_params(run)
kind = params["study"]["kind"]
cards = study.stages.tokenizers(run)
token_dir = study.stages.tokens(run)
tokens = TokenizerSet.from_params(params)
held = reco.held_out(params, "test", max_rows=4000)
export_stats = json.loads((token_dir / "export.json").read_text())
run.log_metrics({"export.rows_per_s": export_stats["rows"] / max(export_stats["seconds"], 1e-9)}
                | study.stages.card_training_metrics(cards))
show(f"Cards: {', '.join(f'`{n}` ({t.kind}, Q={t.num_quantizers}, K={t.codebook_size})' for n, t in tokens.tokenizers.items())}; "
     f"{len(list(token_dir.glob('*.tokens.parquet')))} token files; {len(held)} held-out test rows for the numbers below.")

# %% tags=["hide-input"]
reports, cost = {}, []
for card, tok in tokens.tokenizers.items():
    feats, mask = tokens.card_inputs(held, card)  # a combined card: all its collections side by side
    if not mask.any():
        continue
    reports[card] = reco.collection_report(tok, feats, mask)
    run.log_metrics(reco.metric_items(card, reports[card]))
    cost.append(reco.cost_row(card, tok, reports[card], "pt" if "pt" in tok.features else tok.features[0]))
show(markdown_table(cost))

# %% tags=["hide-input"]
rows = []
for card, rep in reports.items():
    tok = tokens.tokenizers[card]
    for f in tok.features[:6]:
        for q, numbers in rep["levels"].items():
            if f in numbers and numbers[f]:
                rows.append({"collection": card, "feature": f, "levels": q, **{k: numbers[f].get(k, float("nan"))
                             for k in ("bias", "resolution", "corr", "response_iqr_over_median", "accuracy")}})
show(markdown_table(rows))

# %% tags=["hide-input"]
main = "tracks" if "tracks" in reports else next(iter(reports))
rep, tok = reports[main], tokens.tokenizers[main]
names = list(tok.features)
pt = names.index("pt") if "pt" in names else 0
fig_dist = plots.distributions(rep["orig"][:, pt] / 1e3, rep["reco"][:, pt] / 1e3, f"{main} $p_T$", "GeV", logy=True,
                               save_to=run.figures, filename=f"reco_{main}_pt")
units = {"pt": "GeV", "eta": "", "phi": "rad", "deta": "", "dphi": "rad", "d0": "mm", "z0": "mm", "z0SinTheta": "mm"}
shown = [f for f in names if f in units][:6]
fig_res = plots.residuals({f: (rep["reco"][:, names.index(f)] - rep["orig"][:, names.index(f)]) / (1e3 if f == "pt" else 1)
                           for f in shown}, units={f: units[f] for f in shown}, save_to=run.figures, name=f"residuals_{main}")
levels = sorted(rep["levels"])
iqr = [rep["levels"][q]["pt"].get("response_iqr_over_median", np.nan) if "pt" in names else np.nan for q in levels]
show(f"{main}: the pT response resolution (q75 - q25) / median of pT_reco / pT_orig goes "
     + " -> ".join(f"{v:.3f}" for v in iqr) + f" after {', '.join(map(str, levels))} levels; each level refines the "
     "code of the level before (residual quantization).")

# %% tags=["hide-input"]
if kind == "jets":
    tracks = held["tracks"]
    jet = reco.jet_report(tracks.features, rep["decoded"][max(levels)], tracks.mask, tracks.names,
                          held["jets"].feature("eta")[:, 0], held["jets"].feature("pt")[:, 0] / 1e3)
    bins = jet["pt_response_in_bins"]
    numbers = {"tokenizer.jets.track_sum_pt.response_iqr_over_median": jet["pt_response"]["iqr_over_median"],
               "tokenizer.jets.track_sum_pt.response_iqr_over_median_err": jet["pt_response"]["iqr_over_median_err"],
               "tokenizer.jets.track_sum_pt.response_median": jet["pt_response"]["median"],
               "tokenizer.jets.track_sum_mass.response_iqr_over_median": jet["mass_response"]["iqr_over_median"],
               "tokenizer.jets.track_sum_eta.sigma68": jet["eta_residual"]["sigma68"],
               "tokenizer.jets.track_sum_phi.sigma68": jet["phi_residual"]["sigma68"]}
    for b in bins:
        if b.get("n", 0) > 10:
            numbers[f"tokenizer.jets.track_sum_pt.bin_{b['low']:g}_{b['high']:g}.response_iqr_over_median"] = b["iqr_over_median"]
            numbers[f"tokenizer.jets.track_sum_pt.bin_{b['low']:g}_{b['high']:g}.response_median"] = b["median"]
    run.log_metrics(numbers)
    ok = [b for b in bins if b.get("n", 0) > 10]
    edges = [ok[0]["low"]] + [b["high"] for b in ok]
    fig_resp = plots.response_vs_pt(edges, [b["iqr_over_median"] for b in ok], [b["median"] - 1 for b in ok],
                                    resolution_err=[b["iqr_over_median_err"] for b in ok], xlabel="Jet $p_T$ [GeV]",
                                    resolution_label="IQR / median of $p_T^{reco}/p_T^{orig}$",
                                    bias_label="Median response - 1", logx=True, save_to=run.figures, name="jet_pt_response")
    worst = max(ok, key=lambda b: abs(b["median"] - 1))
    trend = " -> ".join(f"{b['median']:.2f}" for b in ok)
    monotonic = all(x["median"] >= y["median"] for x, y in zip(ok, ok[1:])) or \
        all(x["median"] <= y["median"] for x, y in zip(ok, ok[1:]))
    show(f"Jets summed from decoded tracks reproduce the track-jet pT with a response resolution of "
         f"{jet['pt_response']['iqr_over_median']:.3f} ± {jet['pt_response']['iqr_over_median_err']:.3f} (median response "
         f"{jet['pt_response']['median']:.3f}). The median response across the jet-pT bins goes {trend}"
         + (": a pT-dependent non-closure (the decoder pulls track pT towards the bulk of the training sample), "
            "which the overall median hides" if monotonic else "")
         + f"; the largest scale bias is in the {worst['low']:g}-{worst['high']:g} GeV bin ({worst['median']:.2f}).")
else:
    e_tok, m_tok = tokens.tokenizers.get("electrons"), tokens.tokenizers.get("muons")
    if e_tok is not None and m_tok is not None and "electrons" in reports and "muons" in reports:
        e, m = held["electrons"], held["muons"]
        orig = reco.leptons((e.features, e.mask), (m.features, m.mask), e.names, m.names)
        dec = reco.leptons((reports["electrons"]["decoded"][e_tok.num_quantizers], e.mask),
                           (reports["muons"]["decoded"][m_tok.num_quantizers], m.mask), e_tok.features, m_tok.features)
        masses = reco.lepton_mass_report(orig, dec)
        numbers = {}
        for name, r in masses.items():
            numbers.update({f"tokenizer.leptons.{name}.residual_sigma68_gev": r["residual_gev"].get("sigma68", np.nan),
                            f"tokenizer.leptons.{name}.peak_shift_gev": r["peak_shift_gev"],
                            f"tokenizer.leptons.{name}.events": r["n"]})
        run.log_metrics(numbers)
        figs = [plots.distributions(r["arrays"]["orig"], r["arrays"]["reco"], label, "GeV", bins=np.linspace(*rng, 41),
                                    entries="Events", save_to=run.figures, filename=f"reco_{name}")
                for (name, r), (label, rng) in zip(masses.items(), [("$m_{\\ell\\ell}$", (50, 130)), ("$m_{4\\ell}$", (80, 300))])]
        widths = {name: reco.sigma68(r["arrays"]["orig"][(r["arrays"]["orig"] > lo) & (r["arrays"]["orig"] < hi)])
                  for (name, r), (lo, hi) in zip(masses.items(), [(81, 101), (115, 135)])}
        show(f"From decoded leptons the Z-candidate mass m_ll has a residual (reco - orig) of "
             f"{masses['mll']['residual_gev'].get('sigma68', np.nan):.2f} GeV (half the 16-84% interval, {masses['mll']['n']} "
             f"events) and m_4l {masses['m4l']['residual_gev'].get('sigma68', np.nan):.2f} GeV ({masses['m4l']['n']} events "
             f"with four leptons), against a width of the original peaks of {widths['mll']:.2f} and {widths['m4l']:.2f} GeV: "
             + ("the tokens smear the resonances well beyond their width at this codebook size. "
                if masses["m4l"]["residual_gev"].get("sigma68", np.nan) > 2 * widths["m4l"] else
                "the tokens keep the resonances at about their width. ")
             + f"The peak positions (median in the peak window) move by {masses['mll']['peak_shift_gev']:+.2f} and "
               f"{masses['m4l']['peak_shift_gev']:+.2f} GeV; a window median barely reacts to smearing, the widths do.")
