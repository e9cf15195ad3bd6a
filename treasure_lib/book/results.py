"""The results page: headline numbers of each run, read from its metrics.json, the four models side by side.

`headline_rows(study, classify)` is the one list of what the page shows: (label, key, uncertainty key). A key
holding `{variant}` is shown once per column of `COMPARE`; other keys get one value column. Rows whose
keys a run did not record are left out. Every number and table goes through the book's one formatter
(`formatting`: `seed_mean`, `markdown_table`), as in the chapters; a seed mean carries its seed spread, and a
number from a model that did not finish learning is marked † (its `<prefix>.converged` is 0): no verdict rests on
it. The metrics.json keys are listed under each table, not in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..config import AnomalyParams, ClassifyParams, StudyParams
from ..formatting import DASH, fmt, markdown_table, seed_mean
from ..study import names

Row = tuple[str, str, "str | None"]

#: Columns of the comparison table: ({variant} value, header).
COMPARE: tuple[tuple[str, str], ...] = tuple(
    (v, names.first_upper(names.model(v))) for v in ("tokens", "tokens_finetuned", "decoded", "raw")
)

UNCONVERGED = "\u2020"


def _flavour_rows(task: str) -> list[Row]:
    c = f"classify.{task}.{{variant}}"
    return [
        (names.first_upper(names.statistic(s)), f"{c}.{s}", f"{c}.{s}_err")
        for s in (
            "light_rejection_at_77",
            "c_rejection_at_77",
            "light_rejection_at_70",
            "light_rejection_at_85",
            "tau_rejection_at_77",
            "auc_b",
            "auc_macro",
        )
    ]


def headline_rows(study: StudyParams, classify: ClassifyParams) -> list[Row]:
    """What the results page shows for a run with these study and classify sections; extend here (keys:
    metric_keys.py)."""
    task = classify.task or ("flavour" if study.kind == "jets" else "signal")
    c = f"classify.{task}.{{variant}}"
    rows: list[Row] = []
    if study.kind == "jets":
        rows += _flavour_rows(task)
        rows += [
            (
                "Track pT response resolution after all levels, (q75 - q25) / median",
                "tokenizer.tracks.pt.response_iqr_over_median",
                None,
            ),
            (
                "Jet pT (summed decoded tracks) response resolution, (q75 - q25) / median",
                "tokenizer.jets.track_sum_pt.response_iqr_over_median",
                "tokenizer.jets.track_sum_pt.response_iqr_over_median_err",
            ),
            ("Codebook utilisation, tracks, level 1", "codebook.tracks.level_1.utilization", None),
            ("Tracks surviving decode -> encode", "codebook.tracks.reencode_fraction", None),
            (
                f"Leakage: {names.task(task)} from multiplicities only (b vs rest AUC)",
                f"leakage.{task}.multiplicity.auc_b",
                f"leakage.{task}.multiplicity.auc_b_err",
            ),
            ("Leakage: share of the separation event shape alone explains", f"leakage.{task}.shape_fraction", None),
            (
                "Generalisation: ttbar-trained, light rejection at 77% on ttbar test jets",
                "generalisation.ttbar_to_ttbar.light_rejection_at_77",
                "generalisation.ttbar_to_ttbar.light_rejection_at_77_err",
            ),
            (
                "Generalisation: ttbar-trained, light rejection at 77% on Z' test jets",
                "generalisation.ttbar_to_Zprime_qq.light_rejection_at_77",
                "generalisation.ttbar_to_Zprime_qq.light_rejection_at_77_err",
            ),
        ]
    else:
        rows += [
            ("ROC AUC", f"{c}.auc", f"{c}.auc_err"),
            (
                names.first_upper(names.statistic("signal_efficiency_at_rejection_90")),
                f"{c}.signal_efficiency_at_rejection_90",
                f"{c}.signal_efficiency_at_rejection_90_err",
            ),
            ("m4l from decoded leptons: resolution [GeV]", "tokenizer.leptons.m4l.residual_sigma68_gev", None),
            ("m4l peak shift [GeV]", "tokenizer.leptons.m4l.peak_shift_gev", None),
            ("m_ll (Z candidate) resolution [GeV]", "tokenizer.leptons.mll.residual_sigma68_gev", None),
        ]
        for t in classify.leakage_tasks or [task]:
            rows += [
                (
                    f"Leakage, {names.task(t)}: multiplicities only (AUC)",
                    f"leakage.{t}.multiplicity.auc",
                    f"leakage.{t}.multiplicity.auc_err",
                ),
                (
                    f"Leakage, {names.task(t)}: full tokens (AUC)",
                    f"leakage.{t}.tokens.auc",
                    f"leakage.{t}.tokens.auc_err",
                ),
                (f"Leakage, {names.task(t)}: share event shape explains", f"leakage.{t}.shape_fraction", None),
            ]
        for t in classify.also or []:
            rows += [
                (f"{names.task(t)}: AUC", f"classify.{t}.{{variant}}.auc", f"classify.{t}.{{variant}}.auc_err"),
                (
                    f"{names.task(t)}: macro AUC",
                    f"classify.{t}.{{variant}}.auc_macro",
                    f"classify.{t}.{{variant}}.auc_macro_err",
                ),
            ]
    rows += [
        ("Masked-token accuracy (pretraining)", "pretrain.masked_accuracy", None),
        ("Most frequent code's share (its chance level)", "pretrain.baseline.most_frequent_share", None),
        ("Linear-probe AUC on the pretrained backbone", "pretrain.probe_auc", None),
        ("Export throughput [rows/s]", "export.rows_per_s", None),
    ]
    return rows


def anomaly_rows(anomaly: AnomalyParams, study: StudyParams, classify: ClassifyParams) -> list[Row]:
    """Chapter 08's headline rows: per held-out signal the AUC of each score against the standard model (the
    supervised classifier is the upper bound), and what each pretraining objective buys at the fewest labels (the
    next-token row where `anomaly.label_efficiency` trains it)."""
    rows: list[Row] = []
    for signal in anomaly.signals:
        for score in ("masked", "masked_per_object", "next_token_per_object", "autoencoder", "supervised"):
            key = f"anomaly.{signal}.{score}"
            rows.append(
                (f"Anomaly, {names.sample(signal)}: {names.model(score)} (AUC)", f"{key}.auc", f"{key}.auc_err")
            )
        key = f"anomaly.{signal}.masked"
        rows.append(
            (
                f"Anomaly, {names.sample(signal)}: {names.model('masked')}, signal eff. at 1% SM eff.",
                f"{key}.eff_at_1pc",
                f"{key}.eff_at_1pc_err",
            )
        )
    if anomaly.signals and classify.label_fractions:
        task = classify.task or ("flavour" if study.kind == "jets" else "signal")
        pct = round(100 * min(classify.label_fractions))
        stat = "light_rejection_at_77" if study.kind == "jets" else "auc"
        trained = ("tokens", "tokens_finetuned") + (
            ("tokens_finetuned_next_token",) if anomaly.label_efficiency else ()
        )
        for variant in trained:
            key = f"classify.{task}.{variant}.label_fraction_{pct}.{stat}"
            label = f"{names.first_upper(names.statistic(stat))} with {pct}% of the labels: {names.model(variant)}"
            rows.append((label, key, f"{key}_err"))
    return rows


def _converged(metrics: Mapping, key: str) -> bool | None:
    """The training health of the model a key belongs to: `<prefix>.converged` for the longest recorded prefix."""
    parts = key.split(".")
    for n in range(len(parts) - 1, 1, -1):
        flag = metrics.get(".".join(parts[:n]) + ".converged")
        if flag is not None:
            return bool(flag)
    return None


def _cell(metrics: Mapping, key: str, err_key: str | None) -> str | None:
    if key not in metrics:
        return None
    text = seed_mean(
        metrics[key],
        metrics.get(err_key) if err_key else None,
        metrics.get(f"{key}_seed_std"),
        err_recorded=bool(err_key) and err_key in metrics,
    )
    if _converged(metrics, key) is False:
        text += f" {UNCONVERGED}"
    return text


def tables(metrics: Mapping, rows: Sequence[Row]) -> str:
    """Markdown: a table of the four models for `{variant}` rows and a value table for the others, each followed
    by the metrics.json keys its rows read."""
    compare, single, compare_keys, single_keys = [], [], [], []
    for label, key, err_key in rows:
        if "{variant}" in key:
            cells = [
                _cell(metrics, key.format(variant=v), err_key.format(variant=v) if err_key else None)
                for v, _ in COMPARE
            ]
            if any(c is not None for c in cells):
                compare.append([label, *[c or DASH for c in cells]])
                compare_keys.append(key.format(variant="{" + ",".join(v for v, _ in COMPARE) + "}"))
        else:
            cell = _cell(metrics, key, err_key)
            if cell is not None:
                single.append([label, cell])
                single_keys.append(key)
    parts = []
    if compare:
        parts.append(markdown_table(compare, ["Quantity", *[h for _, h in COMPARE]]))
        parts.append(
            _keys_note(
                compare_keys,
                "mean over training seeds ± test-sample uncertainty (bootstrap, working "
                "point recomputed), seed spread in brackets",
            )
        )
    if single:
        parts.append(markdown_table(single, ["Quantity", "Value"]))
        parts.append(_keys_note(single_keys))
    if any(UNCONVERGED in c for row in compare + single for c in row):
        parts.append(
            f"{UNCONVERGED} from a model that did not finish learning (its `converged` flag is 0): no verdict "
            f"rests on it."
        )
    if not compare and not single:
        parts.append(f"No headline number is recorded in this run's metrics.json yet ({len(metrics)} keys).")
    return "\n\n".join(parts)


def _keys_note(keys: Sequence[str], what: str = "") -> str:
    shown = ", ".join(f"`{k}`" for k in keys)
    return f"<small>{what + '. ' if what else ''}metrics.json keys, row by row: {shown}.</small>"


def resolution(metrics: Mapping, study: StudyParams, classify: ClassifyParams) -> str:
    """What this CPU-scale run can resolve, from its own numbers: the test-sample size behind the headline figure of
    merit, its relative test-sample and seed uncertainties, and the smallest difference that would count as real."""
    from ..metrics import SIGNIFICANCE_THRESHOLD

    task = classify.task
    flavour = study.kind == "jets"
    stat = "light_rejection_at_77" if flavour else "auc"
    rows = []
    for variant in ("tokens", "raw"):
        value = metrics.get(f"classify.{task}.{variant}.{stat}")
        err = metrics.get(f"classify.{task}.{variant}.{stat}_err")
        spread = metrics.get(f"classify.{task}.{variant}.{stat}_seed_std")
        if isinstance(value, (int, float)) and isinstance(err, (int, float)) and value:
            seeds = f", seed spread {fmt(spread)}" if isinstance(spread, (int, float)) and math.isfinite(spread) else ""
            rows.append(
                f"{names.model(variant)} {fmt(value, err)} ({abs(err / value):.0%} from the test sample{seeds})"
            )
    if not rows:
        return ""
    counts = ""
    if flavour:
        n_b, n_light = (metrics.get(f"classify.{task}.tokens.seed_1.{k}") for k in ("n_b", "n_light"))
        if n_b and n_light:
            counts = (
                f" The test split holds {int(n_b)} b-jets and {int(n_light)} light jets: at a light rejection of "
                f"100 only about {int(n_light) // 100} light jets pass the 77% working point, so rejections "
                f"carry tens of per cent of counting uncertainty."
            )
    return (
        f"**What this CPU-scale run can resolve.** {names.first_upper(names.statistic(stat))}: "
        + "; ".join(rows)
        + "."
        + counts
        + f" A difference between two models counts only when it exceeds {SIGNIFICANCE_THRESHOLD:g} times "
        "its paired uncertainty (test sample and seeds together); smaller differences are not resolved here, and "
        "the GPU-scale parameters in params/studies/ exist to resolve them."
    )
