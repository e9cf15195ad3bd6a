"""Which tokenizer? Tokenizer kinds at matched bits per object, judged on one split (`comparison: tokenizers`).

A scan with `comparison: tokenizers` runs each tokenizer kind of the jets' tracks (VQ-VAE with an MLP or a
transformer encoder, FSQ, residual k-means, per-feature binning) at a few budgets of bits per track, every one
with several classifier seeds, plus raw-feature points (the reference at "infinite bits"). This module groups
the points into entries, one per kind and budget, with their seeds, and judges them on the same test rows:

- reconstruction in physical units (chapter 02's keys): track pT response IQR/median, the resolution of the
  signed d0 and z0 significances, the pT response IQR/median of jets summed from decoded tracks;
- codebook health (chapter 03's keys): the level-1 codes used, the normalised entropy;
- the flavour classifier (chapter 06, one per point): light- and c-jet rejection at 77% b-efficiency, every
  entry's seeds in ONE paired bootstrap of the test rows (`metrics.paired`), so each kind is compared with the
  raw features and with the other kinds at its budget on the same resampled jets;
- the cost: tokenizer training time and export speed.

Verdict sentences come from `budget_verdict` and `reconstruction_verdict` (pure functions of numbers, tested):
a difference is real only by `metrics.paired.significance`; an entry whose classifiers did not all finish
learning carries no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ClassifyParams, TokenizerParams
from ..errors import ConfigError
from ..formatting import fmt, markdown_table, seed_mean
from ..metrics.paired import PairedBootstrap, difference_sentence, paired_bootstrap, significance
from ..runs import atomic
from .points import Point, expand

COLLECTION = "tracks"
RAW = "raw features"
#: Display order of the kinds.
KINDS = ("VQ-VAE (MLP)", "VQ-VAE (transformer)", "FSQ", "residual k-means", "per-feature binning", RAW)
STATS = ("light_rejection_at_77", "c_rejection_at_77")
#: (column, documented key, its uncertainty key or None) of the reconstruction and cost numbers, per entry.
NUMBERS = (
    ("track pT IQR/median", f"tokenizer.{COLLECTION}.pt.response_iqr_over_median", None),
    ("d0 signif. σ68", f"tokenizer.{COLLECTION}.lifetimeSignedD0Significance.resolution", None),
    ("z0 signif. σ68", f"tokenizer.{COLLECTION}.lifetimeSignedZ0SinThetaSignificance.resolution", None),
    (
        "jet pT IQR/median",
        "tokenizer.jets.track_sum_pt.response_iqr_over_median",
        "tokenizer.jets.track_sum_pt.response_iqr_over_median_err",
    ),
    ("level-1 codes used", f"codebook.{COLLECTION}.level_1.utilization", None),
    ("level-1 entropy / log K", f"codebook.{COLLECTION}.level_1.normalized_entropy", None),
    ("tokenizer training s", f"tokenizer.{COLLECTION}.train_seconds", None),
    ("export jets/s", "export.rows_per_s", None),
)
JET_RESPONSE = "jet pT IQR/median"


def kind_of(classify: ClassifyParams, tokenizer: TokenizerParams) -> str:
    """The kind of a point: raw features (`classify.inputs`), or its tracks tokenizer (kind, quantizer, encoder)."""
    from ..tokenizers.train import collection_params

    if classify.inputs == "features":
        return RAW
    t = collection_params(tokenizer, COLLECTION)
    if t["kind"] == "kmeans":
        return "residual k-means"
    if t["kind"] == "binning":
        return "per-feature binning"
    if t["quantizer"] == "rfsq":
        return "FSQ" + ("" if t["encoder"] == "mlp" else f" ({t['encoder']})")
    return f"VQ-VAE ({'MLP' if t['encoder'] == 'mlp' else t['encoder']})"


def _order(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


@dataclass
class Entry:
    """One kind at one budget (the raw reference: bits = inf), with its points, one per classifier seed."""

    kind: str
    bits: float
    points: list = field(default_factory=list)
    metrics: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return "raw" if self.kind == RAW else f"{self.kind} @ {self.bits:g} bits"

    @property
    def label(self) -> str:
        return self.kind if self.kind == RAW else f"{self.kind} ({self.bits:g} bits)"

    def number(self, key: str) -> float:
        """A tokenizer or export number: the same for every seed (they share the tokenizer), so the first point's."""
        values = [m.get(key) for m in self.metrics if isinstance(m.get(key), (int, float))]
        return float(values[0]) if values else math.nan

    def classifier(self, short: str) -> list[float]:
        """A number each seed's classifier recorded (`<prefix>.<short>`), per seed."""
        from ..training import metrics_prefix

        return [
            float(m.get(f"{metrics_prefix(p.resolved.classify)}.{short}", math.nan))
            for p, m in zip(self.points, self.metrics)
        ]

    @property
    def converged(self) -> bool:
        """Every seed's classifier finished learning (early stopping fired, loss clearly below the prior)."""
        return bool(self.points) and all(v == 1.0 for v in self.classifier("converged"))


