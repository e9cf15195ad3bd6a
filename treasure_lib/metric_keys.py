"""Every key a run may write to `metrics.json`, with its meaning: the one documented place scans and the book read.

Keys are flat and dotted, `<stage>.<collection or task>.<quantity>`. A pattern's `{name}` parts
match one dotted component: `{collection}` a collection name, `{feature}` a feature name, `{q}`
a level number (1 = after the first quantizer level), `{task}` a classification task, `{variant}`
how a classifier saw the data, `{wp}` a working point in percent (70, 77, 80, 85).
Every number has an uncertainty key beside it where one is defined (`..._err`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import ConfigError

QUANTITIES = "bias|mae|resolution|corr|response_median|response_iqr_over_median|accuracy"
VARIANTS = "tokens|tokens_finetuned|tokens_frozen|tokens_slow|raw|decoded|tokens_finetuned_next_token"

KEYS: dict[str, str] = {
    # data
    "data.{sample}.rows": "rows (jets or events) of a sample after the study's cuts",
    "data.all.{split}_rows": "rows in the train, val or test split",
    "data.{sample}.h4l.{step}.events": "events of a sample passing the H -> 4l cut flow to this step (higgs4l.STEPS)",
    "data.{sample}.h4l.{step}.fb": "their cross section x efficiency [fb] (files of a sample weighted by their share)",
    "data.{sample}.h4l.{step}.weighted": "their summed weights, for samples without cross sections",
    # tokenizers (card metrics and the reconstruction diagnostics, held-out rows, physical units)
    "tokenizer.{collection}.{feature}.{quantity}": "reconstruction through the card after all levels; bias, mae, "
    "resolution (half the 16-84% interval of reco - orig) in the feature's units, corr, response (reco / orig) "
    "median and (q75 - q25) / median for pt-like features, accuracy for categorical ones",
    "tokenizer.{collection}.{feature}.level_{q}.{quantity}": "the same after the first q quantizer levels",
    "tokenizer.{collection}.objects": "held-out objects the numbers are measured on",
    "tokenizer.{collection}.best_epoch": "epoch of the weights the card holds",
    "tokenizer.{collection}.train_seconds": "wall time of training the card [s]",
    "tokenizer.{collection}.epochs_run": "epochs the card's VQ-VAE trained",
    "tokenizer.{collection}.converged": "1 when early stopping ended the VQ-VAE's training "
    "(its best epoch is not among "
    "the last `patience`), 0 when the epoch budget did",
    "tokenizer.{collection}.bits_per_object": "Q x log2 K: what one object's tokens can carry [bits]",
    "tokenizer.jets.track_sum_pt.response_iqr_over_median": "jet pT from decoded vs original tracks: (q75 - q25) / "
    "median of the response, the resolution the field quotes",
    "tokenizer.jets.track_sum_pt.response_iqr_over_median_err": "its bootstrap uncertainty",
    "tokenizer.jets.track_sum_pt.response_median": "median jet-pT response (scale bias)",
    "tokenizer.jets.track_sum_pt.bin_{lo}_{hi}.response_iqr_over_median": "the same in a jet-pT bin [GeV]",
    "tokenizer.jets.track_sum_pt.bin_{lo}_{hi}.response_median": "median response in a jet-pT bin [GeV]",
    "tokenizer.jets.track_sum_mass.response_iqr_over_median": "jet mass from tracks: response resolution",
    "tokenizer.jets.track_sum_eta.sigma68": "jet axis eta residual (half the 16-84% interval)",
    "tokenizer.jets.track_sum_phi.sigma68": "jet axis phi residual [rad]",
    "tokenizer.leptons.{mass}.residual_sigma68_gev": "m_ll (Z candidate) or m_4l from decoded vs original leptons: "
    "resolution of reco - orig [GeV]",
    "tokenizer.leptons.{mass}.peak_shift_gev": "shift of the Z (m_ll) or H (m_4l) peak position [GeV]",
    "tokenizer.leptons.{mass}.events": "events with the mass defined on both sides",
    "tokenizer.leptons.sr.{mass}.{number}": "signal-region test events (study.lepton_peaks): the H (m4l) or Z (mll) "
    "peak's sigma68 from original (orig_gev) and decoded (decoded_gev) "
    "leptons, their ratio (ratio, ratio_err), the per-event residual "
    "sigma68 (residual_gev) and the events (n)",
    # codebooks
    "codebook.{collection}.level_{q}.utilization": "fraction of the K codes used on held-out objects",
    "codebook.{collection}.level_{q}.dead_codes": "codes never used on held-out objects",
    "codebook.{collection}.level_{q}.perplexity": "exp(entropy) of code usage [codes]",
    "codebook.{collection}.level_{q}.normalized_entropy": "entropy / log K (1: uniform usage)",
    "codebook.{collection}.reencode_fraction": "objects whose tokens survive decode -> encode unchanged",
    "codebook.{collection}.level_{q}.n_objects": "held-out objects the codebook numbers are measured on",
    "codebook.{collection}.level_{q}.codebook_size": "K, the codes of the level",
    "codebook.{collection}.level_{q}.used_codes": "codes used at least once",
    "codebook.{collection}.level_{q}.entropy": "entropy of code usage [nats]",
    "codebook.{collection}.level_{q}.max_frequency": "share of objects on the most used code",
    # export
    "export.rows_per_s": "export throughput of this run, H5 -> token Parquet [rows/s]",
    # pretraining
    "pretrain.masked_accuracy": "fraction of masked tokens predicted exactly (fixed validation mask)",
    "pretrain.masked_accuracy.level_{q}": "the same per quantizer level",
    "pretrain.masked_accuracy.{collection}": "the same per collection",
    "pretrain.next_accuracy": "next-token objective: fraction of the next objects' codes predicted exactly (argmax "
    "within the code's vocabulary range, the true type and coarser codes given)",
    "pretrain.next_accuracy.level_{q}": "the same per quantizer level",
    "pretrain.next_accuracy.{collection}": "the same per collection",
    "pretrain.type_accuracy": "next-token objective: fraction of positions whose next type (a collection, [SEP] or "
    "the end of the row) is predicted exactly",
    "pretrain.loss": "validation loss at the best epoch: the masked-token cross entropy (objective masked) or the "
    "next-token negative log-likelihood per predicted type or code (next_token) [nats]",
    "pretrain.probe_auc": "linear probe AUC on the detached backbone (online estimate of downstream AUC)",
    "pretrain.best_epoch": "epoch of the saved backbone",
    "pretrain.train_seconds": "wall time of pretraining [s]",
    "pretrain.train_rows": "training rows pretraining read (every sample: labels are not used)",
    "pretrain.converged": "1 when early stopping fired (the best epoch is not among the last `patience`), else 0",
    "pretrain.epochs_run": "epochs pretraining ran",
    "pretrain.early_stopped": "1 when early stopping fired (the `converged` flag's first part)",
    "pretrain.left_prior": "1 (pretraining has no class prior to leave: the `converged` flag's second part)",
    "pretrain.best_val_loss": "validation loss of the best epoch as training saw it",
    "pretrain.prior_entropy": "loss of a model that knows only the prior (when defined)",
    "pretrain.baseline.level_{q}.most_frequent_share": "share of the most frequent code among the masked targets of "
    "a level: the accuracy of always guessing it (the right chance level)",
    "pretrain.baseline.{collection}.most_frequent_share": "the same per collection (all its levels)",
    "pretrain.baseline.most_frequent_share": "the same over all masked targets",
    # classification (test split, physics weights)
    "classify.{task}.{variant}.auc": "weighted ROC AUC (binary), test split",
    "classify.{task}.{variant}.auc_err": "its binomial uncertainty from the effective numbers of events",
    "classify.{task}.{variant}.auc_boot_low": "bootstrap 68% interval, low edge",
    "classify.{task}.{variant}.auc_boot_high": "bootstrap 68% interval, high edge",
    "classify.{task}.{variant}.auc_macro": "macro one-vs-rest AUC (multi-class and flavour)",
    "classify.{task}.{variant}.auc_macro_err": "its bootstrap uncertainty",
    "classify.{task}.{variant}.accuracy": "weighted accuracy",
    "classify.{task}.{variant}.auc_{class}": "one-vs-rest AUC of one class",
    "classify.{task}.{variant}.auc_{class}_err": "its uncertainty",
    "classify.{task}.{variant}.{background}_rejection_at_{wp}": "flavour: 1 / background efficiency at a b-jet "
    "efficiency working point of the D_b discriminant",
    "classify.{task}.{variant}.{background}_rejection_at_{wp}_err": "its binomial uncertainty",
    "classify.{task}.{variant}.{extra}": "other summary numbers of metrics.binary_summary / flavour_summary "
    "(event counts, thresholds, achieved efficiencies)",
    "classify.{task}.{variant}.pt_bin_{lo}_{hi}.{number}": "flavour performance in a jet-pT bin [GeV]",
    "classify.{task}.{variant}.label_fraction_{pct}.{number}": "the same with a fraction of the labels (percent)",
    "classify.{task}.{variant}.label_fraction_{pct}.pt_bin_{lo}_{hi}.{number}": "the same in a jet-pT bin",
    "classify.{task}.{variant}.parameters": "trainable + frozen parameters of the model",
    "classify.{task}.{variant}.best_epoch": "epoch of the evaluated weights",
    "classify.{task}.{variant}.train_seconds": "wall time of training [s]",
    "classify.{task}.{variant}.converged": "1 when the model finished learning: early stopping fired and its best "
    "validation loss is clearly below the class-prior entropy (seed means: every seed converged)",
    "classify.{task}.{variant}.early_stopped": "1 when early stopping fired (the best epoch is not among the last "
    "`patience`; a model above the prior gets more patience)",
    "classify.{task}.{variant}.left_prior": "1 when the best validation loss is below (1 - convergence_margin) x the "
    "class-prior entropy; a leakage control may finish at the prior (`study.leakage.CONTROLS`)",
    "classify.{task}.{variant}.{number}_seed_std": "standard deviation of a number over the training seeds",
    "classify.{task}.{variant}.n_seeds": "training seeds the mean is taken over",
    "classify.{task}.{variant}.seed_{s}.{number}": "the number of the model trained with seed s (classify.seeds)",
    "classify.{task}.{variant}.seed_{s}.pt_bin_{lo}_{hi}.{number}": "the same in a jet-pT bin",
    "classify.{task}.{variant}.label_fraction_{pct}.seed_{s}.{number}": "one seed of a label-efficiency point",
    "classify.{task}.{variant}.label_fraction_{pct}.seed_{s}.pt_bin_{lo}_{hi}.{number}": "the same in a jet-pT bin",
    "classify.{task}.compare.{a}_vs_{b}.{number}.{part}": "paired comparison of two models on the same test rows: "
    "diff (a - b, seed means), err_test (paired bootstrap), err_seed, err, z, significant (1 or 0)",
    "classify.{task}.compare.{a}_vs_{b}.label_fraction_{pct}.{number}.{part}": "the same at a label fraction",
    # leakage
    "leakage.{task}.{row}.auc": "AUC of one leakage-report row (multiplicity, structure, shuffled, fixed_slots, "
    "tokens, raw) of a binary task; multi-class tasks: .auc_macro, "
    "flavour: .auc_b (b vs rest, what the table compares)",
    "leakage.{task}.{row}.auc_err": "its uncertainty",
    "leakage.{task}.{row}.auc_b": "b vs rest AUC of a flavour leakage row (D_b as the score)",
    "leakage.{task}.{row}.auc_b_err": "its uncertainty",
    "leakage.{task}.shape_fraction": "(AUC_shape - 0.5) / (AUC_tokens - 0.5): how much event shape alone explains "
    "(converged shape-only rows only)",
    "leakage.{task}.{row}.{number}": "what the classifier of a leakage row recorded (training health, other numbers)",
    "leakage.{task}.{row}.pt_bin_{lo}_{hi}.{number}": "the same in a jet-pT bin",
    # generalisation
    "generalisation.{train}_to_{test}.auc": "AUC of a classifier trained on one background, tested on another",
    "generalisation.{train}_to_{test}.auc_err": "its uncertainty",
    "generalisation.{train}_to_{test}.auc_change": "AUC(test background) - AUC(training background)",
    "generalisation.{train}_to_{test}.{number}": "flavour: performance when tested on another sample",
    "generalisation.{train}_to_{test}.pt_bin_{lo}_{hi}.{number}": "the same in a jet-pT bin [GeV]",
    "generalisation.{train}_to_{test}.converged": "1 when the classifier trained on one sample finished learning",
    # other pretrained backbones (chapter 08: both objectives at every seed of anomaly.seeds)
    "pretrain.{objective}.seed_{s}.{number}": "a number of the backbone pretrained with that objective and seed, as "
    "`pretrain.<number>` is chapter 05's",
    "pretrain.{objective}.seed_{s}.{number}.{part}": "the same per level or collection",
    # anomaly detection (chapter 08): higher scores are less like the standard model
    "anomaly.{signal}.{score}.{number}": "a score's separation of the held-out signal from standard-model test rows, "
    "the mean over anomaly.seeds: auc, eff_at_1pc and eff_at_0p1pc (signal efficiency at 1% and 0.1% standard-model "
    "efficiency), their bootstrap _err and _seed_std, n_seeds; score: masked, next_token (sums over a row's "
    "objects), masked_per_object, next_token_per_object, reconstruction, autoencoder or supervised (the upper bound)",
    "anomaly.{signal}.{score}.seed_{s}.{number}": "the same for one seed",
    "anomaly.{signal}.{score}.{control}_matched.{number}": "the same with the standard-model rows reweighted to the "
    "signal's distribution of a control variable (objects per row, jet pT): what is left beyond ranking by it",
    "anomaly.{signal}.rows": "signal test rows scored",
    "anomaly.{signal}.sm_rows": "standard-model test rows the signal is judged against (after its jet pT cut)",
    "anomaly.autoencoder.seed_{s}.{number}": "training of the raw-feature autoencoder (converged, best_epoch, "
    "epochs_run, parameters, target_parameters)",
    "anomaly.generation.seed_{s}.{variable}.{number}": "generated (next-token backbone) vs test split: w1_over_std, "
    "ks, floor (the same distance of an independent standard-model sample of equal size), floor_std, ratio",
    # the run
    "run.{stage}.seconds": "wall time of a chapter or stage [s]",
}

_PART = r"[A-Za-z0-9_+\-]+"


def _regex(pattern: str) -> re.Pattern:
    out, pos = "", 0
    for m in re.finditer(r"\{(\w+)\}", pattern):
        out += re.escape(pattern[pos : m.start()])
        out += f"(?P<{m.group(1)}{m.start()}>{QUANTITIES})" if m.group(1) == "quantity" else f"{_PART}"
        pos = m.end()
    return re.compile("^" + out + re.escape(pattern[pos:]) + "$")


_COMPILED = [(p, _regex(p)) for p in KEYS]


def describe(key: str) -> str | None:
    """The documentation of a key (None when no pattern documents it)."""
    for pattern, rx in _COMPILED:
        if rx.match(key):
            return KEYS[pattern]
    return None


def check(keys: Iterable[str]) -> None:
    """Every key is documented here; an undocumented one is an error naming it."""
    unknown = [k for k in keys if describe(k) is None]
    if unknown:
        raise ConfigError(f"metrics key(s) {unknown[:5]} are not documented in treasure_lib/metric_keys.py")


def prefixed(prefix: str, numbers: Mapping[str, float]) -> dict[str, float]:
    """`{auc: 0.9}` -> `{prefix.auc: 0.9}` (numbers only; None, strings and nested values are left out)."""
    out = {}
    for k, v in numbers.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        out[f"{prefix}.{k}"] = float(v)
    return out
