"""Chapter 01's numbers: what the samples hold, how rows split, and a few physics distributions to trust them by."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import numpy as np

from .. import splits
from ..config import DataParams, SelectionParams
from ..io.reader import H5Stream


def summary(data: DataParams, max_rows_per_file: int | None = None) -> dict:
    """Per sample: files, rows per split, cross section, mean object multiplicities; plus arrays for figures."""
    stream = H5Stream.from_data(data)
    if max_rows_per_file:
        stream.max_rows = max_rows_per_file
    samples: dict = defaultdict(lambda: {"files": set(), "rows": np.zeros(3, int), "objects": defaultdict(float)})
    arrays: dict = defaultdict(list)
    for batch in stream:
        name = str(batch.metadata.get("process", batch.source_file))
        s = samples[name]
        s["files"].add(batch.source_file)
        s["rows"] += np.bincount(batch.split, minlength=3)
        s["cross_section_pb"] = batch.metadata.get("cross_section_pb", float("nan"))
        for coll, oa in batch.collections.items():
            if oa.mask.shape[1] > 1:
                s["objects"][coll] += float(oa.mask.sum())
        arrays["process"].append(np.full(len(batch), name))
        arrays["label"].append(batch.labels)
        for coll, oa in batch.collections.items():
            if oa.mask.shape[1] > 1:
                arrays[f"n_{coll}"].append(oa.mask.sum(1))
            elif "pt" in oa.names:
                arrays[f"{coll}_pt_gev"].append(oa.feature("pt")[:, 0] / 1e3)
        if "tracks" in batch.collections and "lifetimeSignedD0Significance" in batch["tracks"].names:
            t = batch["tracks"]
            lead = np.where(t.mask, t.feature("lifetimeSignedD0Significance"), -np.inf).max(1)
            arrays["max_sd0"].append(lead)
    rows = []
    for name, s in sorted(samples.items()):
        total = int(s["rows"].sum())
        rows.append(
            {
                "sample": name,
                "files": len(s["files"]),
                "rows": total,
                **{f"{splits.NAMES[i]}": int(s["rows"][i]) for i in range(3)},
                "cross_section_pb": s["cross_section_pb"],
                **{f"{c} per row": round(v / max(total, 1), 2) for c, v in s["objects"].items()},
            }
        )
    return {"table": rows, "arrays": {k: np.concatenate(v) for k, v in arrays.items()}}


# ---------------------------------------------------------------------------- events: the H -> 4l cut flow

SIGNAL, ZZ = "ggH_ZZ4l", "qqZZ_4l"
ZERO_EVENT_LIMIT = 3.0  # no event passing out of N: the 95% CL upper limit on the passing share is 3 / N


def cut_flow(data: DataParams, selection: SelectionParams, max_rows_per_file: int | None = None) -> dict:
    """The H -> 4l selection (`selection.h4l`) on every input file, per sample, with cross-section weights [fb].

    A sample split into several files is one sample: each file's weighted counts (its own cross section over its
    own sum of weights) enter in proportion to its share of the sample's sum of weights, so the sample's
    cross section counts once. Returns `flows` (sample -> `higgs4l.CutFlow`), `generated` (sample -> events read),
    `m4l` (sample -> (m4l [GeV], weight [fb]) of the events passing every step up to m34, before the window),
    `cuts` and `unit`.
    """
    from .. import higgs4l
    from ..object_collections import from_data

    cuts = higgs4l.H4lCuts.from_params(selection.h4l)
    leptons = {n: c for n, c in from_data(data).items() if n in ("electrons", "muons")}
    stream = H5Stream.from_data(data, leptons)
    if max_rows_per_file:
        stream.max_rows = max_rows_per_file
    per_file: dict = {}
    for batch in stream:
        quads = higgs4l.quadruplets_of(batch, cuts)
        weights, unit = higgs4l.cross_section_weights(batch)
        flow = higgs4l.cut_flow(quads, weights, unit)
        sample = str(batch.metadata.get("process") or batch.source_file)
        sow = float(batch.metadata.get("sum_of_weights") or batch.metadata.get("n_events") or 1.0)
        up_to_m34 = quads.passed["m34"]
        m4l = higgs4l.high_level_variables(quads)["m4l"][up_to_m34]
        entry = per_file.setdefault(
            batch.source_file, {"sample": sample, "sow": sow, "unit": unit, "flow": None, "m4l": [], "w": [], "rows": 0}
        )
        entry["flow"] = flow if entry["flow"] is None else entry["flow"] + flow
        entry["m4l"].append(m4l)
        entry["w"].append(weights[up_to_m34])
        entry["rows"] += len(batch)
    return _combine_files(per_file, cuts)


def _combine_files(per_file: Mapping, cuts) -> dict:
    """Per-file flows -> per-sample flows (weighted counts scaled by each file's share of the sample's weights)."""
    from ..higgs4l import STEPS, CutFlow

    totals: dict = defaultdict(float)
    for f in per_file.values():
        totals[f["sample"]] += f["sow"]
    flows, generated, m4l = {}, defaultdict(int), defaultdict(lambda: ([], []))
    units = {f["unit"] for f in per_file.values()}
    for f in per_file.values():
        share = f["sow"] / totals[f["sample"]] if f["unit"] == "fb" else 1.0
        scaled = CutFlow(dict(f["flow"].events), {s: f["flow"].weighted[s] * share for s in STEPS}, f["unit"])
        flows[f["sample"]] = flows[f["sample"]] + scaled if f["sample"] in flows else scaled
        generated[f["sample"]] += f["rows"]
        m4l[f["sample"]][0].extend(f["m4l"])
        m4l[f["sample"]][1].extend([w * share for w in f["w"]])
    masses = {s: (np.concatenate(v[0]), np.concatenate(v[1])) for s, v in m4l.items()}
    return {
        "flows": flows,
        "generated": dict(generated),
        "m4l": masses,
        "cuts": cuts,
        "unit": units.pop() if len(units) == 1 else "mixed",
    }


def sample_order(flows: Mapping) -> list[str]:
    """The signal, the ZZ* background, then the other samples by their weighted count after the last step."""
    first = [s for s in (SIGNAL, ZZ) if s in flows]
    rest = sorted(
        (s for s in flows if s not in first),
        key=lambda s: (-flows[s].weighted["m4l_window"], -flows[s].weighted["all"], s),
    )
    return first + rest


def requirements(cuts) -> dict[str, str]:
    """What each cut-flow step requires, in words and units, from the selection's numbers."""
    lo, hi = cuts.m4l_window_gev
    thresholds = " / ".join(f"{t:g}" for t in cuts.lepton_pt_min_gev)
    return {
        "all": "events read",
        "four_leptons": (
            f"≥ 4 leptons: e with pT > {cuts.electron_pt_min_gev:g} GeV, |η| < {cuts.electron_eta_max:g}, "
            f"{cuts.electron_id}; μ with pT > {cuts.muon_pt_min_gev:g} GeV, |η| < {cuts.muon_eta_max:g}, "
            f"{cuts.muon_quality} or tighter"
        ),
        "two_sfos_pairs": "two same-flavour opposite-sign pairs (the preselection)",
        "lepton_pt": f"quadruplet leptons' pT above {thresholds} GeV (leading first)",
        "isolation": f"each quadruplet lepton's track isolation (ΔR < 0.3) below {cuts.isolation_max:g} of its pT",
        "m12": f"{cuts.m12_gev[0]:g} < m12 < {cuts.m12_gev[1]:g} GeV (pair closest to m_Z)",
        "m34": f"{cuts.m34_gev[0]:g} < m34 < {cuts.m34_gev[1]:g} GeV",
        "m4l_window": f"{lo:g} < m4l < {hi:g} GeV (the signal region)",
    }