def _bits(metrics: Mapping) -> float:
    key = f"tokenizer.{COLLECTION}.bits_per_object"
    if isinstance(metrics.get(key), (int, float)):
        return float(metrics[key])
    raise ConfigError(
        f"{key} is missing from a complete point's metrics.json (chapter 03 logs it): add "
        f"03_codebook_diagnostics to the scan's chapters"
    )


def entries(points: Sequence[Point], states: Mapping[str, str]) -> list[Entry]:
    """The complete points grouped by kind and bits per track, seeds in order; raw features last."""
    from ..training import training_seed

    found: dict[tuple, Entry] = {}
    for p in points:
        if states.get(p.id) != "complete":
            continue
        metrics = atomic.read_json(p.dir / "metrics.json", {}) or {}
        kind = kind_of(p.resolved.classify, p.resolved.tokenizer)
        bits = math.inf if kind == RAW else _bits(metrics)
        entry = found.setdefault((kind, bits), Entry(kind, bits))
        entry.points.append(p)
        entry.metrics.append(metrics)
    for e in found.values():
        order = np.argsort([training_seed(p.resolved.study, p.resolved.classify) for p in e.points], kind="stable")
        e.points = [e.points[i] for i in order]
        e.metrics = [e.metrics[i] for i in order]
    return sorted(found.values(), key=lambda e: (e.bits, _order(e.kind)))


# ----------------------------------------------------------------------------- the paired bootstrap


def predictions(point: Point) -> dict:
    """The test-row predictions of the classifier a point's params describe (chapter 06, `classify.compare: false`)."""
    from ..training import variant_name

    c = point.resolved.classify
    name = f"{c.task}-{variant_name(c)}-{round(100 * c.label_fraction)}"
    stage = point.dir / "artifacts" / f"classify-{name}"
    found = sorted(stage.rglob("predictions.npz"))
    if not found:
        raise ConfigError(f"point {point.id}: no predictions.npz under {stage} (chapter 06 saves them)")
    with np.load(found[0]) as z:
        return {k: z[k] for k in z.files}


def paired(found: Sequence[Entry], n_boot: int | None = None) -> PairedBootstrap:
    """Every entry x seed on the same test rows in one paired bootstrap (an error names a point with other rows)."""
    from ..datamodules.tasks import Task
    from ..study.seeds import statistic

    params = found[0].points[0].resolved
    preds = {e.name: [predictions(p) for p in e.points] for e in found}
    first = preds[found[0].name][0]
    for e in found:
        for p, pred in zip(e.points, preds[e.name]):
            same = np.array_equal(pred["label"], first["label"]) and (
                "event_number" not in pred or np.array_equal(pred["event_number"], first["event_number"])
            )
            if not same:
                raise ConfigError(
                    f"point {p.id} was evaluated on other test rows than {found[0].points[0].id}: the "
                    f"comparison needs one split (same data, cuts and data.split for every point)"
                )
    c = params.classify
    return paired_bootstrap(
        statistic(Task.from_params(c), c),
        first["label"],
        first["weight"],
        {e.name: [p["probs"] for p in preds[e.name]] for e in found},
        n_boot=c.n_boot if n_boot is None else n_boot,
        seed=params.study.seed,
    )


