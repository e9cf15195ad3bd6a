"""`treasure pretrain` and `treasure classify`: fit the models of issue 8 on a run's token files, evaluate, report.

Both read the token (or raw-feature) Parquet the export wrote, with the exported split; they keep
best and last checkpoints and offline logs (CSV, TensorBoard; W&B offline when `train.wandb` asks), resume
from the last checkpoint, run bf16 on a GPU and scale with Lightning DDP through params
(`devices`, `num_nodes`, `strategy`). Classification is evaluated once, on the test split, with
physics weights; the numbers come back as documented metrics keys (`treasure_lib.metric_keys`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from . import metric_keys, metrics, training_health
from .datamodules import TokenFiles, TokenStream, read_split
from .datamodules.tasks import Task
from .errors import ConfigError, InputFileError
from .models import BackboneConfig, MaskedTokenModel, SequenceClassifier, count_parameters, raw_config_matching
from .tokenizers.export import tokens_dir
from .trainer import history_of, make_trainer

log = logging.getLogger(__name__)


def run_dir(params: Mapping) -> Path:
    return Path("runs") / params["study"]["kind"] / params["study"]["name"]


def token_files(params: Mapping, content: str = "tokens") -> TokenFiles:
    folder = tokens_dir(params["study"], params["export"])
    paths = sorted(folder.glob(f"*.{content}.parquet"))
    if not paths:
        raise InputFileError(
            f"{folder}: no *.{content}.parquet files; run `treasure export` first"
            + (" with export.features=true" if content == "features" else "")
        )
    return TokenFiles(paths, content)


def backbone_config(params: Mapping, files: TokenFiles) -> BackboneConfig:
    m = params["model"]
    vocab = files.vocabulary
    n_types = max(vocab.type_ids.values()) + 1
    cfg = BackboneConfig(
        vocab_size=vocab.size,
        n_types=n_types,
        max_len=files.set.length,
        levels=files.levels,
        d_model=m["d_model"],
        n_layers=m["n_layers"],
        n_heads=m["n_heads"],
        d_ff=m["d_ff"],
        dropout=m["dropout"],
        group_attention=m["group_attention"],
        level_dropout=m["level_dropout"],
        group_attention_groups=m["group_attention_groups"],
    )
    return cfg


def _streams(params: Mapping, section: str, files: TokenFiles, task: Task | None, label_fraction=1.0):
    """Train and val loaders; under DDP each rank reads its own share of the blocks (found when iterating).

    Pretraining reads every row of its splits (labels unused; the probe learns from the rows its task labels).
    A classifier with a fraction of the labels is also *selected* on that fraction of the validation labels:
    a label-efficiency point must not choose its model with labels it is assumed not to have."""
    t = params[section]["train"]
    seed = training_seed(params, section)
    common = dict(
        cache_rows=t["cache_rows"],
        keep_unlabelled=section == "pretrain",
        label_fraction=label_fraction,
        label_seed=params["classify"]["label_seed"],
    )
    train = TokenStream(
        files,
        task,
        "train",
        t["batch_size"],
        shuffle=True,
        seed=seed,
        buffer_rows=t["buffer_rows"],
        block_rows=t["block_rows"],
        max_batches=t["limit_train_batches"],
        **common,
    )
    val = TokenStream(files, task, "val", t["batch_size"], shuffle=False, **common)
    loader = lambda ds: torch.utils.data.DataLoader(ds, batch_size=None, num_workers=t["num_workers"])  # noqa: E731
    return loader(train), loader(val), train, val


def _whole_val(params: Mapping, section: str, files: TokenFiles, task: Task | None, label_fraction=1.0):
    """Every val row in one process (the main process re-validating the saved weights after DDP)."""
    t = params[section]["train"]
    val = TokenStream(
        files,
        task,
        "val",
        t["batch_size"],
        shuffle=False,
        rank=0,
        world_size=1,
        cache_rows=t["cache_rows"],
        keep_unlabelled=section == "pretrain",
        label_fraction=label_fraction,
        label_seed=params["classify"]["label_seed"],
    )
    return torch.utils.data.DataLoader(val, batch_size=None, num_workers=t["num_workers"])


def training_seed(params: Mapping, section: str) -> int:
    """Weights and shuffling of a classifier follow `classify.seed` when set (seed bands over repeated training
    on the same tokens and backbone); everything else, and pretraining, follows `study.seed`."""
    if section == "classify" and params["classify"]["seed"] is not None:
        return int(params["classify"]["seed"])
    return int(params["study"]["seed"])


def _fit(trainer, model, train_loader, val_loader, out: Path, resume: bool) -> float:
    """Train (continuing from `out`/checkpoints/last.ckpt when `resume` and it exists); returns the seconds taken."""
    last = out / "checkpoints" / "last.ckpt"
    t0 = time.perf_counter()
    trainer.fit(model, train_loader, val_loader, ckpt_path=str(last) if resume and last.exists() else None)
    return time.perf_counter() - t0


def _best(trainer, module_cls):
    path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if path:
        return module_cls.load_from_checkpoint(path, map_location="cpu", weights_only=True), path
    return None, ""


def pretrain(params: Mapping) -> dict:
    """Masked-token pretraining on every training row; returns the documented `pretrain.*` metrics of the best
    checkpoint, with its training health (`pretrain.converged`)."""
    p = params["pretrain"]
    out = Path(p["output_dir"] or run_dir(params) / "artifacts" / "pretrain")
    files = token_files(params, "tokens")
    task_name = p["probe_task"] or params["classify"]["task"]
    task = Task.from_params(params, task_name)
    cfg = backbone_config(params, files)
    type_names = {str(v): k for k, v in files.vocabulary.type_ids.items()}
    import lightning as L

    L.seed_everything(params["study"]["seed"], workers=True, verbose=False)  # before the weights are drawn
    model = MaskedTokenModel(
        cfg.to_dict(),
        files.vocabulary.ranges,
        files.vocabulary_hash,
        type_names,
        n_classes=task.n_classes,
        pooling="mean",
        mask_rate=p["mask_rate"],
        p_mask=p["p_mask"],
        p_random=p["p_random"],
        lr=p["train"]["lr"],
        weight_decay=p["train"]["weight_decay"],
        warmup_steps=p["train"]["warmup_steps"],
        seed=params["study"]["seed"],
    )
    trainer = make_trainer(p["train"], out, monitor="val/loss")
    history = history_of(trainer)
    train_loader, val_loader, train_stream, val_stream = _streams(params, "pretrain", files, task)
    seconds = _fit(trainer, model, train_loader, val_loader, out, p["train"]["resume"])
    if trainer.global_rank != 0:
        return {}  # DDP: the main process evaluates and reports
    best, path = _best(trainer, MaskedTokenModel)
    if best is None:
        raise ConfigError("pretraining produced no checkpoint (no validation ran?)")
    results = make_trainer(p["train"], None, logs=False, single_device=True).validate(
        best, _whole_val(params, "pretrain", files, task), verbose=False
    )[0]
    epoch = int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    out_metrics = {
        "pretrain.loss": results["val/loss"],
        "pretrain.masked_accuracy": results["val/masked_accuracy"],
        "pretrain.probe_auc": results["val/probe_auc"],
        "pretrain.best_epoch": epoch,
        "pretrain.train_seconds": seconds,
        "pretrain.train_rows": float(train_stream.summary["rows"]),
    }
    for key, value in results.items():
        if key.startswith("val/masked_accuracy/"):
            out_metrics[f"pretrain.masked_accuracy.{key.rsplit('/', 1)[1]}"] = value
    out_metrics.update(
        training_health.metric_items(
            "pretrain",
            training_health.health(history.values, p["train"]["patience"], min_delta=p["train"]["min_delta"]),
        )
    )
    record_rows(out / "rows_read.npz", train=train_stream, val=val_stream)
    metric_keys.check(out_metrics)
    return {k: float(v) for k, v in out_metrics.items()}


def record_rows(path: Path, **streams: TokenStream) -> None:
    """The identities of the rows a model was trained, selected and tested on: the split check reads these."""
    np.savez(path, **{split: stream.identities() for split, stream in streams.items()})


def variant_name(params: Mapping) -> str:
    c = params["classify"]
    if c["inputs"] == "features":
        return "raw"
    if c["inputs"] == "decoded":
        return "decoded"
    return {"scratch": "tokens", "finetune": "tokens_finetuned", "frozen": "tokens_frozen", "slow": "tokens_slow"}[
        c["mode"]
    ]


def metrics_prefix(params: Mapping) -> str:
    """`classify.<task>.<variant>[.label_fraction_<pct>]`: where the classifier these params describe logs."""
    c = params["classify"]
    fraction = c["label_fraction"]
    return f"classify.{c['task']}.{variant_name(params)}" + (
        "" if fraction == 1 else f".label_fraction_{round(100 * fraction)}"
    )


def classify(params: Mapping) -> dict:
    """Train one classifier (task, inputs, mode, label fraction from params) and evaluate it on the test split.

    Returns the documented metrics under `metrics_prefix(params)`, with the training health: whether early
    stopping fired and the validation loss is clearly below the class-prior entropy (`.converged`)."""
    c = params["classify"]
    task = Task.from_params(params)
    variant = variant_name(params)
    fraction = c["label_fraction"]
    tag = variant + ("" if fraction == 1 else f"_labels{round(100 * fraction)}")
    out = Path(c["output_dir"] or run_dir(params) / "artifacts" / "classify") / task.name / tag
    token = token_files(params, "tokens")
    files = token if c["inputs"] == "tokens" else token_files(params, c["inputs"])
    cfg = backbone_config(params, token)
    if c["inputs"] != "tokens":
        cfg = raw_config_matching(cfg, files.feature_width(), params["model"]["feature_hidden"])
    import lightning as L

    L.seed_everything(training_seed(params, "classify"), workers=True, verbose=False)  # before the weights are drawn
    model = SequenceClassifier(
        cfg.to_dict(),
        task.n_classes,
        list(task.class_names),
        files.vocabulary_hash,
        mode=c["mode"],
        pooling=params["model"]["pooling"],
        head_hidden=c["head_hidden"],
        head_dropout=c["head_dropout"],
        lr=c["train"]["lr"],
        weight_decay=c["train"]["weight_decay"],
        warmup_steps=c["train"]["warmup_steps"],
        backbone_lr_factor=c["backbone_lr_factor"],
        catch_up_epochs=c["catch_up_epochs"],
    )
    if c["mode"] != "scratch":
        model.load_backbone(c["backbone"] or run_dir(params) / "artifacts" / "pretrain" / "checkpoints" / "best.ckpt")
    train_loader, val_loader, train_stream, val_stream = _streams(params, "classify", files, task, fraction)
    schedule = equal_steps(params, files, task, train_stream)
    prior = training_health.prior_entropy(
        np.asarray(val_stream.summary["class_weights"]) * np.asarray(val_stream.summary["class_factors"])
    )
    trainer = make_trainer(schedule, out, monitor="val/loss")
    history = history_of(trainer)
    history.floor = (1.0 - c["convergence_margin"]) * prior  # patience counts once the model has left the prior
    history.floor_patience = max(schedule["patience"], round(schedule["max_epochs"] / 4))
    seconds = _fit(trainer, model, train_loader, val_loader, out, c["train"]["resume"])
    if trainer.global_rank != 0:
        return {}  # DDP: the main process evaluates on the test split and reports
    best, path = _best(trainer, SequenceClassifier)
    best = best or model
    epoch = (
        int(torch.load(path, map_location="cpu", weights_only=True)["epoch"]) if path else int(trainer.current_epoch)
    )
    rows = read_split(files, task, "test", extra=["jet_pt", "process", "event_number", "source_file"])
    probs = predict(best, rows, c["train"]["batch_size"])
    np.savez(
        out / "predictions.npz",
        probs=probs,
        label=rows["label"],
        weight=rows["weight"],
        **{k: rows[k] for k in ("jet_pt", "event_number") if k in rows},
    )
    summary = evaluate(task, rows, probs, params)
    prefix = metrics_prefix(params)
    result = metric_keys.prefixed(prefix, summary)
    health = training_health.health(
        history.values,
        schedule["patience"],
        prior_entropy=prior,
        margin=c["convergence_margin"],
        min_delta=schedule["min_delta"],
    )
    result.update(training_health.metric_items(prefix, health))
    result.update(
        {
            f"{prefix}.parameters": float(count_parameters(best)),
            f"{prefix}.best_epoch": float(epoch),
            f"{prefix}.train_seconds": seconds,
        }
    )
    metric_keys.check(result)
    record_rows(
        out / "rows_read.npz",
        train=train_stream,
        val=val_stream,
        test=TokenStream(files, task, "test", c["train"]["batch_size"], shuffle=False),
    )
    (out / "summary.json").write_text(
        json.dumps(
            {
                "train_rows": train_stream.summary,
                "val_rows": val_stream.summary,
                "val_loss_by_epoch": history.values,
                "metrics": result,
            },
            indent=1,
        )
    )
    return result


MAX_EPOCH_SCALE = 20  # a label fraction never trains more than this many times the epochs of all labels


def equal_steps(params: Mapping, files: TokenFiles, task: Task, train_stream: TokenStream) -> dict:
    """`classify.train` with epochs and patience scaled (`classify.equal_steps`) so a classifier on a fraction of the
    labels takes as many optimizer steps as one on all of them: the label-efficiency curve then compares labels,
    not training time (with 10% of the labels an epoch is a tenth as long)."""
    t = dict(params["classify"]["train"])
    if not params["classify"]["equal_steps"] or params["classify"]["label_fraction"] == 1:
        return t
    full = TokenStream(files, task, "train", t["batch_size"], shuffle=False, max_batches=t["limit_train_batches"])
    scale = min(MAX_EPOCH_SCALE, len(full) / max(len(train_stream), 1))
    if scale > 1:
        t["max_epochs"] = int(np.ceil(t["max_epochs"] * scale))
        t["patience"] = int(np.ceil(t["patience"] * scale))
    return t


@torch.no_grad()
def predict(model, rows: Mapping, batch_size: int) -> np.ndarray:
    """Class probabilities for evaluation rows (model inputs only)."""
    model.eval()
    keys = [k for k in ("tokens", "features", "type_ids", "mask") if k in rows]
    out = []
    for s in range(0, len(rows["label"]), batch_size):
        batch = {k: torch.from_numpy(np.ascontiguousarray(rows[k][s : s + batch_size])) for k in keys}
        out.append(model.predict_proba(batch).cpu().numpy())
    return np.concatenate(out)


def evaluate(task: Task, rows: Mapping, probs: np.ndarray, params: Mapping) -> dict:
    """Summary numbers with uncertainties: flavour (D_b rejections, pT bins), binary or multi-class."""
    c = params["classify"]
    y, w = rows["label"], rows["weight"]
    if task.column == "label" and tuple(task.class_names[:3]) == ("b", "c", "light"):
        f_tau = c["f_tau"] if probs.shape[1] > 3 else 0.0
        out = metrics.flavour_summary(y, probs, w, f_c=c["f_c"], f_tau=f_tau, seed=params["study"]["seed"])
        if "jet_pt" in rows:
            edges = np.asarray(c["pt_bins_gev"], dtype=float)
            for row in metrics.in_bins(rows["jet_pt"] / 1e3, edges, _bin_summary(c["f_c"], f_tau), y, probs, w):
                for key, value in row.items():
                    if key not in ("low", "high", "error"):
                        out[f"pt_bin_{row['low']:g}_{row['high']:g}.{key}"] = value
        return out
    if task.binary:
        return metrics.binary_summary(y, probs[:, 1], w, seed=params["study"]["seed"])
    return metrics.multiclass_summary(y, probs, w, class_names=list(task.class_names), seed=params["study"]["seed"])


MIN_JETS_PER_BIN = 50  # b and light jets a pT bin needs for a rejection (fewer: NaN, never a 205 ± 204)


def _bin_summary(f_c: float, f_tau: float = 0.0):
    """A flat 77% b-efficiency working point *in each bin* (its own D_b cut per bin), the convention the
    performance-vs-pT figures state on their axis."""

    def fn(y, probs, w):
        n = {"n": float(len(y)), "n_b": float((y == 0).sum()), "n_light": float((y == 2).sum())}
        if min(n["n_b"], n["n_light"]) < MIN_JETS_PER_BIN:
            return {"light_rejection_at_77": float("nan"), "light_rejection_at_77_err": float("nan"), **n}
        disc = metrics.discriminant_b(probs, f_c, f_tau)
        r = metrics.rejection_at_efficiency(disc, y == 0, y == 2, (0.77,), w)[0.77]
        return {"light_rejection_at_77": r[0], "light_rejection_at_77_err": r[1], **n}

    return fn