def cut_flow_rows(flows: Mapping, cuts, unit: str = "fb") -> list[dict]:
    """The cut-flow table: one row per step, for every sample its events and weighted count (`unit`)."""
    from ..formatting import fmt
    from ..higgs4l import STEPS
    from . import names

    text = requirements(cuts)
    rows = []
    for step in STEPS:
        row = {"Step": step.replace("_", " "), "Requirement": text[step]}
        for s in sample_order(flows):
            row[f"{names.sample(s)}: events · {unit}"] = f"{flows[s].events[step]} · {fmt(flows[s].weighted[step])}"
        rows.append(row)
    return rows


def cut_flow_sentence(flows: Mapping, generated: Mapping, cuts, unit: str = "fb") -> str:
    """The signal region in numbers: what the selection keeps of the signal and of ZZ*, S/B, and the samples that
    keep no event (with the upper limit on their cross section in the region that their size allows)."""
    from ..formatting import fmt
    from ..higgs4l import STEPS
    from . import names

    lo, hi = cuts.m4l_window_gev
    if SIGNAL not in flows or ZZ not in flows:
        return f"The cut flow needs both {SIGNAL} and {ZZ}; the study reads {', '.join(sorted(flows)) or 'neither'}."
    sig, zz = flows[SIGNAL], flows[ZZ]
    kept = lambda f: f.events["m4l_window"] / max(f.events["all"], 1)  # noqa: E731
    text = (
        f"In the {lo:g}–{hi:g} GeV signal region the selection keeps {sig.events['m4l_window']} "
        f"{names.sample(SIGNAL)} events ({fmt(100 * kept(sig))}% of those generated; "
        f"{fmt(sig.weighted['m4l_window'])} {unit}) and {zz.events['m4l_window']} {names.sample(ZZ)} events "
        f"({fmt(100 * kept(zz))}%; {fmt(zz.weighted['m4l_window'])} {unit})."
    )
    if zz.weighted["m4l_window"] > 0:
        text += f" Signal over ZZ* background: S/B = {fmt(sig.weighted['m4l_window'] / zz.weighted['m4l_window'])}."
    empty = [s for s in sample_order(flows) if s not in (SIGNAL, ZZ) and flows[s].events[STEPS[2]] == 0]
    if empty:
        bound = lambda s: ZERO_EVENT_LIMIT * flows[s].weighted["all"] / max(generated[s], 1)  # noqa: E731
        limits = ", ".join(f"{names.sample(s)} < {fmt(bound(s))} {unit}" for s in empty)
        text += (
            f" No event of {len(empty)} other sample(s) passes the preselection; with the events generated, "
            f"their cross section after it is only bounded (95% CL): {limits}."
        )
    survivors = [s for s in sample_order(flows) if s not in (SIGNAL, ZZ) and flows[s].events[STEPS[2]] > 0]
    if survivors:
        text += (
            " Other samples after the preselection: "
            + ", ".join(
                f"{names.sample(s)} {flows[s].events[STEPS[2]]} events ({fmt(flows[s].weighted[STEPS[2]])} {unit}), "
                f"{flows[s].events['m4l_window']} in the signal region"
                for s in survivors
            )
            + "."
        )
    return text


