"""Models trained with several seeds, evaluated together on the same test rows.

A headline number is the mean over `classify.seeds` of one model's test-split result, with two
uncertainties: the seed spread (how much training alone moves it) and the bootstrap of the test rows
with every working point recomputed in each replicate. Two models are compared *paired*: every
replicate resamples the same rows for both, so the test-sample fluctuation they share cancels. This
module loads what the classifier stages saved and turns it into those numbers; chapters 04, 06 and 07
call it, and what it logs is documented in `metric_keys`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..config import ClassifyParams
from ..datamodules.tasks import Task
from ..errors import ConfigError
from ..metrics import paired
from . import stages

#: How each model of the comparison sees the data (chapter 06's columns).
VARIANTS: dict[str, dict] = {
    "tokens": {"mode": "scratch", "inputs": "tokens"},
    "tokens_finetuned": {"mode": "finetune", "inputs": "tokens"},
    "raw": {"mode": "scratch", "inputs": "features"},
    "decoded": {"mode": "scratch", "inputs": "decoded"},
}
#: Fine-tuned from chapter 08's other backbone (what each pretraining objective buys, beside `tokens_finetuned`).
OBJECTIVE_VARIANTS: dict[str, dict] = {
    "tokens_finetuned_next_token": {"mode": "finetune", "inputs": "tokens", "backbone_objective": "next_token"},
}
FLAVOUR_POINTS = (0.70, 0.77, 0.85)


def is_flavour(task: Task) -> bool:
    return task.column == "label" and tuple(task.class_names[:3]) == ("b", "c", "light")


def figure_of_merit(task: Task) -> tuple[str, str]:
    """(statistic, words) a task's models are judged by: light rejection for b-tagging, not a macro AUC that
    weighs a handful of tau jets like the b-jets."""
    if is_flavour(task):
        return "light_rejection_at_77", "light-jet rejection at 77% b-jet efficiency"
    if task.binary:
        return "auc", "ROC AUC"
    return "auc_macro", "macro one-vs-rest AUC"


def f_tau(task: Task, classify: ClassifyParams) -> float:
    """The tau fraction of D_b for a flavour task: `classify.f_tau` with a tau class, 0 without one."""
    return classify.f_tau if task.n_classes > 3 else 0.0


def statistic(task: Task, classify: ClassifyParams):
    """The function of (labels, prediction, weight) a task's bootstrap evaluates (`classify.f_c`, `f_tau`)."""
    c = classify
    if is_flavour(task):
        return partial(paired.flavour_statistics, f_c=c.f_c, f_tau=f_tau(task, c), efficiencies=FLAVOUR_POINTS)
    if task.binary:
        return lambda y, p, w: paired.binary_statistics(y, p[:, 1] if np.ndim(p) == 2 else p, w)
    return paired.multiclass_statistics


def jobs(run, task: str, variants: Sequence[str], fraction: float = 1.0, seeds: Sequence[int] | None = None) -> list:
    """`stages.classifiers` jobs: every variant at every training seed."""
    seeds = list(seeds if seeds is not None else run.params["classify"]["seeds"])
    if not seeds:
        raise ConfigError(
            "classify.seeds is empty: headline classifiers need at least one training seed (3 or more "
            "to quote a seed spread)"
        )
    return [
        dict(seed=s, classify={"task": task, "label_fraction": fraction, **{**VARIANTS, **OBJECTIVE_VARIANTS}[v]})
        for v in variants
        for s in seeds
    ]


def stage_name(task: str, variant: str, fraction: float, seed: int) -> str:
    return f"{task}-{variant}-{round(100 * fraction)}-s{int(seed)}"


def predictions(run, task: str, variant: str, fraction: float, seeds: Sequence[int]) -> list[dict]:
    return [stages.predictions(run, stage_name(task, variant, fraction, s)) for s in seeds]


