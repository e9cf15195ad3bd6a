"""Chapter 06's numbers: tokens (from scratch, fine-tuned), decoded tokens and raw features, seeds and paired
comparisons, the cost of tokenization, and the label-efficiency curve.

`report(run)` trains what is missing (several models at once on a CPU), evaluates every model x seed on
the same test rows, logs the seed means with their test and seed uncertainties and the paired
comparisons, and returns the tables, curve data and sentences the chapter shows.
"""

from __future__ import annotations

import numpy as np

from ..datamodules.tasks import Task
from . import names, seeds, stages, wording

COMPARISONS = (("tokens_finetuned", "tokens"), ("raw", "tokens"), ("raw", "decoded"), ("decoded", "tokens"))
BASELINE_COMPARISONS = (
    ("tokens", "gbdt"),
    ("tokens_finetuned", "gbdt"),
    ("raw", "gbdt"),
    ("gbdt", "mass_window"),
    ("tokens", "mass_window"),
    ("raw", "mass_window"),
)


def physics_baselines(run, task_name: str) -> dict:
    """The m4l window and the gradient-boosted trees (one per training seed) on the transformers' test rows."""
    from ..datamodules import TokenFiles
    from ..datamodules.tasks import Task as _Task
    from . import physics_baselines as pb

    params = stages.run_params(run)
    task = _Task.from_params(params.classify, task_name)
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    per_seed = [pb.scores_from_files(files, task, seed=s, n_threads=1) for s in params["classify"]["seeds"]]
    first = per_seed[0]
    out = {
        "gbdt": {
            "scores": [p["gbdt"] for p in per_seed],
            "label": first["label"],
            "converged": [bool(p["gbdt_health"]["early_stopped"]) for p in per_seed],
        }
    }
    if "mass_window" in first:
        out["mass_window"] = {"scores": [first["mass_window"]], "label": first["label"], "converged": [True]}
    return out


def _log_models(run, models: seeds.SeededModels, variants, fraction: float = 1.0) -> dict:
    out = {}
    for v in variants:
        out.update(seeds.metric_items(models, v, seeds.prefix(models.task.name, v, fraction)))
    run.log_metrics(out)
    return out


def _compare(run, models, pairs, stats, fraction: float = 1.0) -> dict:
    found = {}
    logged = {}
    for a, b in pairs:
        for stat in stats:
            c = models.compare(a, b, stat)
            found[(a, b, stat)] = c
            logged.update(seeds.comparison_items(c, seeds.comparison_prefix(models.task.name, a, b, stat, fraction)))
    run.log_metrics(logged)
    return found


def model_table(models: seeds.SeededModels, variants, stats) -> list[dict]:
    """One row per model: each statistic as seed mean ± test uncertainty (seed spread), and its training health."""
    rows = []
    for v in variants:
        s = models.summary(v)
        health = models.health(v)
        row = {"model": names.model(v)}
        for stat in stats:
            row[names.statistic(stat)] = wording.value_text(s, stat)
        row["finished learning"] = f"{sum(h['converged'] == 1.0 for h in health)} / {len(health)} seeds"
        row["best epochs"] = ", ".join(
            str(int(h["best_epoch"]) + 1) if np.isfinite(h["best_epoch"]) else "—" for h in health
        )
        rows.append(row)
    return rows


def table_stats(task: Task) -> list[str]:
    if seeds.is_flavour(task):
        return [
            "light_rejection_at_77",
            "c_rejection_at_77",
            "light_rejection_at_70",
            "light_rejection_at_85",
            "auc_b",
            "auc_macro",
        ]
    if task.binary:
        return ["auc", "signal_efficiency_at_rejection_50", "signal_efficiency_at_rejection_90"]
    return ["auc_macro"]


def report(run) -> dict:
    """Everything chapter 06 shows (compare mode: the four models, their costs, the label-efficiency curve)."""
    params = stages.run_params(run)
    c = params["classify"]
    task = Task.from_params(params.classify)
    stat, quantity = seeds.figure_of_merit(task)
    variants = list(seeds.VARIANTS)
    extra = physics_baselines(run, task.name) if c["physics_baselines"] else {}
    models = seeds.load(run, task.name, variants, extra=extra)
    shown = [*extra, *variants]
    _log_models(run, models, shown)
    stats = [stat] + (
        ["c_rejection_at_77", "auc_macro"]
        if seeds.is_flavour(task)
        else ["signal_efficiency_at_rejection_90"]
        if task.binary
        else []
    )
    pairs = COMPARISONS + tuple(p for p in BASELINE_COMPARISONS if set(p) <= set(shown))
    found = _compare(run, models, pairs, stats)
    converged = {v: models.converged(v) for v in shown}
    summaries = {v: models.summary(v) for v in shown}
    text = [wording.difference_verdict(found[(a, b, stat)], a, b, quantity, converged) for a, b in COMPARISONS[:2]]
    text += [
        wording.difference_verdict(found[(a, b, stat)], a, b, quantity, converged) for a, b in pairs[len(COMPARISONS) :]
    ]
    if task.collections:
        every = params.sequence.order or list(task.collections)
        unit = "jet" if params.study.kind == "jets" else "event"
        inputs = wording.inputs_sentence(task.name, task.collections, every, unit)
        if inputs:
            text.insert(0, inputs)
    if {"mass_window", "raw", "tokens"} <= set(shown):
        text.insert(
            0,
            wording.baseline_sentence(
                {v: found[(v, "mass_window", stat)] for v in ("tokens", "raw")}, quantity, converged
            ),
        )
    text.append(
        wording.cost_sentence(
            summaries,
            stat,
            quantity,
            found[("raw", "decoded", stat)],
            found[("decoded", "tokens", stat)],
            found[("raw", "tokens", stat)],
        )
    )
    if seeds.is_flavour(task):
        n_tau = int((models.rows["label"] == 3).sum())
        text.append(
            f"Tau jets ({n_tau} in the test split) are reported apart: tau rejection at 77% b-efficiency "
            + ", ".join(f"{names.model(v)} {wording.value_text(summaries[v], 'tau_rejection_at_77')}" for v in variants)
            + ". The macro AUC weighs these few tau jets like the b-jets, so it is secondary here."
        )
    health = {v: models.health(v) for v in variants}
    text.append(wording.convergence_sentence(health))
    out = {
        "task": task,
        "stat": stat,
        "quantity": quantity,
        "models": models,
        "variants": shown,
        "table": model_table(models, shown, table_stats(task)),
        "text": text,
        "health": health,
    }
    if seeds.is_flavour(task) and "jet_pt" in models.rows:
        out["pt_bins"] = {v: seeds.in_bins(models, v, c["pt_bins_gev"], stat) for v in ("tokens", "raw")}
    out["label_efficiency"] = label_efficiency(run, task, stat, quantity, models)
    return out