def total_error(summary: Mapping, stat: str) -> float:
    """Error of a seed mean alone: its test-sample error and the seed spread / sqrt(n) in quadrature."""
    err, spread, n = summary.get(f"{stat}_err", math.nan), summary.get(f"{stat}_seed_std", math.nan), summary["n_seeds"]
    return math.hypot(err, spread / math.sqrt(n) if math.isfinite(spread) else 0.0)


# ----------------------------------------------------------------------------- verdicts (pure, tested)


def _join(labels: Sequence[str]) -> str:
    labels = list(labels)
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def budget_verdict(
    bits: float,
    names: Sequence[str],
    labels: Mapping[str, str],
    converged: Mapping[str, bool],
    boot: PairedBootstrap,
    stat: str,
    quantity: str,
    reference: str | None = None,
) -> str:
    """Which kind is best at one budget and whether that is significant, then how far the raw features are.

    `names`: the bootstrap's entries at this budget; `reference`: the raw-feature entry. The best is the highest
    seed mean among entries whose classifiers all finished learning; it is best beyond doubt only when it is
    significantly ahead of every other one (paired, `metrics.paired.significance`)."""
    usable = [n for n in names if converged.get(n)]
    skipped = [labels[n] for n in names if not converged.get(n)]
    head = f"At {bits:g} bits per track"
    note = f" Not judged (a classifier seed did not finish learning): {_join(skipped)}." if skipped else ""
    if not usable:
        return f"{head}, no kind has every classifier seed converged: no verdict.{note}"
    summaries = {n: boot.summary(n) for n in usable}
    ranked = sorted(usable, key=lambda n: -summaries[n][stat] if math.isfinite(summaries[n][stat]) else math.inf)
    best = ranked[0]
    value = fmt(summaries[best][stat], total_error(summaries[best], stat))
    text = f"{head}, {labels[best]} reaches the highest {quantity} ({value})"
    if len(ranked) == 1:
        text += ", the only kind judged at this budget."
    else:
        comparisons = {n: boot.compare(best, n, stat) for n in ranked[1:]}
        ahead = [labels[n] for n in ranked[1:] if comparisons[n].significant]
        level = [labels[n] for n in ranked[1:] if not comparisons[n].significant]
        if not level:
            text += f" and is significantly ahead of every other kind ({_join(ahead)}): it is the best at this budget."
        else:
            text += f"; it is not significantly ahead of {_join(level)}, so no single kind is best at this budget" + (
                f" (it is significantly ahead of {_join(ahead)})." if ahead else "."
            )
        text += " " + difference_sentence(comparisons[ranked[1]], labels[best], labels[ranked[1]], quantity)
    if reference is not None and converged.get(reference):
        text += " " + difference_sentence(
            boot.compare(reference, best, stat), labels[reference], labels[best], quantity
        )
    elif reference is not None:
        text += f" {labels[reference]} did not finish learning: no verdict against the reference."
    return text + note


def reconstruction_verdict(bits: float, values: Mapping[str, tuple[float, float]], quantity: str) -> str:
    """The kind with the lowest (best) reconstruction number at one budget, `values` {label: (value, error)}, and
    whether the next one is significantly worse (errors in quadrature: the tokenizers are measured on the same
    held-out jets, so this is conservative)."""
    known = {k: v for k, v in values.items() if math.isfinite(v[0])}
    if not known:
        return f"At {bits:g} bits per track no kind has a {quantity}."
    ranked = sorted(known, key=lambda k: known[k][0])
    best = ranked[0]
    text = f"At {bits:g} bits per track, {best} has the best {quantity}, {fmt(*known[best])}"
    if len(ranked) == 1:
        return text + "."
    second = ranked[1]
    diff = known[second][0] - known[best][0]
    err = math.hypot(known[best][1], known[second][1])
    verdict = "significantly" if significance(diff, err) else "not significantly"
    return text + f"; {second} is {verdict} worse ({fmt(*known[second])}, a difference of {fmt(diff, err)})."


