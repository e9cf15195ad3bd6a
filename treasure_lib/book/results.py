"""The results page: headline numbers of each run, read from its metrics.json, tokens beside raw features.

`headline_rows(params)` is the one list of what the page shows: (label, key, uncertainty key).
A key holding `{variant}` is shown once per column of `COMPARE` (tokens, raw features); other
keys get one value column. Rows whose keys a run did not record are left out. Numbers are
formatted by `format_number` only, so every shown number is its metrics.json value rounded
to two significant digits of its uncertainty (or to 4 significant digits, or a whole number
from 1000 on, without one).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from ..config import get_dotted

Row = tuple[str, str, "str | None"]

#: Columns of the comparison table: ({variant} value, header).
COMPARE: tuple[tuple[str, str], ...] = (("tokens", "Tokens"), ("tokens_finetuned", "Tokens, fine-tuned"),
                                        ("decoded", "Decoded tokens"), ("raw", "Raw features"))

MISSING = "–"


def headline_rows(params: Mapping) -> list[Row]:
    """What the results page shows for a run with these params; extend here (keys: metric_keys.py)."""
    task = get_dotted(params, "classify.task") or ("flavour" if params["study"]["kind"] == "jets" else "signal")
    c = f"classify.{task}.{{variant}}"
    rows: list[Row] = []
    if params["study"]["kind"] == "jets":
        rows += [
            ("light-jet rejection at 77% b-jet efficiency", f"{c}.light_rejection_at_77", f"{c}.light_rejection_at_77_err"),
            ("c-jet rejection at 77% b-jet efficiency", f"{c}.c_rejection_at_77", f"{c}.c_rejection_at_77_err"),
            ("macro one-vs-rest AUC", f"{c}.auc_macro", f"{c}.auc_macro_err"),
            ("track pT response resolution after all levels, (q75 - q25) / median",
             "tokenizer.tracks.pt.response_iqr_over_median", None),
            ("jet pT (from tracks) response resolution, (q75 - q25) / median",
             "tokenizer.jets.track_sum_pt.response_iqr_over_median", "tokenizer.jets.track_sum_pt.response_iqr_over_median_err"),
            ("codebook utilisation, tracks, level 1", "codebook.tracks.level_1.utilization", None),
            ("tracks surviving decode -> encode", "codebook.tracks.reencode_fraction", None),
            (f"leakage: {task} from multiplicities only (macro AUC)", f"leakage.{task}.multiplicity.auc",
             f"leakage.{task}.multiplicity.auc_err"),
            ("generalisation: ttbar-trained flavour on Z' jets (macro AUC)", "generalisation.ttbar_to_Zprime_qq.auc_macro",
             "generalisation.ttbar_to_Zprime_qq.auc_macro_err"),
        ]
    else:
        rows += [
            ("ROC AUC", f"{c}.auc", f"{c}.auc_err"),
            ("m4l from decoded leptons: resolution [GeV]", "tokenizer.leptons.m4l.residual_sigma68_gev", None),
            ("m4l peak shift [GeV]", "tokenizer.leptons.m4l.peak_shift_gev", None),
            ("m_ll (Z candidate) resolution [GeV]", "tokenizer.leptons.mll.residual_sigma68_gev", None),
        ]
        for t in get_dotted(params, "classify.leakage_tasks") or [task]:
            rows += [(f"leakage {t}: multiplicities only (AUC)", f"leakage.{t}.multiplicity.auc", f"leakage.{t}.multiplicity.auc_err"),
                     (f"leakage {t}: structure only (AUC)", f"leakage.{t}.structure.auc", f"leakage.{t}.structure.auc_err"),
                     (f"leakage {t}: full tokens (AUC)", f"leakage.{t}.tokens.auc", f"leakage.{t}.tokens.auc_err"),
                     (f"leakage {t}: fraction of the AUC event shape explains", f"leakage.{t}.shape_fraction", None)]
        for t in get_dotted(params, "classify.also") or []:
            rows += [(f"{t}: AUC", f"classify.{t}.{{variant}}.auc", f"classify.{t}.{{variant}}.auc_err"),
                     (f"{t}: macro AUC", f"classify.{t}.{{variant}}.auc_macro", f"classify.{t}.{{variant}}.auc_macro_err")]
    rows += [
        ("masked-token accuracy (pretraining)", "pretrain.masked_accuracy", None),
        ("linear-probe AUC on the pretrained backbone", "pretrain.probe_auc", None),
        ("export throughput [rows/s]", "export.rows_per_s", None),
    ]
    return rows


def _decimals(err: float) -> int:
    """Decimals that keep two significant digits of `err`."""
    return max(0, 1 - math.floor(math.log10(abs(err))))


def format_number(value, err=None) -> str:
    """`0.91234, 0.0041` -> '0.9123 ± 0.0041'; no uncertainty: 4 significant digits (whole numbers
    from 1000 on: '123457', never '1.235e+05'); ints as ints; None, NaN, inf -> '–'."""
    if value is None:
        return MISSING
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(err, (int, float)) and not isinstance(err, bool) and math.isfinite(err) and err > 0:
        d = _decimals(err)
        return f"{value:.{d}f} ± {err:.{d}f}"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return MISSING
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def _cell(metrics: Mapping, key: str, err_key: str | None) -> str | None:
    if key not in metrics:
        return None
    return format_number(metrics[key], metrics.get(err_key) if err_key else None)


def _code(key: str) -> str:
    return f"`{key}`"


def tables(metrics: Mapping, rows: Sequence[Row]) -> str:
    """Markdown: a tokens-vs-raw table for `{variant}` rows and a value table for the others."""
    compare, single = [], []
    for label, key, err_key in rows:
        if "{variant}" in key:
            cells = [_cell(metrics, key.format(variant=v), err_key.format(variant=v) if err_key else None)
                     for v, _ in COMPARE]
            if any(c is not None for c in cells):
                shown = key.format(variant="{" + ",".join(v for v, _ in COMPARE) + "}")
                compare.append([label, *[c or MISSING for c in cells], _code(shown)])
        else:
            cell = _cell(metrics, key, err_key)
            if cell is not None:
                single.append([label, cell, _code(key)])
    parts = []
    if compare:
        parts.append(_markdown_table(["Quantity", *[h for _, h in COMPARE], "metrics.json key"], compare))
    if single:
        parts.append(_markdown_table(["Quantity", "Value", "metrics.json key"], single))
    if not parts:
        parts.append(f"No headline number is recorded in this run's metrics.json yet ({len(metrics)} keys).")
    return "\n\n".join(parts)


def _markdown_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *map(line, body)])
