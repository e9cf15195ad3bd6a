"""What each pretraining objective buys (chapter 08): the label-efficiency curve of a classifier from scratch,
fine-tuned from the masked backbone and fine-tuned from the next-token backbone, paired over the same test rows, and
the training health of every backbone the anomaly scores read."""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..datamodules.tasks import Task
from ..formatting import fmt
from ..plots import from_points
from . import anomaly, names, seeds, stages, wording

VARIANTS = ("tokens", "tokens_finetuned", "tokens_finetuned_next_token")


def fractions(run) -> list[float]:
    return [*sorted(set(run.params.classify.label_fractions)), 1.0]


def label_efficiency_jobs(run) -> list[dict]:
    """`stages.classifiers` jobs of every point of the curve, the largest label fraction (the longest) first; none
    when `anomaly.label_efficiency` is off."""
    params = stages.run_params(run)
    if not params.anomaly.label_efficiency:
        return []
    return [j for f in reversed(fractions(run)) for j in seeds.jobs(run, params.classify.task, VARIANTS, f)]


NOT_RUN = (
    "The next-token label-efficiency curve is not trained in this study (`anomaly.label_efficiency: false`): {reason}"
)


def label_efficiency(run) -> dict:
    """Scratch, fine-tuned from the masked backbone and from the next-token backbone at each label fraction (the
    same test rows, `classify.seeds`), with paired comparisons: what each pretraining objective buys. With
    `anomaly.label_efficiency` off: no curve, no figure, and the text says so."""
    params = stages.run_params(run)
    if not params.anomaly.label_efficiency:
        return {"curve": {}, "text": NOT_RUN.format(reason=_why_not(run)), "figure": None}
    task = Task.from_params(params.classify)
    stat, quantity = seeds.figure_of_merit(task)
    variants = list(VARIANTS)
    curve = {v: [] for v in variants}
    versus = {"tokens": [], "tokens_finetuned": []}
    converged = {}
    for f in fractions(run):
        models = seeds.load(run, task.name, variants, fraction=f)
        items = seeds.metric_items(models, variants[-1], seeds.prefix(task.name, variants[-1], f))
        for other in versus:
            c = models.compare(variants[-1], other, stat)
            versus[other].append((f, c))
            items.update(seeds.comparison_items(c, seeds.comparison_prefix(task.name, variants[-1], other, stat, f)))
        run.log_metrics(items)
        for v in variants:
            s = models.summary(v)
            curve[v].append((f, s[stat], s[f"{stat}_err"], s[f"{stat}_seed_std"], models.converged(v)))
            converged[(v, f)] = models.converged(v)
    ok = [f for f in fractions(run) if all(converged[(v, f)] for v in variants)]
    scratch = [(f, c) for f, c in versus["tokens"] if f in ok]
    text = "From the next-token backbone. " + (
        wording.label_efficiency_verdict(scratch, quantity) if scratch else "No fraction has every model converged."
    )
    text += " " + wording.objective_verdict([(f, c) for f, c in versus["tokens_finetuned"] if f in ok], quantity)
    bad = [f"{names.model(v)} at {f:.0%}" for (v, f), fine in converged.items() if not fine]
    if bad:
        text += " Not converged (no verdict rests on them): " + ", ".join(bad) + "."
    points = {
        names.model(v): [
            (f, mean, math.hypot(err, spread if math.isfinite(spread) else 0.0)) for f, mean, err, spread, _ in pts
        ]
        for v, pts in curve.items()
    }
    xs, results = from_points(points)
    figure = {
        "fractions": xs,
        "results": results,
        "ylabel": names.first_upper(names.statistic(stat)),
        "name": "anomaly_label_efficiency",
    }
    return {"curve": curve, "text": text, "stat": stat, "quantity": quantity, "figure": figure}


