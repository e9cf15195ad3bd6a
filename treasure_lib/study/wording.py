"""The verdict sentences of the classification chapters, from numbers only (tested on synthetic numbers).

Every sentence that ranks models, calls a difference real or says whether a model finished learning
is made here, never in a chapter. A difference is real only when the paired comparison calls it
significant (`metrics.paired.significance`, the project's one rule); a number from a model that did
not converge is named as such and never carries a verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..formatting import fmt, seed_mean, signed
from . import names


def value_text(summary: Mapping, stat: str) -> str:
    """`12.3 ± 1.1 (seed spread 0.80)`: the seed mean, its test-sample uncertainty and the seed spread
    (`formatting.seed_mean`)."""
    return seed_mean(
        summary.get(stat),
        summary.get(f"{stat}_err"),
        summary.get(f"{stat}_seed_std"),
        err_recorded=f"{stat}_err" in summary,
    )


def comparison_text(comparison) -> str:
    """`2.2 ± 0.8, 2.8 σ` (a minus sign where the first model is behind); `+2.2 (no uncertainty)`."""
    if not math.isfinite(comparison.err) or comparison.err <= 0:
        return f"{signed(comparison.diff)} (no uncertainty)"
    return f"{fmt(comparison.diff, comparison.err)}, {abs(comparison.z):.1f} σ"


def difference_verdict(comparison, a: str, b: str, quantity: str, converged: Mapping[str, bool] | None = None) -> str:
    """One sentence on model a against model b (their keys), from a paired comparison."""
    converged = converged or {}
    missing = [m for m in (a, b) if converged.get(m) is False]
    la, lb = names.model(a), names.model(b)
    if missing:
        return (
            f"No verdict on {la} against {lb}: {' and '.join(names.model(m) for m in missing)} did not finish "
            f"learning (see the training health below)."
        )
    if not comparison.significant:
        return (
            f"By {quantity}, {la} and {lb} do not differ significantly "
            f"({comparison_text(comparison)}; paired over the same test rows, seeds included)."
        )
    ahead, behind = (la, lb) if comparison.diff > 0 else (lb, la)
    lead = f"{fmt(abs(comparison.diff), comparison.err)}, {abs(comparison.z):.1f} σ"  # ahead minus behind, > 0
    return f"By {quantity}, {ahead} is ahead of {behind} by {lead} (paired over the same test rows, seeds included)."


def baseline_sentence(
    against_window: Mapping[str, object], quantity: str, converged: Mapping[str, bool] | None = None
) -> str:
    """Where the transformers stand against the simplest physics baseline, the m4l window: `against_window`
    {model: paired comparison of that model minus the window}. Said first, because every other verdict of the
    chapter compares models; if both fall below one variable, those verdicts compare two weak models."""
    converged = converged or {}
    below = [m for m, c in against_window.items() if c.significant and c.diff < 0 and converged.get(m) is not False]
    above = [m for m, c in against_window.items() if c.significant and c.diff > 0 and converged.get(m) is not False]
    parts = "; ".join(f"{names.model(m)} {comparison_text(c)}" for m, c in against_window.items())
    if len(below) == len(against_window):
        return (
            f"Neither transformer reaches the m4l window alone ({quantity}, model minus window: {parts}): at "
            "this sample size they do not learn what one high-level variable carries, although the decoded "
            "leptons keep the m4l peak (chapter 02). The comparisons below are between models that are all "
            "well short of the physics baselines."
        )
    if len(above) == len(against_window):
        return f"Both transformers beat the m4l window alone ({quantity}, model minus window: {parts})."
    unfinished = [m for m in against_window if converged.get(m) is False]
    rest = [m for m in against_window if m not in below and m not in above and m not in unfinished]
    said = []
    if below:
        said.append(f"{_and_names(below)} fall{'s' if len(below) == 1 else ''} short")
    if above:
        said.append(f"{_and_names(above)} beat{'s' if len(above) == 1 else ''} it")
    if rest:
        said.append(f"{_and_names(rest)} {'does' if len(rest) == 1 else 'do'} not differ from it significantly")
    if unfinished:
        said.append(f"{_and_names(unfinished)} did not finish learning (no verdict)")
    return f"Against the m4l window alone ({quantity}, model minus window: {parts}), " + ", ".join(said) + "."


def inputs_sentence(task: str, read: Sequence[str], every: Sequence[str], unit: str = "event") -> str:
    """What a task's models read when it names `collections` (`read`) out of the sequence's (`every`), and that
    pretraining read them all: a fine-tuned model starts from a backbone that saw longer sequences."""
    left = [c for c in every if c not in read]
    if not left:
        return ""
    return (
        f"These classifiers read {', '.join(read)} of each {unit}, not its {', '.join(left)} "
        f"(`classify.tasks.{task}.collections`): each row is the sequence of those objects alone. Pretraining "
        f"(chapter 05) read every collection, so a fine-tuned model starts from a backbone that learned from "
        f"sequences these classifiers never see."
    )


def _and_names(models: list[str]) -> str:
    return " and ".join(names.model(m) for m in models)


def label_efficiency_verdict(points: Sequence[tuple[float, object]], quantity: str) -> str:
    """What fine-tuning a pretrained backbone buys over training from scratch, fraction by fraction.

    `points`: (label fraction, comparison of fine-tuned minus scratch). Gains and losses are named only
    where significant; 'most where labels are scarce' only when the smallest fraction's gain is the largest."""
    if not points:
        return "No label-efficiency points were trained."
    parts = [f"{f:.0%}: {comparison_text(c)}" for f, c in points]
    gains = [f for f, c in points if c.significant and c.diff > 0]
    losses = [f for f, c in points if c.significant and c.diff < 0]
    text = f"Fine-tuned minus from scratch, in {quantity}: " + "; ".join(parts) + ". "
    pct = lambda fs: ", ".join(f"{f:.0%}" for f in fs)  # noqa: E731
    if losses:
        text += (
            f"Fine-tuning *lowers* it at {pct(losses)} of the labels"
            + (f" and raises it at {pct(gains)}" if gains else "")
            + ": pretraining does not help uniformly here."
        )
    elif len(gains) == len(points):
        smallest = min(points, key=lambda p: p[0])
        scarce = smallest[1].diff >= max(c.diff for _, c in points)
        text += "Pretraining helps at every fraction" + (
            ", most where labels are scarce." if scarce else ", but not most where labels are scarce."
        )
    elif gains:
        text += f"The gain is significant only at {pct(gains)} of the labels."
    else:
        text += (
            "No difference is significant at this sample size: the pretrained backbone buys nothing measurable here."
        )
    return text


