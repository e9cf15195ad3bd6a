"""Do decoded leptons keep the Z and H peaks as narrow as the detector made them? (chapter 02, events)

Why: the events study asks whether tokens separate H -> 4l from ZZ*; a tokenizer that widens the m4l peak beyond
the detector's resolution hides the very feature the analysis relies on. On test events of the H -> 4l signal
region (selected on the original leptons), the quadruplet the selection chose is rebuilt from the same leptons
after encode -> decode through their cards. Compared, with sigma68 (half the 16-84% interval):
- m4l of the signal events (the H peak; the detector's resolution, since Gamma_H is 4 MeV);
- m12, the leading pair's mass, of the events whose original m12 lies in the Z window (the Z peak).
The requirement (issue 15): each decoded width within `WIDTH_LIMIT` times the original one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .. import higgs4l
from ..config import DataParams, SelectionParams
from ..diagnostics.reconstruction import Z_WINDOW_GEV
from ..formatting import fmt
from ..io.batch import ObjectArrays
from ..kinematics import p4_mass
from ..metrics.reconstruction import sigma68

WIDTH_LIMIT = 1.2  # decoded peak width / original peak width allowed
SIGNAL = "ggH_ZZ4l"
LEPTONS = ("electrons", "muons")
N_BOOT = 200


def lepton_cards(tokens) -> dict:
    """The cards that tokenize electrons or muons (name -> tokenizer)."""
    return {c: t for c, t in tokens.tokenizers.items() if any(g.name in LEPTONS for g in tokens.groups_of(c))}


def decoded_leptons(tokens, batch, levels: Sequence[int | None] = (None,)) -> dict:
    """{level: {electrons, muons: ObjectArrays}}: a batch's leptons encoded once, decoded with the first q levels of
    their cards for each q in `levels` (None or more levels than a card has: all of its levels), in the batch's
    slots, with the card's feature names."""
    out: dict = {q: {} for q in levels}
    for card, tok in lepton_cards(tokens).items():
        groups = tokens.groups_of(card)
        feats, mask = tokens.card_inputs(batch, card)
        indices = tok.encode(feats, mask)
        for q in levels:
            decoded = tok.decode(indices, levels=None if q is None else min(q, tok.num_quantizers))
            start = 0
            for g in groups:
                m = batch[g.name].mask.shape[1]
                if g.name in LEPTONS:
                    out[q][g.name] = ObjectArrays(
                        decoded[:, start : start + m], mask[:, start : start + m], tuple(tok.features)
                    )
                start += m
    missing = [c for c in LEPTONS if c not in out[levels[0]]]
    if missing:
        raise ValueError(f"no tokenizer card decodes {missing}: the lepton peaks need electrons and muons tokenized")
    return out


def _p4(electrons: ObjectArrays, muons: ObjectArrays) -> np.ndarray:
    """[n, slots, 4] four-vectors (MeV) of the electron slots then the muon slots, as the selection builds them."""
    return higgs4l.lepton_four_vectors(*({f: oa.feature(f) for f in ("pt", "eta", "phi")} for oa in (electrons, muons)))


def chosen_slots(quads: higgs4l.Quadruplets, electrons: ObjectArrays, muons: ObjectArrays) -> np.ndarray:
    """[n, 4] slots (electrons first, then muons) of the selected Z1-, Z1+, Z2-, Z2+ leptons (-1 where none)."""
    slots_p4 = _p4(electrons, muons)  # [n, S, 4]
    dist = np.abs(quads.leptons[:, :, None, :] - slots_p4[:, None, :, :]).sum(-1)  # [n, 4, S]
    valid = np.concatenate([electrons.mask, muons.mask], axis=1)
    dist = np.where(valid[:, None, :], dist, np.inf)
    return np.where(quads.found[:, None], dist.argmin(-1), -1)


def pair_masses(electrons: ObjectArrays, muons: ObjectArrays, slots: np.ndarray) -> dict[str, np.ndarray]:
    """m12 and m4l [GeV] of the leptons in the given slots ([n, 4], Z1 pair first; NaN where a slot is -1)."""
    p4 = _p4(electrons, muons)
    lep = np.take_along_axis(p4, np.maximum(slots, 0)[..., None], axis=1)  # [n, 4, 4]
    ok = (slots >= 0).all(1)
    return {
        "m12": np.where(ok, p4_mass(lep[:, 0] + lep[:, 1]) / 1e3, np.nan),
        "m4l": np.where(ok, p4_mass(lep.sum(1)) / 1e3, np.nan),
    }