def _why_not(run) -> str:
    """Why a study leaves the curve out, from chapter 06's paired comparisons of this run (masked fine-tuned minus
    from scratch at every label fraction)."""
    params = stages.run_params(run)
    task = Task.from_params(params.classify)
    stat, quantity = seeds.figure_of_merit(task)
    logged = run.metrics()
    points = []
    for f in fractions(run):
        key = seeds.comparison_prefix(task.name, "tokens_finetuned", "tokens", stat, f)
        if f"{key}.z" in logged:
            points.append((f, float(logged[f"{key}.z"]), bool(logged[f"{key}.significant"])))
    return not_run_reason(points, quantity)


def not_run_reason(points: list[tuple[float, float, bool]], quantity: str) -> str:
    """The sentence after `NOT_RUN`: `points` are chapter 06's (label fraction, z, significant) of masked fine-tuned
    minus from scratch. Only where none is significant does it say that the study cannot resolve what a pretraining
    objective buys; otherwise the choice is the params'."""
    if points and not any(sig for _, _, sig in points):
        zs = ", ".join(f"{f:.0%}: {z:+.1f} σ" for f, z, _ in points)
        return (
            f"chapter 06 resolves no difference in {quantity} between the masked fine-tuned model and training from "
            f"scratch at any label fraction ({zs}), so a second objective's curve could not be told apart from "
            "either at this sample size; larger samples (the GPU-scale params) train it."
        )
    return "the study's params leave it out."


def backbone_health(run, info: Mapping) -> tuple[list[dict], str]:
    """Every model the unsupervised scores read: the backbones (objective, seed) and the autoencoders, with their
    best epoch of the epochs run and whether they stopped on a plateau (`min_delta`), with how many peak last."""
    m = run.metrics()
    rows, bad, last = [], [], 0
    for objective in anomaly.OBJECTIVES:
        for s in run.params.anomaly.seeds:
            _, variant = stages.pretrain_variant(run, objective, s)
            prefix = "pretrain." if variant is None else f"pretrain.{variant}."
            get = lambda k: m.get(prefix + k, math.nan)  # noqa: E731, B023
            ok = get("converged") == 1.0
            rows.append(
                {
                    "model": f"{objective.replace('_', '-')} backbone",
                    "seed": int(s),
                    "best epoch / run": f"{int(get('best_epoch')) + 1} / {int(get('epochs_run'))}",
                    "validation loss [nats]": fmt(get("loss")),
                    "linear-probe AUC": fmt(get("probe_auc")),
                    "stopped on a plateau": "yes" if ok else "no",
                }
            )
            last += int(get("best_epoch")) + 1 == int(get("epochs_run"))
            if not ok:
                bad.append(f"the {objective.replace('_', '-')} backbone of seed {s}")
    for s, trained in sorted(info.get("autoencoder", {}).items()):
        ok = bool(trained.get("converged"))
        rows.append(
            {
                "model": f"autoencoder, {int(trained['parameters'])} parameters "
                f"(backbone {int(trained['target_parameters'])})",
                "seed": int(s),
                "best epoch / run": f"{int(trained['best_epoch']) + 1} / {int(trained['epochs_run'])}",
                "validation loss [nats]": "—",
                "linear-probe AUC": "—",
                "stopped on a plateau": "yes" if ok else "no",
            }
        )
        last += int(trained["best_epoch"]) + 1 == int(trained["epochs_run"])
        if not ok:
            bad.append(f"the autoencoder of seed {s}")
    text = (
        "Every backbone and autoencoder stopped on a plateau, by the rule every training of the library shares: its "
        "last `patience` epochs lowered the best validation loss by less than the fraction `min_delta`."
        + (
            f" {last} of the {len(rows)} have their best epoch last: their losses still creep down, so their scores "
            "are those of models stopped on a slow slope, not at a minimum."
            if last
            else ""
        )
        if not bad
        else f"Not stopped on a plateau: {', '.join(bad)}; no verdict rests on the scores from them."
    )
    text += (
        " The two objectives' validation losses are not comparable: the masked one is per masked code, the next-token "
        "one per predicted term (types and codes)."
    )
    return rows, text