def health_phrase(h: Mapping) -> str:
    """Why one trained model did not finish learning ('' when it did)."""
    if h.get("converged") == 1.0:
        return ""
    best, run, prior, loss = (
        h.get(k, math.nan) for k in ("best_epoch", "epochs_run", "prior_entropy", "best_val_loss")
    )
    left = h.get("left_prior", math.nan)  # training_health's flag, with the run's margin; records from before it:
    at_prior = (
        left == 0.0 if math.isfinite(left) else math.isfinite(prior) and math.isfinite(loss) and loss >= prior * 0.98
    )
    if at_prior:
        return f"never left the class prior (validation loss {loss:.3f} vs prior entropy {prior:.3f})"
    if math.isfinite(best) and math.isfinite(run):
        return f"still improving: best epoch {int(best) + 1} of {int(run)} run"
    return "no training history recorded"


def convergence_sentence(health: Mapping[str, Sequence[Mapping]]) -> str:
    """`health`: model key -> per-seed health dicts (seed, converged, best_epoch, epochs_run, ...)."""
    bad = []
    for model, per_seed in health.items():
        for h in per_seed:
            phrase = health_phrase(h)
            if phrase:
                bad.append(f"{names.model(model)} (seed {h.get('seed')}): {phrase}")
    n = sum(len(v) for v in health.values())
    if not bad:
        return (
            f"All {n} models finished learning: early stopping fired (the best epoch is not among the last "
            f"`patience` epochs) and every validation loss is clearly below the class-prior entropy."
        )
    return (
        f"{len(bad)} of {n} models did not finish learning, and their numbers carry no verdict: "
        + "; ".join(bad)
        + ". More epochs or a larger sample would change them."
    )