@dataclass
class SeededModels:
    """The test-row predictions of several models x seeds, their paired bootstrap and what each recorded."""

    task: Task
    fraction: float
    seeds: list[int]
    rows: dict  # label, weight (and jet_pt, event_number when saved) of the common test rows
    probs: dict  # variant -> [per-seed probs]
    boot: paired.PairedBootstrap
    recorded: dict  # variant -> [per-seed metrics of the stage]
    stat_fn: object = None  # the statistic the bootstrap evaluates (its working points, D_b fractions)

    def summary(self, variant: str) -> dict:
        return self.boot.summary(variant)

    def compare(self, a: str, b: str, stat: str):
        return self.boot.compare(a, b, stat)

    def converged(self, variant: str) -> bool:
        return all(_recorded(r, "converged") == 1.0 for r in self.recorded[variant])

    def health(self, variant: str) -> list[dict]:
        """Per seed: converged, best epoch, epochs run, best validation loss and the prior entropy."""
        keys = ("converged", "best_epoch", "epochs_run", "best_val_loss", "prior_entropy", "left_prior")
        return [{"seed": s, **{k: _recorded(r, k) for k in keys}} for s, r in zip(self.seeds, self.recorded[variant])]


def _recorded(numbers: Mapping, short: str) -> float:
    """A number a classifier stage recorded, whatever its prefix (`classify.<task>.<variant>[...].<short>`)."""
    hits = [v for k, v in numbers.items() if k.endswith("." + short) and ".pt_bin_" not in k]
    return float(hits[0]) if hits else float("nan")


def load(
    run,
    task_name: str,
    variants: Sequence[str],
    fraction: float = 1.0,
    seeds: Sequence[int] | None = None,
    n_boot: int | None = None,
    extra: Mapping[str, dict] | None = None,
) -> SeededModels:
    """Train what is missing (in parallel), then evaluate every variant x seed on the same test rows.

    `extra` {name: {"scores": [per-seed test scores], "label": test labels, "converged": [per seed]}}: models made
    elsewhere on the same test rows (the physics baselines), compared in the same paired bootstrap."""
    params = run.params
    seeds = list(seeds if seeds is not None else params["classify"]["seeds"])
    recorded = stages.classifiers(run, jobs(run, task_name, variants, fraction, seeds))
    per_variant = {v: recorded[i * len(seeds) : (i + 1) * len(seeds)] for i, v in enumerate(variants)}
    task = Task.from_params(stages.run_params(run).classify, task_name)
    preds = {v: predictions(run, task_name, v, fraction, seeds) for v in variants}
    first = preds[variants[0]][0]
    for v, per_seed in preds.items():
        for s, p in zip(seeds, per_seed):
            same = (
                len(p["label"]) == len(first["label"])
                and np.array_equal(p["label"], first["label"])
                and ("event_number" not in p or np.array_equal(p["event_number"], first["event_number"]))
            )
            if not same:
                raise ConfigError(
                    f"classifier '{stage_name(task_name, v, fraction, s)}' was evaluated on other test rows "
                    f"than '{stage_name(task_name, variants[0], fraction, seeds[0])}'; rebuild both"
                )
    rows = {k: first[k] for k in ("label", "weight", "jet_pt", "event_number") if k in first}
    probs = {v: [p["probs"] for p in per_seed] for v, per_seed in preds.items()}
    for name, other in (extra or {}).items():
        if not np.array_equal(np.asarray(other["label"]), rows["label"]):
            raise ConfigError(f"'{name}' was scored on other test rows than the classifiers of '{task_name}'")
        probs[name] = list(other["scores"])
        per_variant[name] = [{"x.converged": 1.0 if ok else 0.0} for ok in other["converged"]]
    n_boot = params["classify"]["n_boot"] if n_boot is None else n_boot
    stat_fn = statistic(task, params.classify)
    boot = paired.paired_bootstrap(
        stat_fn, rows["label"], rows["weight"], probs, n_boot=n_boot, seed=params["study"]["seed"]
    )
    return SeededModels(task, fraction, seeds, rows, probs, boot, per_variant, stat_fn)