def peak_sentence(m4l: Mapping, cuts, unit: str = "fb") -> str:
    """After every cut but the window: how much ZZ* lies under the H peak, per GeV, and the peak's width."""
    from ..formatting import fmt
    from ..metrics.reconstruction import sigma68
    from . import names

    lo, hi = cuts.m4l_window_gev
    if SIGNAL not in m4l or ZZ not in m4l:
        return ""
    inside = {s: (m[(m > lo) & (m < hi)], w[(m > lo) & (m < hi)]) for s, (m, w) in m4l.items()}
    h, zz = inside[SIGNAL], inside[ZZ]
    width = sigma68(h[0])
    return (
        f"Before the window, after m34: between {lo:g} and {hi:g} GeV, {names.sample(ZZ)} adds "
        f"{fmt(zz[1].sum() / (hi - lo))} {unit}/GeV under the Higgs peak ({len(zz[0])} events), against "
        f"{fmt(h[1].sum() / (hi - lo))} {unit}/GeV of signal ({len(h[0])} events) whose peak has "
        f"σ68 = {fmt(width)} GeV from the reconstructed leptons: ZZ* is under the peak, "
        "so the window alone cannot remove it."
    )


def cut_flow_metrics(flows: Mapping) -> dict[str, float]:
    """`data.<sample>.h4l.<step>.events` and `.fb` (documented in metric_keys)."""
    from ..higgs4l import STEPS

    out = {}
    for s, flow in flows.items():
        for step in STEPS:
            out[f"data.{s}.h4l.{step}.events"] = float(flow.events[step])
            out[f"data.{s}.h4l.{step}.{flow.unit if flow.unit == 'fb' else 'weighted'}"] = float(flow.weighted[step])
    return out


