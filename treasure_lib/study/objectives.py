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
    """`stages.classifiers` jobs of every point of the curve, the largest label fraction (the longest) first."""
    task = stages.run_params(run).classify.task
    return [j for f in reversed(fractions(run)) for j in seeds.jobs(run, task, VARIANTS, f)]


def label_efficiency(run) -> dict:
    """Scratch, fine-tuned from the masked backbone and from the next-token backbone at each label fraction (the
    same test rows, `classify.seeds`), with paired comparisons: what each pretraining objective buys."""
    task = Task.from_params(stages.run_params(run).classify)
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