def cost_sentence(
    summaries: Mapping[str, Mapping], stat: str, quantity: str, quantisation, modelling, total=None
) -> str:
    """Where information is lost: raw -> decoded (quantisation), decoded -> tokens (the model on codes); `total`
    the paired raw-minus-tokens comparison. Tokens cannot carry more than the features they encode, so tokens
    significantly above raw features indict the raw-feature model, never credit the tokens."""
    raw, tok = summaries["raw"].get(stat), summaries["tokens"].get(stat)
    text = (
        f"In {quantity}: raw features {value_text(summaries['raw'], stat)}, decoded tokens "
        f"{value_text(summaries['decoded'], stat)}, tokens {value_text(summaries['tokens'], stat)}. "
    )
    for label, c in (
        ("Quantisation (raw minus decoded)", quantisation),
        ("The model on codes (decoded minus tokens)", modelling),
    ):
        text += f"{label}: {comparison_text(c)}" + (" — significant. " if c.significant else " — not significant. ")
    is_auc = "AUC" in quantity  # an AUC keeps its separation above chance, (AUC - 0.5), as chapter 04 counts it
    floor = 0.5 if is_auc else 0.0
    if tok is not None and raw is not None and math.isfinite(tok) and math.isfinite(raw) and raw > floor:
        kept = (tok - floor) / (raw - floor)
        text += (
            f"Tokens keep {kept:.0%} of the raw features' separation above chance, (AUC − 0.5)."
            if is_auc
            else f"Tokens keep {kept:.0%} of the raw-feature {quantity.split(' at ')[0]}."
        )
        if tok > raw and total is not None and total.significant:
            text += (
                " Tokens cannot carry more than the features they encode: the raw-feature model is the one to "
                "question (undertrained or badly conditioned), not a gain of tokenization."
            )
        elif tok > raw:
            text += " Above 100% only within the uncertainties: no sign that the tokens carry more than the features."
    return text.strip()


def objective_verdict(points: Sequence[tuple[float, object]], quantity: str) -> str:
    """The two pretraining objectives against each other, fraction by fraction. `points`: (label fraction, paired
    comparison of fine-tuned from the next-token backbone minus fine-tuned from the masked one)."""
    if not points:
        return "No fraction has both fine-tuned models converged: no verdict on the objectives."
    parts = "; ".join(f"{f:.0%}: {comparison_text(c)}" for f, c in points)
    ahead = [f for f, c in points if c.significant and c.diff > 0]
    behind = [f for f, c in points if c.significant and c.diff < 0]
    pct = lambda fs: ", ".join(f"{f:.0%}" for f in fs)  # noqa: E731
    text = f"Next-token minus masked pretraining, both fine-tuned, in {quantity}: {parts}. "
    if not ahead and not behind:
        return text + "The objectives do not differ significantly at any fraction of the labels."
    if ahead and not behind:
        return text + f"The next-token backbone is ahead at {pct(ahead)} of the labels."
    if behind and not ahead:
        return text + f"The masked backbone is ahead at {pct(behind)} of the labels."
    return text + f"The next-token backbone is ahead at {pct(ahead)} and behind at {pct(behind)} of the labels."


BEYOND_SM = ("Zprime_qq",)  # samples of the studies' reference mixtures that the standard model does not make