# ----------------------------------------------------------------------------- the page section


def table(found: Sequence[Entry], boot: PairedBootstrap | None, reference: str | None) -> list[dict]:
    """One row per kind and budget: reconstruction, codebook health, cost, and each statistic (seed mean ± test
    error, seed spread) with its paired difference to the raw features."""
    rows = []
    for e in found:
        row = {"kind": e.kind, "bits / track": "∞" if e.kind == RAW else f"{e.bits:g}", "seeds": len(e.points)}
        for column, key, err_key in NUMBERS:
            row[column] = fmt(e.number(key), e.number(err_key) if err_key else None)
        if e.kind == RAW:
            row.update({c: "—" for c, _, _ in NUMBERS})
        if boot is not None:
            s = boot.summary(e.name)
            for stat in STATS:
                short = stat.replace("_rejection_at_77", " rej. @77%")
                row[short] = seed_mean(s[stat], s[f"{stat}_err"], s[f"{stat}_seed_std"])
                if reference is not None:
                    c = boot.compare(e.name, reference, stat) if e.name != reference else None
                    row[f"{short} − raw"] = (
                        f"{fmt(c.diff, c.err)} ({abs(c.z):.1f} σ)" if c is not None and math.isfinite(c.z) else "—"
                    )
        trained = e.number(f"tokenizer.{COLLECTION}.converged")
        row["tokenizer converged"] = "—" if not math.isfinite(trained) else ("yes" if trained == 1.0 else "no")
        row["classifiers converged"] = "yes" if e.converged else "no †"
        rows.append(row)
    return rows


def _lines(found: Sequence[Entry], value) -> dict:
    """{kind: (bits, y, low, high)} for the kinds (not the reference), `value(entry) -> (y, err)`."""
    out: dict = {}
    for e in found:
        if e.kind == RAW:
            continue
        y, err = value(e)
        xs, ys, lo, hi = out.setdefault(e.kind, ([], [], [], []))
        xs.append(e.bits)
        ys.append(y)
        lo.append(y - err if math.isfinite(err) else y)
        hi.append(y + err if math.isfinite(err) else y)
    return {k: out[k] for k in sorted(out, key=_order)}


