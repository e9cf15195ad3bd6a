"""Chapter 02, what the tokens keep: every card encodes and decodes held-out (test) objects, measured in physics units.

`report(run)` builds the cards and token files (stages), reads held-out rows, logs the numbers to the run's
metrics.json and returns a `ChapterReport`: a summary table, one per-feature table per collection, the figures'
arrays, and paragraphs whose wording is decided by the small pure functions below (each tested on synthetic
numbers): how each quantizer level refines the key feature, whether jets summed from decoded tracks close in
pT across jet pT, and whether decoded leptons keep the Z and H peaks.

"Decoded" is always tokens turned back into features by the card's decoder; detector reconstruction is
something else. Values are stored in ATLAS units (MeV, mm) and shown converted (GeV) with `display`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..diagnostics import reconstruction as reco
from ..formatting import fmt, signed
from ..io.reader import read_split_rows
from ..metrics.reconstruction import sigma68
from . import display, lepton_peaks, stages
from .report import ChapterReport

HELD_OUT_ROWS = 4000  # test rows read per input file: enough objects for percent-level quantiles, seconds to read
RESIDUAL_PANELS = 6  # residual figure: the first continuous features of the main collection
MIN_JETS_PER_BIN = 10  # a jet-pT bin's median response is quoted from more than this many jets
CLOSURE_TOLERANCE = 0.02  # a response within 2% of 1 closes; a spread across bins below 2% is flat
KEEPS_PEAK = 0.5  # decoded-mass smearing below half the peak width keeps it (<12% wider in quadrature)
SMEARS_PEAK = 2.0  # above twice the width the smearing dominates the peak (>2.2 times as wide)
MASS_PLOTS = {"mll": ("$m_{\\ell\\ell}$", (50.0, 130.0)), "m4l": ("$m_{4\\ell}$", (80.0, 300.0))}
PEAK_WINDOWS = {"mll": reco.Z_WINDOW_GEV, "m4l": reco.H_WINDOW_GEV}
KINDS = {"vqvae": "VQ-VAE", "kmeans": "k-means", "binning": "binning"}
RESPONSE_TEX = "$p_{T}^{\\mathrm{dec}} / p_{T}^{\\mathrm{orig}}$"


# ------------------------------------------------------------------------ metric keys (metric_keys.py documents them)


def export_rate_key() -> str:
    return "export.rows_per_s"


def tokenizer_key(card: str, quantity: str) -> str:
    """`tokenizer.<card>.<quantity>` (objects, bits_per_object, ...)."""
    return f"tokenizer.{card}.{quantity}"


def track_jet_key(variable: str, quantity: str, pt_bin: tuple[float, float] | None = None) -> str:
    """`tokenizer.jets.track_sum_<variable>[.bin_<lo>_<hi>].<quantity>` for jets summed from decoded tracks."""
    where = f".bin_{pt_bin[0]:g}_{pt_bin[1]:g}" if pt_bin else ""
    return f"tokenizer.jets.track_sum_{variable}{where}.{quantity}"


def lepton_mass_key(mass: str, quantity: str) -> str:
    """`tokenizer.leptons.<mll|m4l>.<quantity>`."""
    return f"tokenizer.leptons.{mass}.{quantity}"


# ---------------------------------------------------------------------------- wording: pure functions of numbers


def card_description(name: str, kind: str, levels: int, size: int) -> str:
    """'`tracks` (VQ-VAE, 3 levels × 512 codes)'; a binning card has quantities and bins, not levels and codes."""
    if kind == "binning":
        return f"`{name}` (binning, {levels} quantities × {size} bins)"
    return f"`{name}` ({KINDS.get(kind, kind)}, {levels} level{'s' * (levels != 1)} × {size} codes)"


def intro_sentence(descriptions: Sequence[str], token_files: int, rows: int, split: str = "test") -> str:
    return (
        f"Cards: {', '.join(descriptions)}; {token_files} token files. The numbers below are measured on {rows} "
        f"held-out {split} rows (at most {HELD_OUT_ROWS} per input file) that no card saw in training."
    )


def level_refinement_sentence(collection: str, quantity: str, values: Sequence[float]) -> str:
    """How a quantity that should shrink with each residual level (a resolution) moves from level 1 to Q."""
    values = [float(v) for v in values]
    if not values:
        return ""
    if len(values) == 1:
        return f"{collection}: {quantity} is {fmt(values[0])} with all its quantities binned."
    steps = " → ".join(fmt(v) for v in values)
    worse = [q + 2 for q, (a, b) in enumerate(zip(values, values[1:])) if not b < a]
    verdict = (
        "each level refines the code of the level before (residual quantization)"
        if not worse
        else "level " + ", ".join(map(str, worse)) + " does not improve on the level before: the extra codes "
        "carry no information on this quantity"
    )
    return f"{collection}: {quantity} goes {steps} after 1 → {len(values)} levels; {verdict}."


def non_closure_trend(medians: Sequence[float], tolerance: float = CLOSURE_TOLERANCE) -> str:
    """How the median response moves across ordered jet-pT bins: 'flat' (spread within `tolerance`), 'falling',
    'rising' (monotonic), 'mixed', or 'undetermined' with fewer than two bins."""
    m = np.asarray([v for v in medians if np.isfinite(v)], dtype=np.float64)
    if m.size < 2:
        return "undetermined"
    if m.max() - m.min() <= tolerance:
        return "flat"
    steps = np.diff(m)
    if np.all(steps <= 0):
        return "falling"
    if np.all(steps >= 0):
        return "rising"
    return "mixed"


def _signed_percent(fraction: float) -> str:
    return f"{signed(100 * fraction)}%"


def jet_response_sentence(overall: Mapping, bins: Sequence[Mapping], tolerance: float = CLOSURE_TOLERANCE) -> str:
    """The paragraph on jets summed from decoded tracks: overall resolution and scale, then the trend across jet-pT
    bins (`bins`: rows with low, high [GeV], median, n) and the worst bin."""
    resolution = fmt(overall.get("iqr_over_median"), overall.get("iqr_over_median_err"))
    text = (
        f"Jets summed from decoded tracks reproduce the track-jet pT with a response resolution, (q75 − q25) / "
        f"median of pT(decoded) / pT(original), of {resolution} and a median response of "
        f"{fmt(overall.get('median'))} ({fmt(overall.get('n'))} jets)."
    )
    if not bins:
        return text
    medians = [b["median"] for b in bins]
    trend = non_closure_trend(medians, tolerance)
    text += (
        f" Across jet pT the median response goes {' → '.join(fmt(m) for m in medians)} from the "
        f"{bins[0]['low']:g}–{bins[0]['high']:g} to the {bins[-1]['low']:g}–{bins[-1]['high']:g} GeV bin"
    )
    pct = f"{100 * tolerance:g}"  # a chosen tolerance, not a measurement
    if trend in ("falling", "rising"):
        verb = "falls" if trend == "falling" else "rises"
        text += f": it {verb} with jet pT, a pT-dependent non-closure that the overall median hides"
        if trend == "falling" and medians[0] > 1 + tolerance and medians[-1] < 1 - tolerance:
            text += (
                " (soft jets come out too hard and hard jets too soft, as when the decoder pulls track pT "
                "towards the bulk of the training sample)"
            )
    elif trend == "flat":
        closes = all(abs(m - 1) <= tolerance for m in medians)
        text += f": flat within {pct}%" + (
            f" and within {pct}% of 1, so the scale closes" if closes else ", with a common scale offset"
        )
    elif trend == "mixed":
        text += ": not monotonic in jet pT"
    worst = max(bins, key=lambda b: abs(b["median"] - 1))
    if abs(worst["median"] - 1) > tolerance:
        text += (
            f"; the largest scale bias is {_signed_percent(worst['median'] - 1)} in the {worst['low']:g}–"
            f"{worst['high']:g} GeV bin ({fmt(worst.get('n'))} jets)."
        )
    else:
        text += f"; no bin is off by more than {pct}%."
    return text


def mass_smearing_verdict(residual_sigma68: float, peak_width: float) -> str:
    """What the decoded-mass residual (sigma68, GeV) does to a peak of the given width (GeV): kept, broadened or
    smeared beyond it. Widths add in quadrature, so the decoded peak is sqrt(1 + r^2) times as wide, r = ratio."""
    if not (np.isfinite(residual_sigma68) and np.isfinite(peak_width)) or peak_width <= 0:
        return "too few events to compare the smearing with the peak width"
    r = residual_sigma68 / peak_width
    wider = fmt(math.sqrt(1 + r * r))
    numbers = f"{fmt(r)} times its width; the decoded peak is about {wider} times as wide in quadrature"
    if r < KEEPS_PEAK:
        return f"the tokens keep the peak (smearing {numbers})"
    if r <= SMEARS_PEAK:
        return f"the tokens broaden the peak (smearing {numbers})"
    return f"the tokens smear the resonance well beyond its width at this codebook size (smearing {numbers})"


def peak_width(masses_gev, window: tuple[float, float]) -> float:
    """sigma68 of the original mass inside its peak window [GeV]: the width the decoded smearing is compared with."""
    m = np.asarray(masses_gev, dtype=np.float64)
    return sigma68(m[(m > window[0]) & (m < window[1])])


def lepton_mass_sentence(masses: Mapping[str, Mapping], widths: Mapping[str, float]) -> str:
    """The paragraph on m_ll and m_4l from decoded leptons (`reco.lepton_mass_report` numbers, widths in GeV)."""
    names = {"mll": "the Z-candidate mass m_ll", "m4l": "the four-lepton mass m_4l"}
    events = {"mll": "events", "m4l": "events with four leptons"}
    parts = []
    for key in ("mll", "m4l"):
        r = masses.get(key)
        if r is None:
            continue
        s68 = r["residual_gev"].get("sigma68", float("nan"))
        parts.append(
            f"{names[key]} has a residual (decoded − original) of σ68 = {fmt(s68)} GeV ({fmt(r['n'])} "
            f"{events[key]}) against the original σ68 of {fmt(widths.get(key))} GeV of all events in "
            f"{PEAK_WINDOWS[key][0]:g}–{PEAK_WINDOWS[key][1]:g} GeV (every sample; the signal-region peaks "
            f"follow): "
            f"{mass_smearing_verdict(s68, widths.get(key, float('nan')))}."
        )
    if not parts:
        return ""
    text = " ".join(["From decoded leptons, " + parts[0]] + [p[0].upper() + p[1:] for p in parts[1:]])
    return text + " " + peak_shift_sentence(masses)


def peak_shift_sentence(masses: Mapping[str, Mapping]) -> str:
    """How far the Z (m_ll) and H (m_4l) peak positions move, or why a position cannot be compared."""
    label = {"mll": "m_ll", "m4l": "m_4l"}
    moved, empty = [], []
    for k in ("mll", "m4l"):
        if k not in masses:
            continue
        window = f"{PEAK_WINDOWS[k][0]:g}–{PEAK_WINDOWS[k][1]:g} GeV"
        shift = masses[k]["peak_shift_gev"]
        if np.isfinite(shift):
            moved.append(f"{label[k]} by {signed(shift)} GeV (median in {window})")
        else:
            empty.append(f"the {label[k]} peak cannot be placed: no original or no decoded mass in its {window} window")
    text = ""
    if moved:
        text += (
            "The peak positions move: " + " and ".join(moved) + "; a window median barely reacts to smearing, "
            "the widths do."
        )
    if empty:
        joined = "; ".join(empty)
        text += (" " if text else "") + joined[0].upper() + joined[1:] + "."
    return text


# ---------------------------------------------------------------------------- tables: display rows from numbers


def sigma_header(levels: Sequence[int]) -> str:
    return "σ68, level 1 → Q" if len(levels) > 1 else "σ68"


def feature_rows(
    levels: Mapping[int, Mapping], features: Sequence[str], units: Mapping[str, str], categorical: Sequence[str] = ()
) -> list[dict]:
    """One display row per feature from `reco.collection_report(...)["levels"]`: bias and sigma68 in the shown unit
    (GeV for MeV), sigma68 after each level, correlation, pT-like response resolution, categorical accuracy."""
    order = sorted(levels)
    last = levels[order[-1]]
    header = sigma_header(order)
    rows = []
    for f in features:
        numbers = last.get(f) or {}
        if not numbers:
            continue
        _, factor = display.shown_unit(units.get(f))
        row = {
            "Feature": display.label(f, units.get(f)),
            "Bias": None,
            header: None,
            "Correlation": None,
            "Response IQR/median": None,
            "Accuracy": None,
        }
        if f in categorical or "accuracy" in numbers:
            row["Accuracy"] = numbers.get("accuracy")
        else:
            row["Bias"] = numbers["bias"] * factor
            row[header] = " → ".join(fmt(levels[q][f]["resolution"] * factor) for q in order if levels[q].get(f))
            row["Correlation"] = numbers.get("corr")
            row["Response IQR/median"] = numbers.get("response_iqr_over_median")
        rows.append(row)
    return rows


def key_feature(features: Sequence[str], categorical: Sequence[str] = ()) -> str:
    """The feature a collection is summarised by: pt, else its first continuous feature."""
    if "pt" in features:
        return "pt"
    return next((f for f in features if f not in categorical), features[0])


def summary_row(
    card: str,
    kind: str,
    levels_q: int,
    size: int,
    bits: float,
    objects: int,
    levels: Mapping,
    feature: str,
    unit: str | None,
) -> dict:
    """One row of the short table: the card, what its tokens can carry, and its key feature after each level."""
    order = sorted(levels)
    _, factor = display.shown_unit(unit)
    last = levels[order[-1]].get(feature, {})
    return {
        "Collection": card,
        "Tokenizer": KINDS.get(kind, kind),
        "Q": levels_q,
        "K": size,
        "Bits per object": bits,
        "Held-out objects": objects,
        "Key feature": display.label(feature, unit),
        "σ68, level 1 → Q": " → ".join(
            fmt(levels[q][feature]["resolution"] * factor) for q in order if "resolution" in levels[q].get(feature, {})
        )
        or None,
        "Response IQR/median": last.get("response_iqr_over_median"),
    }


# ---------------------------------------------------------------------------- the chapter's report


def report(run) -> ChapterReport:
    """Everything chapter 02 shows, with the metrics logged to the run (cards and token files built if missing)."""
    from ..object_collections import from_data
    from ..sequences import TokenizerSet

    params = stages.run_params(run)
    cards = stages.tokenizers(run)
    token_dir = stages.tokens(run)
    tokens = TokenizerSet.from_params(params.study, params.data, params.tokenizer, params.export, params.sequence)
    held = read_split_rows(params.data, "test", max_rows=HELD_OUT_ROWS)
    rep = ChapterReport()
    export = json.loads((token_dir / "export.json").read_text())
    rep.metrics.update(
        {export_rate_key(): export["rows"] / max(export["seconds"], 1e-9)} | stages.card_training_metrics(cards)
    )
    rep.text["intro"] = intro_sentence(
        [card_description(n, t.kind, t.num_quantizers, t.codebook_size) for n, t in tokens.tokenizers.items()],
        len(list(token_dir.glob("*.tokens.parquet"))),
        len(held),
    )

    collections = from_data(params.data)
    reports, units = _collections(rep, tokens, held, collections)
    main = "tracks" if "tracks" in reports else next(iter(reports))
    _main_figures(rep, main, tokens.tokenizers[main], reports[main], units[main])
    if params.study.kind == "jets" and "tracks" in reports and "jets" in held.collections:
        _jets(rep, tokens, held, reports["tracks"], collections["jets"])
    elif {"electrons", "muons"} <= set(reports):
        _leptons(rep, tokens, held, reports)
        # the requirement: signal-region peaks at detector width
        lepton_peaks.add_to_report(rep, params.data, params.selection, tokens)
    run.log_metrics(rep.metrics)
    return rep


def _collections(rep: ChapterReport, tokens, held, collections: Mapping) -> tuple[dict, dict]:
    """Each card through encode -> decode on the held-out objects: metrics, the summary row, its feature table."""
    reports, units, summary = {}, {}, []
    for card, tok in tokens.tokenizers.items():
        feats, mask = tokens.card_inputs(held, card)  # a combined card: all its collections side by side
        if not mask.any():
            continue
        reports[card] = reco.collection_report(tok, feats, mask)
        units[card] = display.units_of(collections, [g.name for g in tokens.groups_of(card)])
        rep.metrics.update(reco.metric_items(card, reports[card]) | {tokenizer_key(card, "objects"): int(mask.sum())})
        categorical = tok.collection.get("categorical", ())
        key = key_feature(tok.features, categorical)
        summary.append(
            summary_row(
                card,
                tok.kind,
                tok.num_quantizers,
                tok.codebook_size,
                reco.bits_per_object(tok),
                int(mask.sum()),
                reports[card]["levels"],
                key,
                units[card].get(key),
            )
        )
        rows = feature_rows(reports[card]["levels"], tok.features, units[card], categorical)
        rep.tables[f"features_{card}"] = rows
        rep.captions[f"features_{card}"] = (
            f"**{card}** ({len(rows)} features): bias = mean of decoded − original "
            "and σ68 = half its 16–84% interval, in the unit of each feature; "
            "categorical features by the fraction decoded exactly."
        )
    rep.tables = {"summary": summary, **rep.tables}
    rep.captions["summary"] = (
        "What each card keeps: Q levels of K codes (bits per object = Q log2 K) and its key "
        "feature's σ68 (decoded − original) after each level, in the unit shown; the response "
        "IQR/median is (q75 − q25) / median of decoded / original."
    )
    return reports, units


def _main_figures(rep: ChapterReport, main: str, tok, report_: Mapping, units: Mapping[str, str]) -> None:
    """The main collection's key-feature distribution, its residual panels and the level-by-level sentence."""
    names = list(tok.features)
    categorical = tok.collection.get("categorical", ())
    key = key_feature(names, categorical)
    unit, factor = display.shown_unit(units.get(key))
    i = names.index(key)
    rep.figures["key_feature"] = {
        "orig": report_["orig"][:, i] * factor,
        "decoded": report_["reco"][:, i] * factor,
        "name": f"{main}: {display.name(key, tex=True)}",
        "unit": unit,
        "logy": key in tok.collection.get("log_features", ()),
        "filename": f"decoded_{main}_{key}",
    }
    shown = [f for f in names if f not in categorical][:RESIDUAL_PANELS]
    residuals, panel_units = {}, {}
    for f in shown:
        u, k = display.shown_unit(units.get(f))
        j = names.index(f)
        residuals[display.name(f)] = (report_["reco"][:, j] - report_["orig"][:, j]) * k
        panel_units[display.name(f)] = u
    rep.figures["residuals"] = {"residuals_by_feature": residuals, "units": panel_units, "name": f"residuals_{main}"}
    levels = sorted(report_["levels"])
    if "response_iqr_over_median" in report_["levels"][levels[-1]].get(key, {}):
        quantity = f"the {display.name(key)} response resolution (q75 − q25) / median of decoded / original"
        values = [report_["levels"][q][key]["response_iqr_over_median"] for q in levels]
    else:
        quantity = f"the {display.name(key)} σ68 (decoded − original){f' [{unit}]' if unit else ''}"
        values = [report_["levels"][q][key]["resolution"] * factor for q in levels]
    rep.text["levels"] = level_refinement_sentence(main, quantity, values)