def signal_region_masses(
    tokens, batches: Iterable, cuts=None, signal: str = SIGNAL, levels: Sequence[int | None] = (None,)
) -> dict:
    """Stream batches (test split) into the original and decoded masses of the signal region's quadruplets, per
    decoded level: {level: {`m4l`: (orig, decoded) of the signal's events, `mll`: (orig, decoded) m12 of every
    sample's events whose original m12 is in the Z window, `events`: signal-region events read}}."""
    cuts = higgs4l.H4lCuts.from_params(cuts)
    parts = {q: {"m4l": ([], []), "mll": ([], [])} for q in levels}
    events = 0
    for batch in batches:
        quads = higgs4l.quadruplets_of(batch, cuts)
        sr = quads.passed["m4l_window"]
        if not sr.any():
            continue
        batch = batch.take(np.flatnonzero(sr))
        events += len(batch)
        quads = higgs4l.quadruplets_of(batch, cuts)
        slots = chosen_slots(quads, batch["electrons"], batch["muons"])
        orig = pair_masses(batch["electrons"], batch["muons"], slots)
        in_z = (orig["m12"] > Z_WINDOW_GEV[0]) & (orig["m12"] < Z_WINDOW_GEV[1])
        is_signal = str((batch.metadata or {}).get("process")) == signal
        for q, leptons in decoded_leptons(tokens, batch, levels).items():
            dec = pair_masses(leptons["electrons"], leptons["muons"], slots)
            if is_signal:
                parts[q]["m4l"][0].append(orig["m4l"])
                parts[q]["m4l"][1].append(dec["m4l"])
            parts[q]["mll"][0].append(orig["m12"][in_z])
            parts[q]["mll"][1].append(dec["m12"][in_z])
    join = lambda v: np.concatenate(v) if v else np.zeros(0)  # noqa: E731
    return {q: {**{k: (join(a), join(b)) for k, (a, b) in per.items()}, "events": events} for q, per in parts.items()}


def peak_widths(orig, decoded, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, float]:
    """sigma68 [GeV] of the original and decoded masses of the same events, their ratio with a bootstrap error
    (events resampled together), and the sigma68 of the per-event residual decoded - original."""
    orig, decoded = np.asarray(orig, np.float64), np.asarray(decoded, np.float64)
    ok = np.isfinite(orig) & np.isfinite(decoded)
    orig, decoded = orig[ok], decoded[ok]
    n = len(orig)
    if n < 2:
        return {
            "n": n,
            "orig_gev": float("nan"),
            "decoded_gev": float("nan"),
            "ratio": float("nan"),
            "ratio_err": float("nan"),
            "residual_gev": float("nan"),
        }
    w_orig, w_dec = sigma68(orig), sigma68(decoded)
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        a = sigma68(orig[i])
        boot.append(sigma68(decoded[i]) / a if a > 0 else np.nan)
    return {
        "n": n,
        "orig_gev": w_orig,
        "decoded_gev": w_dec,
        "ratio": w_dec / w_orig if w_orig > 0 else float("nan"),
        "ratio_err": float(np.nanstd(boot)) if n_boot else float("nan"),
        "residual_gev": sigma68(decoded - orig),
    }


def meets_requirement(widths: Mapping, limit: float = WIDTH_LIMIT) -> bool:
    return bool(np.isfinite(widths.get("ratio", np.nan)) and widths["ratio"] <= limit)


def requirement_sentence(widths: Mapping[str, Mapping], limit: float = WIDTH_LIMIT) -> str:
    """Whether the decoded m4l (H) and m_ll (Z) peaks stay within `limit` times the original widths."""
    names = {"m4l": ("the H peak in m4l", "signal events"), "mll": ("the Z peak in m_ll (m12)", "events")}
    parts, failed = [], []
    for key in ("m4l", "mll"):
        w = widths.get(key)
        if not w:
            continue
        what, events = names[key]
        if w["n"] < 2:
            parts.append(f"{what}: too few test events in the signal region ({w['n']}) to measure")
            failed.append(key)
            continue
        parts.append(
            f"{what} has σ68 = {fmt(w['decoded_gev'])} GeV from decoded leptons against {fmt(w['orig_gev'])} "
            f"GeV from the original ones ({fmt(w['ratio'], w['ratio_err'])} times as wide, {w['n']} {events}; "
            f"per-event residual σ68 = {fmt(w['residual_gev'])} GeV)"
        )
        if not meets_requirement(w, limit):
            failed.append(key)
    if not parts:
        return "No test event of the signal region: the lepton peaks cannot be measured."
    text = "On test events of the signal region, " + "; ".join(parts) + "."
    if not failed:
        return text + (
            f" Both stay within {limit:g} times the detector's width: the tokens keep the leptons at "
            "detector resolution."
        )
    return text + (
        f" Not within {limit:g} times the detector's width: "
        + ", ".join(failed)
        + "; the tokens widen the peak the analysis relies on."
    )


def metric_items(widths: Mapping[str, Mapping], prefix: str = "tokenizer.leptons.sr") -> dict[str, float]:
    """`tokenizer.leptons.sr.<m4l|mll>.<orig_gev|decoded_gev|ratio|ratio_err|residual_gev|n>`."""
    return {f"{prefix}.{mass}.{k}": float(v) for mass, w in widths.items() for k, v in w.items()}