def label_efficiency(run, task: Task, stat: str, quantity: str, full: seeds.SeededModels) -> dict:
    """Scratch and fine-tuned at each fraction of the labels (each model selected on the same fraction of the
    validation labels), with the paired gain of fine-tuning; the 100% point is chapter 06's main models."""
    fractions = sorted(set(run.params["classify"]["label_fractions"]))
    points, curve, ok = [], {"tokens": [], "tokens_finetuned": []}, {}
    for f in fractions:
        models = seeds.load(run, task.name, ["tokens", "tokens_finetuned"], fraction=f)
        _log_models(run, models, ["tokens", "tokens_finetuned"], f)
        comparison = _compare(run, models, [("tokens_finetuned", "tokens")], [stat], f)[
            ("tokens_finetuned", "tokens", stat)
        ]
        points.append((f, comparison))
        ok[f] = models.converged("tokens") and models.converged("tokens_finetuned")
        for v in curve:
            s = models.summary(v)
            curve[v].append((f, s[stat], s[f"{stat}_err"], s[f"{stat}_seed_std"], models.converged(v)))
    for v in curve:
        s = full.summary(v)
        curve[v].append((1.0, s[stat], s[f"{stat}_err"], s[f"{stat}_seed_std"], full.converged(v)))
    points.append((1.0, full.compare("tokens_finetuned", "tokens", stat)))
    ok[1.0] = full.converged("tokens") and full.converged("tokens_finetuned")
    unconverged = [f"{names.model(v)} at {f:.0%}" for v, pts in curve.items() for f, *_, fine in pts if not fine]
    usable = [(f, c) for f, c in points if ok[f]]
    text = (
        wording.label_efficiency_verdict(usable, quantity)
        if usable
        else "No label-efficiency verdict: no fraction has both its scratch and fine-tuned models converged."
    )
    if unconverged:
        text += " Not converged (no verdict rests on them): " + ", ".join(unconverged) + "."
    text += (
        " Every point takes as many optimizer steps as with all labels (`classify.equal_steps`) and chooses its "
        "model on the same fraction of the validation labels."
    )
    return {"curve": curve, "points": points, "text": text}


def also(run) -> list[str]:
    """The further tasks of `classify.also`: tokens from scratch and raw features, each trained with the first of
    `classify.seeds` only (they are not the study's headline; their uncertainty is the test sample's), one sentence
    each."""
    out = []
    first = run.params["classify"]["seeds"][:1]
    for name in run.params["classify"]["also"]:
        models = seeds.load(run, name, ["tokens", "raw"], seeds=first)
        _log_models(run, models, ["tokens", "raw"])
        stat, quantity = seeds.figure_of_merit(models.task)
        comparison = _compare(run, models, [("raw", "tokens")], [stat])[("raw", "tokens", stat)]
        converged = {v: models.converged(v) for v in ("tokens", "raw")}
        summaries = {v: models.summary(v) for v in ("tokens", "raw")}
        text = (
            f"**{names.task(name)}** (one training seed): tokens {wording.value_text(summaries['tokens'], stat)}, "
            f"raw features {wording.value_text(summaries['raw'], stat)} ({quantity}). "
            + wording.difference_verdict(comparison, "raw", "tokens", quantity, converged)
        )
        out.append(text)
    return out


def single(run) -> dict:
    """One scan point (`classify.compare: false`): the classifier its params describe, with its training health."""
    from ..training import metrics_prefix, variant_name

    params = stages.run_params(run)
    c = params["classify"]
    task = Task.from_params(params.classify)
    numbers = stages.classifier(run, classify={"task": task.name})
    prefix = metrics_prefix(params.classify)
    stat, quantity = seeds.figure_of_merit(task)
    value = numbers.get(f"{prefix}.{stat}", float("nan"))
    health = {k[len(prefix) + 1 :]: v for k, v in numbers.items() if k.startswith(prefix + ".")}
    phrase = wording.health_phrase(health)
    seed = c["seed"] if c["seed"] is not None else params["study"]["seed"]
    text = (
        f"The {names.model(variant_name(c))} classifier ({c['mode']}, {c['label_fraction']:.0%} of the labels, "
        f"seed {seed}) reaches {quantity} = {wording.fmt(value, numbers.get(f'{prefix}.{stat}_err'))} on the test "
        f"split." + (f" It did not finish learning ({phrase}): no verdict rests on this number." if phrase else "")
    )
    return {"numbers": numbers, "text": text}