def m4l_stack(flow: Mapping) -> dict:
    """The m4l figure's layers, bottom first: ZZ*, the signal on top of it, then any other sample with events."""
    from . import names

    m4l = flow["m4l"]
    order = [s for s in (ZZ, SIGNAL) if s in m4l] + [
        s for s in sample_order(flow["flows"]) if s not in (ZZ, SIGNAL) and len(m4l.get(s, ((), ()))[0])
    ]
    return {names.sample(s): m4l[s] for s in order}


# ---------------------------------------------------------------------------- chapter sentences


def split_sentence(study_name: str, kind: str, n_files: int, rows: list[Mapping], configured: Mapping) -> str:
    """How the rows of every sample split into train / val / test, against the configured fractions."""
    total = sum(r["rows"] for r in rows)
    split = {name: sum(r[name] for r in rows) for name in ("train", "val", "test")}
    pct = " / ".join(f"{100 * split[n] / max(total, 1):.1f}" for n in split)
    want = " / ".join(f"{configured[n]:.0%}" for n in split)
    return (
        f"The {study_name} study reads **{n_files} files** with **{total} rows** "
        f"({'jets' if kind == 'jets' else 'events'}) from {len(rows)} samples. The split assigns "
        f"{split['train']} / {split['val']} / {split['test']} rows to train / val / test ({pct} %, configured "
        f"{want}): every stage, from tokenizer fit to the final test, sees the same assignment."
    )


def displaced_tracks_sentence(median_sd0: Mapping[str, float]) -> str:
    """Jets: the median of each flavour's largest lifetime-signed d0 significance."""
    from ..formatting import fmt

    get = lambda k: fmt(median_sd0.get(k, float("nan")))  # noqa: E731
    return (
        f"b-jets carry displaced tracks: the median of the largest lifetime-signed $d_0$ significance is "
        f"{get('b')} for b-jets, {get('c')} for c-jets and {get('light')} for light jets; that is what the flavour "
        "tokens must keep."
    )


def four_lepton_sentence(four: Mapping[str, float]) -> str:
    """Events: the share of events with four reconstructed electrons or muons, signal and ZZ* against the others."""
    from . import names

    others = {s: v for s, v in four.items() if s not in (SIGNAL, ZZ)}
    text = (
        f"Four reconstructed leptons (any pT) are common in {names.sample(SIGNAL)} "
        f"({100 * four.get(SIGNAL, float('nan')):.0f}% of events) and in {names.sample(ZZ)} "
        f"({100 * four.get(ZZ, float('nan')):.0f}%)"
    )
    if others:
        top = max(others, key=others.get)
        text += f", rare elsewhere (at most {100 * others[top]:.1f}%, {names.sample(top)})"
    return (
        text + ": lepton counting alone separates the signal from most backgrounds, which is why the default task "
        "compares H with ZZ* inside the signal region, where every event has four leptons."
    )