def jet_metrics(jet: Mapping, bins: Sequence[Mapping]) -> dict[str, float]:
    """The documented `tokenizer.jets.track_sum_*` numbers of `reco.jet_report` (bins: the quoted ones)."""
    out = {
        track_jet_key("pt", "response_iqr_over_median"): jet["pt_response"]["iqr_over_median"],
        track_jet_key("pt", "response_iqr_over_median_err"): jet["pt_response"]["iqr_over_median_err"],
        track_jet_key("pt", "response_median"): jet["pt_response"]["median"],
        track_jet_key("mass", "response_iqr_over_median"): jet["mass_response"]["iqr_over_median"],
        track_jet_key("eta", "sigma68"): jet["eta_residual"]["sigma68"],
        track_jet_key("phi", "sigma68"): jet["phi_residual"]["sigma68"],
    }
    for b in bins:
        out[track_jet_key("pt", "response_iqr_over_median", (b["low"], b["high"]))] = b["iqr_over_median"]
        out[track_jet_key("pt", "response_median", (b["low"], b["high"]))] = b["median"]
    return out


def quoted_bins(bins: Sequence[Mapping], min_jets: int = MIN_JETS_PER_BIN) -> list[Mapping]:
    """The jet-pT bins with enough jets for a median response."""
    return [b for b in bins if b.get("n", 0) > min_jets]