def section(scan, rows: Sequence[Mapping], folder: Path) -> tuple[str, list[Path]]:
    """The comparison's part of the scan page (markdown) and its figures, written to `folder`/figures."""
    from ..datamodules.tasks import Task
    from ..plots import comparison as plots
    from ..study.seeds import figure_of_merit

    states = {r["point"]: r["state"] for r in rows}
    found = entries(expand(scan), states)
    lines = ["## Which tokenizer?", ""]
    kinds = [e for e in found if e.kind != RAW]
    if not kinds:
        return "\n".join(lines + ["No tokenizer point is complete yet: nothing to compare.", ""]), []
    reference = next((e.name for e in found if e.kind == RAW), None)
    boot = paired(found)
    stat, quantity = figure_of_merit(Task.from_params(found[0].points[0].resolved.classify))
    labels = {e.name: e.kind for e in found}
    converged = {e.name: e.converged for e in found}
    budgets = sorted({e.bits for e in kinds})
    figures_dir = folder / "figures"
    lines += [
        f"{len(kinds)} tokenizer entries ({len({e.kind for e in kinds})} kinds at {len(budgets)} budgets of bits "
        f"per track: {', '.join(f'{b:g}' for b in budgets)})"
        + (f" and the raw-feature reference ({len(found[-1].points)} seeds)" if reference else "")
        + ". Every classifier is evaluated on the same test jets; each entry's seeds and the reference enter one "
        "paired bootstrap, so differences carry the test sample's and the seeds' uncertainty. Bits per track = "
        "levels × log2(codes per level) (binning: binned features × log2 bins).",
        "",
        markdown_table(table(found, boot, reference)),
        "",
        "Rejections: the seed mean ± its test-sample uncertainty (bootstrap of the test jets, working point "
        "recomputed in every replicate) and the spread over seeds; − raw: the paired difference to the raw "
        "features ± its uncertainty (test sample and seeds), in σ. "
        "†: a classifier seed did not finish learning; no verdict rests on that entry. A tokenizer that did "
        "not converge (its early stopping never fired; k-means and binning have no such training) may "
        "reconstruct better with more epochs. Reconstruction and "
        "codebook numbers are the tokenizer's on held-out test jets (chapters 02 and 03); export jets/s is the "
        "run's H5 → token Parquet speed.",
        "",
    ]
    lines += ["**Verdict.**", ""]
    for b in budgets:
        names = [e.name for e in kinds if e.bits == b]
        lines += ["- " + budget_verdict(b, names, labels, converged, boot, stat, quantity, reference)]
        jet = {e.kind: (e.number(NUMBERS[3][1]), e.number(NUMBERS[3][2])) for e in kinds if e.bits == b}
        lines += ["- " + reconstruction_verdict(b, jet, "jet pT response IQR/median (from decoded tracks)")]
    lines += [""]
    reco = {
        title: _lines(kinds, lambda e, k=key: (e.number(k), math.nan))
        for title, key in (
            ("Track $p_T$ response IQR/median", NUMBERS[0][1]),
            ("Signed $d_0$ significance $\\sigma_{68}$", NUMBERS[1][1]),
            ("Jet $p_T$ response IQR/median", NUMBERS[3][1]),
        )
    }
    plots.versus_bits(reco, logy=True, save_to=figures_dir, name="reconstruction_vs_bits")
    lines += [
        "![Reconstruction vs bits per track](figures/reconstruction_vs_bits.png)",
        "",
        "Reconstruction in physical units against the bits each track's tokens can carry, a line per kind "
        "(lower is better).",
        "",
    ]
    for s in STATS:

        def value(e, s=s):
            summary = boot.summary(e.name)
            return summary[s], total_error(summary, s)

        ref = None
        if reference:
            summary = boot.summary(reference)
            ref = (summary[s], total_error(summary, s))
        from ..study.names import statistic as stat_name

        title = stat_name(s)
        ylabel = title[0].upper() + title[1:]
        plots.versus_bits(
            {ylabel: _lines(kinds, value)},
            reference={ylabel: ref} if ref else None,
            save_to=figures_dir,
            name=f"{s}_vs_bits",
        )
        lines += [
            f"![{title} vs bits per track](figures/{s}_vs_bits.png)",
            "",
            f"The flavour classifier's {title} on the tokens of each kind (seed mean; band: test-sample and seed "
            "uncertainty)" + (", and on the raw features (dashed, with its band)." if ref else "."),
            "",
        ]
    speed = {e.label: e.number(NUMBERS[7][1]) for e in kinds}
    plots.per_kind(speed, xlabel="Export [jets/s]", save_to=figures_dir, name="export_speed")
    fastest = max(speed, key=lambda k: speed[k] if math.isfinite(speed[k]) else -1)
    lines += [
        "![Export speed per kind](figures/export_speed.png)",
        "",
        f"H5 → token Parquet speed of each tokenizer in this scan (the fastest: {fastest}, "
        f"{speed[fastest]:.0f} jets/s); a shared machine makes these numbers noisy.",
        "",
    ]
    drawn = [
        figures_dir / f"{n}.png" for n in ("reconstruction_vs_bits", *(f"{s}_vs_bits" for s in STATS), "export_speed")
    ]
    return "\n".join(lines), drawn