def metric_items(models: SeededModels, variant: str, prefix: str) -> dict[str, float]:
    """`<prefix>.<stat>`, `_err`, `_seed_std`, `.n_seeds` and `.converged` of one variant (the seed means)."""
    out = {f"{prefix}.{k}": float(v) for k, v in models.summary(variant).items()}
    out[f"{prefix}.converged"] = 1.0 if models.converged(variant) else 0.0
    return out


def comparison_items(comparison, prefix: str) -> dict[str, float]:
    """`<prefix>.diff|err_test|err_seed|err|z|significant` of a paired comparison."""
    return {
        f"{prefix}.{k}": float(getattr(comparison, k))
        for k in ("diff", "err_test", "err_seed", "err", "z", "significant")
    }


def prefix(task: str, variant: str, fraction: float = 1.0) -> str:
    """Where a seed mean logs: `classify.<task>.<variant>[.label_fraction_<pct>]`."""
    return f"classify.{task}.{variant}" + ("" if fraction == 1 else f".label_fraction_{round(100 * fraction)}")


def comparison_prefix(task: str, a: str, b: str, stat: str, fraction: float = 1.0) -> str:
    part = "" if fraction == 1 else f".label_fraction_{round(100 * fraction)}"
    return f"classify.{task}.compare.{a}_vs_{b}{part}.{stat}"


def in_bins(
    models: SeededModels, variant: str, edges_gev: Sequence[float], stat: str, n_boot: int = 100, min_jets: int = 50
) -> list[dict]:
    """A statistic of a flavour model in bins of jet pT [GeV]: the seed mean, its test and seed uncertainties."""
    if "jet_pt" not in models.rows:
        raise ConfigError("these predictions carry no jet_pt (export.columns needs jet_pt: jets.pt)")
    return binned(
        models.stat_fn,
        models.rows["label"],
        models.rows["weight"],
        models.probs[variant],
        models.rows["jet_pt"] / 1e3,
        edges_gev,
        stat,
        n_boot=n_boot,
        min_jets=min_jets,
    )


def binned(
    stat_fn,
    labels,
    weight,
    probs_by_seed: Sequence[np.ndarray],
    x,
    edges: Sequence[float],
    stat: str,
    *,
    n_boot: int = 100,
    min_jets: int = 50,
) -> list[dict]:
    """`stat` of a flavour tagger in bins of x (e.g. jet pT in GeV), each bin with its own working point (the
    statistic recomputes the cut from the bin's b-jets: a flat b-efficiency in every bin). A bin with fewer
    than `min_jets` b-jets or light jets has no value (NaN): too few jets to quote a rejection."""
    y = np.asarray(labels)
    x = np.asarray(x)
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        sel = (x >= low) & (x < high)
        row = {
            "low": float(low),
            "high": float(high),
            "n_b": int((y[sel] == 0).sum()),
            "n_light": int((y[sel] == 2).sum()),
        }
        if min(row["n_b"], row["n_light"]) < min_jets:
            row.update(value=float("nan"), err=float("nan"), seed_std=float("nan"))
        else:
            boot = paired.paired_bootstrap(
                stat_fn,
                y[sel],
                np.asarray(weight)[sel],
                {"model": [p[sel] for p in probs_by_seed]},
                n_boot=n_boot,
                seed=0,
            )
            summary = boot.summary("model")
            row.update(value=summary[stat], err=summary[f"{stat}_err"], seed_std=summary[f"{stat}_seed_std"])
        out.append(row)
    return out


__all__ = [
    "VARIANTS",
    "OBJECTIVE_VARIANTS",
    "SeededModels",
    "comparison_items",
    "comparison_prefix",
    "figure_of_merit",
    "in_bins",
    "is_flavour",
    "jobs",
    "load",
    "metric_items",
    "prefix",
    "statistic",
    "binned",
]