def _jets(rep: ChapterReport, tokens, held, tracks_report: Mapping, jets_collection) -> None:
    """Jets summed from original vs decoded tracks (the tracks card's own feature order on both sides);
    `jets_collection` the jets' Collection (its axis label)."""
    tok = tokens.tokenizers["tracks"]
    feats, mask = tokens.card_inputs(held, "tracks")
    decoded = tracks_report["decoded"][max(tracks_report["decoded"])]
    jets = held["jets"]
    jet = reco.jet_report(feats, decoded, mask, tok.features, jets.feature("eta")[:, 0], jets.feature("pt")[:, 0] / 1e3)
    bins = quoted_bins(jet["pt_response_in_bins"])
    rep.metrics.update(jet_metrics(jet, bins))
    rep.text["jets"] = jet_response_sentence(jet["pt_response"], bins)
    if bins:
        rep.figures["jet_response"] = {
            "edges": [bins[0]["low"]] + [b["high"] for b in bins],
            "resolution": [b["iqr_over_median"] for b in bins],
            "bias": [b["median"] - 1 for b in bins],
            "resolution_err": [b["iqr_over_median_err"] for b in bins],
            "xlabel": display.feature_label(jets_collection, "pt"),
            "resolution_label": f"IQR / median of {RESPONSE_TEX}",
            "bias_label": f"Median {RESPONSE_TEX} − 1",
            "logx": True,
            "name": "jet_pt_response",
        }


