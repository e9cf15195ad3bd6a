"""Chapter 05's numbers: what masked-token pretraining learned, against the right chance level.

Guessing a masked code at random is right one time in K, but the codes are far from uniform: always
guessing a level's most frequent code is right as often as that code's share. That share is the chance
level a masked accuracy is read against (per level and per collection). With whole-object masking the
model must predict levels 2..Q without the object's level-1 code; the residual levels encode the
object's fine detail relative to a code it cannot see, so much of their loss is irreducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..datamodules import TokenFiles, read_split
from ..formatting import fmt
from ..vocabulary import N_SPECIAL
from . import history, stages


def code_baselines(files: TokenFiles, split: str = "val") -> dict[str, float]:
    """Share of the most frequent code per level (`level_<q>`), per collection and overall, among the valid
    object positions of a split (masking draws objects at random, so the masked targets share it)."""
    rows = read_split(files, None, split)
    tokens, mask = rows["tokens"], rows["mask"]
    types = rows["type_ids"]
    names = {v: k for k, v in files.vocabulary.type_ids.items()}
    objects = mask & (types > 0)
    out, totals = {}, {"hits": 0, "n": 0}
    per_type: dict[str, list] = {}
    for q in range(tokens.shape[2]):
        codes = tokens[..., q][objects]
        owner = types[objects]
        real = codes >= N_SPECIAL
        if not real.any():
            continue
        counts = np.bincount(codes[real])
        out[f"level_{q + 1}"] = float(counts.max() / real.sum())
        totals["hits"] += int(counts.max())
        totals["n"] += int(real.sum())
        for t in np.unique(owner[real]):
            sel = real & (owner == t)
            c = np.bincount(codes[sel])
            per_type.setdefault(names.get(int(t), f"type_{t}"), []).append((int(c.max()), int(sel.sum())))
    for name, parts in per_type.items():
        out[name] = sum(h for h, _ in parts) / max(sum(n for _, n in parts), 1)
    out["all"] = totals["hits"] / max(totals["n"], 1)
    return out


def accuracy_rows(metrics: Mapping[str, float], baselines: Mapping[str, float]) -> list[dict]:
    """Masked accuracy beside the most-frequent-code share, per level and collection."""
    rows = []
    for key, accuracy in sorted(
        (k.split("pretrain.masked_accuracy.")[1], v)
        for k, v in metrics.items()
        if k.startswith("pretrain.masked_accuracy.")
    ):
        base = baselines.get(key, math.nan)
        label = key.replace("level_", "level ")
        rows.append(
            {
                "masked tokens of": label,
                "accuracy": fmt(accuracy),
                "most frequent code": fmt(base),
                "ratio": fmt(accuracy / base) if base and math.isfinite(base) else "—",
            }
        )
    return rows


WEAK_RATIO = (
    1.5  # masked accuracy below this multiple of the most-frequent-code share: little learned about a collection
)


def _weak_collections(metrics: Mapping[str, float], baselines: Mapping[str, float]) -> str:
    """The collections whose masked codes the backbone predicts hardly better than always guessing their most
    frequent code: the overall accuracy can come from one large collection (the tracks) and hide them."""
    prefix = "pretrain.masked_accuracy."
    weak = {}
    for key, acc in metrics.items():
        name = key[len(prefix) :] if key.startswith(prefix) else ""
        if not name or name.startswith("level_") or not math.isfinite(baselines.get(name, math.nan)):
            continue
        if baselines[name] > 0 and acc / baselines[name] < WEAK_RATIO:
            weak[name] = acc / baselines[name]
    if not weak:
        return ""
    listed = ", ".join(f"{n} ({r:.2f}x)" for n, r in sorted(weak.items(), key=lambda kv: kv[1]))
    return (
        f" Per collection, it predicts {listed} less than {WEAK_RATIO:g} times as well as always guessing their "
        f"most frequent code: it has learned little about those objects, whatever the overall accuracy says, so "
        f"a classifier that reads them gains little from this backbone."
    )


def verdict(
    metrics: Mapping[str, float],
    baselines: Mapping[str, float],
    probe_task: str,
    patience: int = 3,
    min_delta: float = 0.0,
) -> str:
    """What pretraining learned, in words: above the chance level or not, convergence, the residual levels."""
    acc, base = metrics.get("pretrain.masked_accuracy", math.nan), baselines.get("all", math.nan)
    levels = {
        int(k.rsplit("_", 1)[1]): v for k, v in metrics.items() if k.startswith("pretrain.masked_accuracy.level_")
    }
    text = (
        f"After {int(metrics.get('pretrain.epochs_run', math.nan))} epochs the backbone predicts "
        f"{acc:.1%} of the masked codes exactly, against {base:.1%} for always guessing the most frequent code "
        f"of each level"
    )
    text += (
        " (the chance level; 1/K would flatter it)."
        if acc > base
        else ": no better than that chance level, so it has learned little about the codes."
    )
    if len(levels) > 1:
        ratios = {q: levels[q] / baselines.get(f"level_{q}", math.nan) for q in levels}
        best = max(ratios, key=lambda q: ratios[q] if math.isfinite(ratios[q]) else -1)
        text += (
            f" Level 1 is predicted at {levels[min(levels)]:.1%}; levels {min(levels) + 1}-{max(levels)} refine a "
            f"level-1 code the model cannot see when the whole object is masked, so much of their loss is "
            f"irreducible (best relative to chance: level {best}, {ratios[best]:.1f}x)."
        )
    text += _weak_collections(metrics, baselines)
    if metrics.get("pretrain.converged") == 0.0:
        text += (
            f" The validation loss was still falling when training stopped (best epoch "
            f"{int(metrics.get('pretrain.best_epoch', 0)) + 1} of {int(metrics.get('pretrain.epochs_run', 0))}): "
            f"pretraining has not converged in this budget (`pretrain.train.max_epochs`)."
        )
    elif min_delta > 0:
        text += (
            f" Early stopping ended training: its last {patience} epochs lowered the validation loss by less than "
            f"{min_delta:.1%} in all (`pretrain.train.min_delta`), a plateau rather than a minimum: the masked-token "
            f"loss keeps creeping down by a fraction of a per cent per epoch."
        )
    else:
        text += " Early stopping ended training: the validation loss had stopped falling."
    text += (
        f" It read {int(metrics.get('pretrain.train_rows', 0))} training rows of every sample (no labels). "
        f"The detached linear probe reaches a validation AUC of {metrics.get('pretrain.probe_auc', math.nan):.3f} "
        f"for '{probe_task}' without fine-tuning."
    )
    return text


def report(run) -> dict:
    params = stages.run_params(run)
    backbone = stages.pretrained(run)
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    baselines = code_baselines(files)
    run.log_metrics(_baseline_items(baselines))
    m = run.metrics()
    curves = history.read_history(backbone, ["train/loss", "val/loss", "val/masked_accuracy", "val/probe_auc"])
    probe = params["pretrain"]["probe_task"] or params["classify"]["task"]
    t = params["pretrain"]["train"]
    return {
        "metrics": m,
        "baselines": baselines,
        "curves": curves,
        "table": accuracy_rows(m, baselines),
        "text": verdict(m, baselines, probe, t["patience"], t["min_delta"]),
    }


def _baseline_items(baselines: Mapping[str, float]) -> dict[str, float]:
    return {
        ("pretrain.baseline.most_frequent_share" if k == "all" else f"pretrain.baseline.{k}.most_frequent_share"): v
        for k, v in baselines.items()
    }
