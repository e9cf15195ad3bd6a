"""The verdict sentences on anomaly scores, from the recorded numbers only (tested on synthetic numbers).

Per signal: which unsupervised score ranks it best and whether its lead is real, how much of the supervised upper
bound it reaches, whether a score only counts objects (the matched control), and when a signal looks *more* like the
standard model than the standard model does. A lead or a separation is real only by the project's one rule
(`metrics.significance`: |difference| >= 2 x its error); a lead's error adds the two scores' test-sample errors and
their seed errors s^2 / n in quadrature (a paired `metrics.Comparison` can be given instead, tighter where the scores
were bootstrapped on the same rows). A score from an autoencoder that did not finish learning carries no verdict.

A score's summary is a mapping with `auc`, `auc_err` and optionally `auc_seed_std`, `n_seeds`, `converged` (1/0),
as the metrics.json keys `anomaly.<signal>.<score>.*` hold them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..formatting import fmt, seed_mean
from ..metrics import Comparison, significance

SCORE_NAMES = {
    "masked": "masked-token pseudo-likelihood",
    "masked_per_object": "masked-token pseudo-likelihood per object",
    "next_token": "next-token likelihood",
    "next_token_per_object": "next-token likelihood per object",
    "reconstruction": "tokenizer reconstruction error",
    "autoencoder": "raw-feature autoencoder",
}
CONTROL_NAMES = {"objects": "number of objects", "jet_pt": "jet pT"}
HALF = 0.5  # a matched control that keeps less than this share of the separation above chance explains most of it


def score_name(score: str) -> str:
    return SCORE_NAMES.get(score, score.replace("_", " "))


def _get(summary: Mapping, key: str) -> float:
    value = summary.get(key)
    return float(value) if value is not None else math.nan


def auc_text(summary: Mapping) -> str:
    """`AUC 0.812 ± 0.010 (seed spread 0.004)`."""
    return "AUC " + seed_mean(summary.get("auc"), summary.get("auc_err"), summary.get("auc_seed_std"))


def _seed_variance(summary: Mapping) -> float:
    """s^2 / n over seeds: the seed error of a seed mean squared (0 with one seed or none recorded)."""
    spread, n = _get(summary, "auc_seed_std"), _get(summary, "n_seeds")
    return spread**2 / n if math.isfinite(spread) and math.isfinite(n) and n >= 1 else 0.0


def _total_err(summary: Mapping) -> float:
    """A seed mean's error: its test-sample error and its seed error in quadrature."""
    return math.hypot(_get(summary, "auc_err"), math.sqrt(_seed_variance(summary)))


def below_chance(summary: Mapping) -> bool:
    """An AUC significantly below 0.5: the signal scores *lower* than SM."""
    return significance(_get(summary, "auc") - 0.5, _total_err(summary)) and _get(summary, "auc") < 0.5


def above_chance(summary: Mapping) -> bool:
    """An AUC significantly above 0.5."""
    return significance(_get(summary, "auc") - 0.5, _total_err(summary)) and _get(summary, "auc") > 0.5


def lead_comparison(best: str, runner_up: str, summaries: Mapping[str, Mapping]) -> Comparison:
    """best minus runner-up in AUC, unpaired: err_test = the two test-sample errors in quadrature, err_seed =
    sqrt(s_a^2/n_a + s_b^2/n_b), err = both in quadrature, significant by `metrics.significance`."""
    a, b = summaries[best], summaries[runner_up]
    diff = _get(a, "auc") - _get(b, "auc")
    err_test = math.hypot(_get(a, "auc_err"), _get(b, "auc_err"))
    err_seed = math.sqrt(_seed_variance(a) + _seed_variance(b))
    err = math.hypot(err_test, err_seed)
    return Comparison(
        a=best,
        b=runner_up,
        stat="auc",
        diff=diff,
        err_test=err_test,
        err_seed=err_seed,
        err=err,
        z=diff / err if err > 0 else math.nan,
        significant=significance(diff, err),
        value_a=_get(a, "auc"),
        err_a=_total_err(a),
        n_seeds_a=int(_get(a, "n_seeds")) if math.isfinite(_get(a, "n_seeds")) else 1,
        value_b=_get(b, "auc"),
        err_b=_total_err(b),
        n_seeds_b=int(_get(b, "n_seeds")) if math.isfinite(_get(b, "n_seeds")) else 1,
        dropped_fraction=0.0,
    )