def lepton_metrics(masses: Mapping[str, Mapping]) -> dict[str, float]:
    """The documented `tokenizer.leptons.<mass>.*` numbers of `reco.lepton_mass_report`."""
    out = {}
    for name, r in masses.items():
        out[lepton_mass_key(name, "residual_sigma68_gev")] = r["residual_gev"].get("sigma68", float("nan"))
        out[lepton_mass_key(name, "peak_shift_gev")] = r["peak_shift_gev"]
        out[lepton_mass_key(name, "events")] = r["n"]
    return out


def _leptons(rep: ChapterReport, tokens, held, reports: Mapping) -> None:
    """m_ll and m_4l from decoded electrons and muons vs the original ones."""
    e_tok, m_tok = tokens.tokenizers["electrons"], tokens.tokenizers["muons"]
    e, m = held["electrons"], held["muons"]
    orig = reco.leptons((e.features, e.mask), (m.features, m.mask), e.names, m.names)
    dec = reco.leptons(
        (reports["electrons"]["decoded"][e_tok.num_quantizers], e.mask),
        (reports["muons"]["decoded"][m_tok.num_quantizers], m.mask),
        e_tok.features,
        m_tok.features,
    )
    masses = reco.lepton_mass_report(orig, dec)
    rep.metrics.update(lepton_metrics(masses))
    widths = {name: peak_width(r["arrays"]["orig"], PEAK_WINDOWS[name]) for name, r in masses.items()}
    rep.text["leptons"] = lepton_mass_sentence(masses, widths)
    for name, r in masses.items():
        label, (low, high) = MASS_PLOTS[name]
        rep.figures[name] = {
            "orig": r["arrays"]["orig"],
            "decoded": r["arrays"]["reco"],
            "name": label,
            "unit": "GeV",
            "bins": np.linspace(low, high, 41),
            "entries": "Events",
            "filename": f"decoded_{name}",
        }