def held_out_sentence(signals: Sequence[str], standard_model: Sequence[str], rows: Mapping[str, int]) -> str:
    """What the anomaly scores are judged on, and why the signals are unseen (`rows`: test rows per sample)."""
    listed = "; ".join(f"{names.sample(s)}: {rows.get(s, 0)}" for s in signals)
    return (
        f"Scored: {rows.get('standard_model', 0)} standard-model test rows ({', '.join(standard_model)}) and, per "
        f"signal, its test rows ({listed}). The signals are generated for this chapter only (`anomaly.signals`): no "
        f"tokenizer card, backbone or autoencoder learned from them; they are exported with the study's cards. "
        f"Efficiencies count rows as generated, without cross-section weights: the standard-model efficiency is that "
        f"of the mixture the study reads, not of a background estimate."
        + (
            f" That mixture is the study's reference, not the standard model alone: it holds "
            f"{', '.join(names.sample(s) for s in standard_model if s in BEYOND_SM)}, the study's source of "
            f"high-pT jets, and each sample in the proportion it was generated in."
            if any(s in BEYOND_SM for s in standard_model)
            else ""
        )
        + " Sensitivity to long-lived particles rests on "
        "the emulation's track efficiency and impact-parameter resolution at mm to cm production radii (Pythia 8 "
        "with a parametric emulation, not ATLAS simulation or large-radius tracking)."
    )


def _ahead(c) -> bool:
    """a ahead of b: a positive difference that the paired comparison calls significant."""
    return c.diff > 0 and c.significant


def anomaly_verdict(
    signal: str,
    found: Mapping,
    converged: Mapping[str, bool],
    rows: str = "events",
    supervised_everywhere: str | None = None,
) -> str:
    """Chapter 08's paragraph for one signal (`anomaly_report.separation`'s result): a trivial score that beats
    every model first, the best unsupervised score and its paired lead, the supervised reference, each matched
    control of the best score, scores below chance (with their AUC once SM is matched in number of objects).
    `supervised_everywhere`: the phase space the scores are judged in when the supervised classifier trained on
    more (e.g. "jet pT > 500 GeV"): it is then no upper bound, and no share of it is quoted."""
    from ..anomaly import wording as scores

    boot = found["boot"]
    trivial = [s for s in ("objects", "jet_pt") if s in boot.names]  # no model: the yardsticks
    unsupervised = [s for s in boot.names if s != "supervised" and s not in trivial]
    summaries = {s: {**boot.summary(s), "converged": 1.0 if converged.get(s, True) else 0.0} for s in unsupervised}
    usable = sorted(
        (s for s in unsupervised if math.isfinite(summaries[s]["auc"]) and converged.get(s, True)),
        key=lambda s: -summaries[s]["auc"],
    )
    lead = boot.compare(usable[0], usable[1], "auc") if len(usable) > 1 else None
    supervised = boot.summary("supervised") if converged.get("supervised", True) else None
    label = names.sample(signal)
    counted = found.get("controls", {}).get("objects")
    below_matched = {s: counted["boot"].summary(s) for s in unsupervised} if counted else None
    text = scores.signal_verdict(
        label,
        summaries,
        supervised=None if supervised_everywhere else supervised,
        comparison=lead,
        mean_objects=found.get("mean_objects"),
        rows=rows,
        below_matched=below_matched,
    )
    beaten = [s for s in trivial if usable and _ahead(boot.compare(s, usable[0], "auc"))]
    if beaten:
        text = (
            f"Without any model, {names.model(beaten[0])} separates {label} better than every model score "
            f"({scores.auc_text(boot.summary(beaten[0]))} against the best, {scores.score_name(usable[0])}, "
            f"{scores.auc_text(summaries[usable[0]])}). " + text
        )
    if supervised is None:
        text += " The supervised classifier did not finish learning: no upper bound is quoted."
    elif supervised_everywhere:
        text += (
            f" The supervised reference ({scores.auc_text(supervised)}) trained on every row but is judged on "
            f"{supervised_everywhere} only: no upper bound there, and no share of it is quoted."
        )
    if trivial:
        text += (
            " Without any model: "
            + "; ".join(f"{names.model(s)} {scores.auc_text(boot.summary(s))}" for s in trivial)
            + "."
        )
    if usable:
        for control, c in found["controls"].items():
            text += " " + scores.control_sentence(
                label,
                usable[0],
                summaries[usable[0]],
                {**c["boot"].summary(usable[0]), "dropped_fraction": c["dropped"]},
                control,
            )
    return text