def _ranked(summaries: Mapping[str, Mapping]) -> tuple[list[str], list[str]]:
    """(scores with a finite AUC from models that finished learning, best first; the scores left out)."""
    usable = [s for s, v in summaries.items() if math.isfinite(_get(v, "auc")) and v.get("converged", 1) != 0]
    return sorted(usable, key=lambda s: -_get(summaries[s], "auc")), [s for s in summaries if s not in usable]


def best_score_sentence(signal: str, summaries: Mapping[str, Mapping], comparison: Comparison | None = None) -> str:
    """(a) Which unsupervised score ranks `signal` best, and whether its lead over the next is beyond the
    test-sample and seed errors. `comparison`: the paired best-minus-next comparison, if one was bootstrapped."""
    ranked, left_out = _ranked(summaries)
    why = ""
    if left_out:
        why = f" ({', '.join(score_name(s) for s in left_out)}: no number or did not finish learning; left out.)"
    if not ranked:
        return f"No unsupervised score can be ranked for {signal}.{why}"
    best = ranked[0]
    if not above_chance(summaries[best]):
        verb = "ranks" if below_chance(summaries[best]) else "separates"
        where = "above" if verb == "ranks" else "from"
        return (
            f"No unsupervised score {verb} {signal} {where} the standard model: the highest AUC is the "
            f"{score_name(best)}'s ({auc_text(summaries[best])}).{why}"
        )
    text = f"For {signal}, the {score_name(best)} ranks it best ({auc_text(summaries[best])})"
    if len(ranked) == 1:
        return f"{text}; it is the only score with a number.{why}"
    runner_up = ranked[1]
    c = comparison if comparison is not None else lead_comparison(best, runner_up, summaries)
    lead = f"{fmt(c.diff, c.err)}, {abs(c.z):.1f} σ" if math.isfinite(c.z) else f"{fmt(c.diff)} (no uncertainty)"
    text += f"; its lead over the {score_name(runner_up)} ({auc_text(summaries[runner_up])}) is {lead}"
    if c.significant:
        return f"{text}: larger than the test-sample and seed errors together.{why}"
    return f"{text}: within the test-sample and seed errors, so the two rank it alike.{why}"


def upper_bound_sentence(signal: str, score: str, summary: Mapping, supervised: Mapping) -> str:
    """(b) The share of the supervised classifier's separation above chance, (AUC - 0.5), that an unsupervised
    score reaches on `signal`: what a model that saw the signal could do is the ceiling. The share's error
    propagates both AUC errors (the score's with its seed error), taken as independent."""
    auc, sup, sup_err = _get(summary, "auc"), _get(supervised, "auc"), _get(supervised, "auc_err")
    name = score_name(score)
    if not (math.isfinite(sup) and sup > 0.5):
        return (
            f"The supervised classifier does not separate {signal} (AUC {fmt(sup, sup_err)}): no upper bound to "
            f"compare the {name} with."
        )
    if not math.isfinite(auc):
        return f"The {name} has no AUC for {signal}."
    auc_err = _total_err(summary)
    numbers = f"{auc_text(summary)} against the supervised AUC {fmt(sup, sup_err)}"
    if auc <= 0.5:
        return f"The {name} reaches none of the supervised separation of {signal} above chance: {numbers}."
    share = (auc - 0.5) / (sup - 0.5)
    err = math.hypot(auc_err, share * sup_err) / (sup - 0.5)
    shown = f"{share:.0%} ± {err:.0%}" if math.isfinite(err) else f"{share:.0%}"
    return (
        f"The {name} reaches {shown} of the supervised classifier's separation above chance, (AUC − 0.5), on "
        f"{signal}: {numbers}."
    )


def control_sentence(signal: str, score: str, summary: Mapping, matched: Mapping, control: str = "objects") -> str:
    """(c) Does a score only rank by a control variable? `matched`: auc, auc_err (and dropped_fraction) with the SM
    weighted to the signal's distribution of `control`. It mostly ranks by the control when the matched AUC is within
    2 sigma of 0.5 or keeps less than half of its separation above chance."""
    name, what = score_name(score), CONTROL_NAMES.get(control, control.replace("_", " "))
    auc, err = _get(summary, "auc"), _get(summary, "auc_err")
    m_auc, m_err = _get(matched, "auc"), _get(matched, "auc_err")
    dropped = _get(matched, "dropped_fraction")
    note = (
        f" ({dropped:.1%} of the signal has {what} values no SM event has and is left out of the matched AUC.)"
        if math.isfinite(dropped) and dropped > 0
        else ""
    )
    if not (math.isfinite(auc) and math.isfinite(m_auc)):
        return f"The {what} control of the {name} on {signal} has no number."
    numbers = f"AUC {fmt(auc, err)}, with SM matched to the signal's {what} {fmt(m_auc, m_err)}"
    if not significance(auc - 0.5, err):
        return f"The {name} does not separate {signal} from SM even before matching its {what} ({numbers}).{note}"
    kept = (m_auc - 0.5) / (auc - 0.5)  # the share of its distance from 0.5 (above or below) left after matching
    at_chance = not significance(m_auc - 0.5, m_err)
    if at_chance or kept < HALF:
        why = (
            "within 2 σ of 0.5"
            if at_chance
            else "on the other side of 0.5"
            if kept < 0
            else f"only {kept:.0%} of its distance from 0.5 is left"
        )
        return f"The {name} mostly ranks {signal} by {what}: {numbers} — {why}.{note}"
    return (
        f"The {name} does not only rank {signal} by {what}: {numbers} keeps {kept:.0%} of its distance from 0.5.{note}"
    )


