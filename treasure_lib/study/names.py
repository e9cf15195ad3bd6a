"""Physics names for what the code calls by identifiers: models, tasks, samples, statistics.

One mapping, used by every chapter, report and the results page, so a page never shows
`tokens_finetuned` or `h_vs_qqzz` and two pages never name one thing differently.
"""

from __future__ import annotations

from ..anomaly.wording import SCORE_NAMES
from ..plots.style import first_upper  # noqa: F401  (one helper; names re-exports it for the study layer)

MODELS = {
    "tokens": "tokens, from scratch",
    "tokens_finetuned": "tokens, fine-tuned",
    "tokens_finetuned_next_token": "tokens, fine-tuned from the next-token backbone",
    "tokens_frozen": "tokens, frozen backbone",
    "tokens_slow": "tokens, slowly fine-tuned",
    "raw": "raw features",
    "decoded": "decoded tokens",
    "multiplicity": "multiplicities only",
    "structure": "structure only",
    "shuffled": "codes shuffled within type",
    "fixed_slots": "fixed slots, no SEP / type ids",
    "mass_window": "m4l window",
    "gbdt": "gradient-boosted trees, high-level variables",
    # chapter 08's anomaly scores (higher: less like the standard model), named where their sentences are written
    **SCORE_NAMES,
    "supervised": "supervised token classifier (reference)",
    "objects": "number of objects (no model)",
    "jet_pt": "jet pT (no model)",
}

TASKS = {
    "flavour": "jet flavour (b / c / light / tau)",
    "flavour_ttbar": "jet flavour, trained on ttbar jets",
    "h_vs_qqzz": "H -> 4l vs qq -> ZZ*",
    "h_vs_qqzz_4l": "H -> 4l vs qq -> ZZ*, four leptons",
    "h_vs_zz_sr": "H -> 4l vs qq -> ZZ* in the signal region",
    "h_vs_all": "H -> 4l vs all backgrounds after the 4l preselection (at CPU scale only qq -> ZZ* passes it)",
    "multiclass": "H / ZZ / Z / W / top / QCD",
}

SAMPLES = {
    "ttbar": "ttbar",
    "Zprime_qq": "Z' (1.5 TeV) -> qq",
    "ggH_ZZ4l": "gg -> H -> ZZ* -> 4l",
    "qqZZ_4l": "qq -> ZZ* -> 4l",
    "Zjets": "Z + jets",
    "Wjets": "W + jets",
    "WZ_3lnu": "WZ -> 3l nu",
    "Ztautau": "Z -> tau tau",
    "QCD": "QCD multijet",
    "standard_model": "SM mixture the study reads",
    "HV_darkpion_bb": "dark shower (dark pions, c tau 20 mm, -> b bbar)",
    "Zprime_tt": "Z' (2 TeV) -> t tbar",
    "H2_ZZ4l_300": "H2 (300 GeV) -> ZZ -> 4l",
}

STATISTICS = {
    "light_rejection_at_70": "light-jet rejection at 70% b-efficiency",
    "light_rejection_at_77": "light-jet rejection at 77% b-efficiency",
    "light_rejection_at_85": "light-jet rejection at 85% b-efficiency",
    "c_rejection_at_70": "c-jet rejection at 70% b-efficiency",
    "c_rejection_at_77": "c-jet rejection at 77% b-efficiency",
    "c_rejection_at_85": "c-jet rejection at 85% b-efficiency",
    "tau_rejection_at_77": "tau-jet rejection at 77% b-efficiency",
    "auc": "ROC AUC",
    "auc_b": "b vs rest AUC",
    "auc_macro": "macro one-vs-rest AUC",
    "signal_efficiency_at_rejection_50": "signal efficiency at 50% background rejection",
    "signal_efficiency_at_rejection_90": "signal efficiency at 90% background rejection",
}


def model(key: str) -> str:
    return MODELS.get(key, key.replace("_", " "))


def task(key: str) -> str:
    return TASKS.get(key, key.replace("_", " "))


def sample(key: str) -> str:
    return SAMPLES.get(key, key)


def statistic(key: str) -> str:
    return STATISTICS.get(key, key.replace("_", " "))