__all__ = [
    "WIDTH_LIMIT",
    "chosen_slots",
    "decoded_leptons",
    "meets_requirement",
    "metric_items",
    "pair_masses",
    "peak_widths",
    "requirement_sentence",
    "signal_region_masses",
]


# ---------------------------------------------------------------------------- chapter 02's section

REFERENCE = "params/references/lepton_peaks_before.json"  # the design before issue 15, recorded from a run
MASS_LABELS = {"m4l": "m4l (H)", "mll": "m_ll (Z)"}


def level_rows(widths: Mapping[int, Mapping], reference: Mapping | None = None) -> list[dict]:
    """One display row per number of decoded levels (and the recorded reference design first, when given)."""

    def row(label, w):
        out = {"Decoded with": label}
        for mass in ("m4l", "mll"):
            x = w.get(mass, {})
            widths_text = f"{fmt(x.get('orig_gev'))} → {fmt(x.get('decoded_gev'))}"
            out[f"{MASS_LABELS[mass]} σ68 [GeV]: original → decoded"] = widths_text
            out[f"{MASS_LABELS[mass]} width ratio"] = fmt(x.get("ratio"), x.get("ratio_err"))
            out[f"{MASS_LABELS[mass]} residual σ68 [GeV]"] = x.get("residual_gev")
        return out

    rows = [row(f"{reference['design']} (recorded)", reference["widths"])] if reference else []
    last = max(widths)
    for q in sorted(widths):
        rows.append(row(f"{q} level{'s' * (q != 1)}" + (" (the cards)" if q == last else ""), widths[q]))
    return rows


def reference_sentence(reference: Mapping | None, widths: Mapping[str, Mapping]) -> str:
    """The recorded design before this one, with where its numbers come from, against the run's cards."""
    if not reference:
        return ""
    before = reference["widths"]
    parts = [
        f"{MASS_LABELS[m]} {fmt(before[m]['ratio'], before[m].get('ratio_err'))} times as wide"
        for m in ("m4l", "mll")
        if m in before
    ]
    now = [f"{fmt(widths[m]['ratio'], widths[m]['ratio_err'])}" for m in ("m4l", "mll") if m in widths]
    return (
        f"Before: {reference['design']} gave {' and '.join(parts)} as the original peaks (recorded by "
        f"{reference['recorded_by']}, {reference['data']}; not recomputed in this run); these cards: "
        f"{' and '.join(now)}."
    )


def load_reference(path: str = REFERENCE) -> dict | None:
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_absolute():  # relative to the repository, wherever the chapter runs
        p = Path(__file__).resolve().parents[2] / p
    return json.loads(p.read_text()) if p.is_file() else None


def add_to_report(rep, data: DataParams, selection: SelectionParams, tokens, reference: str | None = REFERENCE) -> None:
    """The signal-region lepton peaks after 1, 2, ..., Q decoded levels of the run's lepton cards: the metrics of all
    levels, a table (with the recorded reference design), the requirement's sentence and the m4l figure."""
    from .. import splits
    from ..io.reader import H5Stream
    from ..object_collections import from_data

    cards = lepton_cards(tokens)
    collections = from_data(data)
    reads = {g.name: collections[g.name] for c in cards for g in tokens.groups_of(c)}
    levels = list(range(1, max(t.num_quantizers for t in cards.values()) + 1))
    stream = H5Stream.from_data(data, reads, select_split=splits.TEST)
    masses = signal_region_masses(tokens, stream, selection.h4l, levels=levels)
    widths = {q: {k: peak_widths(*masses[q][k]) for k in ("m4l", "mll")} for q in levels}
    final = widths[levels[-1]]
    ref = load_reference(reference) if reference else None
    rep.metrics.update(metric_items(final))
    rep.tables["lepton_peaks"] = level_rows(widths, ref)
    rep.captions["lepton_peaks"] = (
        f"Test events of the signal region ({masses[levels[-1]]['events']}): σ68 of the H "
        "peak (m4l of the signal) and of the Z peak (m12 in 81–101 GeV) from the original "
        "leptons and from the same leptons decoded with the first q levels; width ratio = "
        f"decoded / original (requirement ≤ {WIDTH_LIMIT:g}); residual = σ68 of decoded − "
        "original, event by event."
    )
    rep.text["lepton_peaks"] = " ".join(t for t in (requirement_sentence(final), reference_sentence(ref, final)) if t)
    orig, dec = masses[levels[-1]]["m4l"]
    rep.figures["m4l_signal_region"] = {
        "orig": orig,
        "decoded": dec,
        "name": "$m_{4\\ell}$, H in the signal region",
        "unit": "GeV",
        "bins": np.linspace(110.0, 140.0, 31),
        "entries": "Events",
        "filename": "decoded_m4l_signal_region",
    }