SUMMED = ("masked", "next_token")  # scores summed over a row's objects (the others are per object or a mean)


def sm_like_sentence(
    signal: str,
    summaries: Mapping[str, Mapping],
    mean_objects: tuple[float, float] | None = None,
    rows: str = "events",
    matched: Mapping[str, Mapping] | None = None,
) -> str:
    """(d) The scores whose AUC is significantly below 0.5: the signal looks *more* standard-model-like than SM.
    `mean_objects`: (SM, signal) mean object multiplicity, to say whether fewer objects is why: only for the scores
    summed over objects (`SUMMED`). `matched` (score -> summary with SM matched in number of objects): quoted beside
    each score; a score no longer below chance once matched is said to follow the count of objects too. '' when
    none."""
    low = [s for s in _ranked(summaries)[0] if below_chance(summaries[s])]
    if not low:
        return ""
    matched = {k: v for k, v in (matched or {}).items() if math.isfinite(v.get("auc", math.nan))}

    def listed(scores):
        return "; ".join(
            f"{score_name(s)} {auc_text(summaries[s])}"
            + (f", {auc_text(matched[s])} with SM matched in number of objects" if s in matched else "")
            for s in scores
        )

    def ending(scores) -> str:
        if scores and all(s in matched and not below_chance(matched[s]) for s in scores):
            return (
                "once SM is matched in number of objects they are no longer below 0.5: the count of objects drives "
                "them too."
            )
        return f"to these scores its {rows} look more standard-model-like than the standard model's own."

    start = signal[0].upper() + signal[1:]
    if mean_objects is not None and all(math.isfinite(x) for x in mean_objects):
        sm, sig = mean_objects
        summed = [s for s in low if s in SUMMED]
        if sig < sm and summed:
            text = (
                f"{start} scores *below* the standard model ({listed(summed)}): its {rows} carry fewer objects "
                f"({fmt(sig)} on average against {fmt(sm)}), and a score summed over objects is smaller for fewer of "
                "them: such a score ranks by multiplicity, not by how unusual each object is (see the per-object "
                "scores and the matched control)."
            )
            others = [s for s in low if s not in SUMMED]
            if others:
                text += f" Not summed over objects, and below too ({listed(others)}): {ending(others)}"
            return text
        text = f"{start} scores *below* the standard model ({listed(low)})"
        if sig >= sm:
            text += f", though not by having fewer objects ({fmt(sig)} on average against {fmt(sm)} for SM)"
        return f"{text}: {ending(low)}"
    return f"{start} scores *below* the standard model ({listed(low)}): {ending(low)}"


def signal_verdict(
    signal: str,
    summaries: Mapping[str, Mapping],
    *,
    supervised: Mapping | None = None,
    matched: Mapping[str, Mapping] | None = None,
    control: str = "objects",
    mean_objects: tuple[float, float] | None = None,
    comparison: Comparison | None = None,
    rows: str = "events",
    below_matched: Mapping[str, Mapping] | None = None,
) -> str:
    """The paragraph for one signal: (a) the best score and its lead, (d) when scores rank it below SM (with
    `below_matched`, score -> summary with SM matched in number of objects), (b) the best score against the
    supervised upper bound, (c) the matched control of the best score (`matched`: score -> matched summary). Parts
    without their numbers are left out."""
    parts = [
        best_score_sentence(signal, summaries, comparison),
        sm_like_sentence(signal, summaries, mean_objects, rows, below_matched),
    ]
    ranked, _ = _ranked(summaries)
    if ranked:
        best = ranked[0]
        if supervised is not None:
            parts.append(upper_bound_sentence(signal, best, summaries[best], supervised))
        if matched is not None and best in matched:
            parts.append(control_sentence(signal, best, summaries[best], matched[best], control))
    return " ".join(p for p in parts if p)
