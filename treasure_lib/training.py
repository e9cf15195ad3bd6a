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
from .config import ClassifyParams, ModelParams, PretrainParams, StudyParams, TrainParams
from .datamodules import TokenFiles, TokenStream, read_split
from .datamodules.stream import trim
from .datamodules.tasks import POSITIONAL, Task
from .errors import ConfigError, InputFileError
from .models import (
    BackboneConfig,
    MaskedTokenModel,
    NextTokenModel,
    SequenceClassifier,
    count_parameters,
    raw_config_matching,
)
from .trainer import history_of, make_trainer

log = logging.getLogger(__name__)


def run_dir(study: StudyParams) -> Path:
    return Path("runs") / study.kind / study.name


def token_files(folder: Path, content: str = "tokens") -> TokenFiles:
    """The export's `*.<content>.parquet` files in `folder` (the run's token folder, `export.output_dir`)."""
    folder = Path(folder)
    paths = sorted(folder.glob(f"*.{content}.parquet"))
    if not paths:
        raise InputFileError(
            f"{folder}: no *.{content}.parquet files; run `treasure export` first"
            + (" with export.features=true" if content == "features" else "")
        )
    return TokenFiles(paths, content)


def backbone_config(model: ModelParams, files: TokenFiles) -> BackboneConfig:
    vocab = files.vocabulary
    n_types = max(vocab.type_ids.values()) + 1
    cfg = BackboneConfig(
        vocab_size=vocab.size,
        n_types=n_types,
        max_len=files.set.length,
        levels=files.levels,
        d_model=model.d_model,
        n_layers=model.n_layers,
        n_heads=model.n_heads,
        d_ff=model.d_ff,
        dropout=model.dropout,
        group_attention=model.group_attention,
        level_dropout=model.level_dropout,
        group_attention_groups=model.group_attention_groups,
    )
    return cfg


def _streams(
    t: TrainParams,
    files: TokenFiles,
    task: Task | None,
    *,
    seed: int,
    label_seed: int,
    pretraining: bool,
    label_fraction=1.0,
):
    """Train and val loaders of a `train` block (`pretrain.train` or `classify.train`); under DDP each rank reads its
    own share of the blocks (found when iterating). `seed`: the shuffling's (`training_seed`); `label_seed`:
    `classify.label_seed`, which labels a fraction keeps.

    Pretraining reads every row of its splits (labels unused; the probe learns from the rows its task labels).
    A classifier with a fraction of the labels is also *selected* on that fraction of the validation labels:
    a label-efficiency point must not choose its model with labels it is assumed not to have."""
    common = dict(
        cache_rows=t.cache_rows,
        keep_unlabelled=pretraining,
        label_fraction=label_fraction,
        label_seed=label_seed,
    )
    train = TokenStream(
        files,
        task,
        "train",
        t.batch_size,
        shuffle=True,
        seed=seed,
        buffer_rows=t.buffer_rows,
        block_rows=t.block_rows,
        max_batches=t.limit_train_batches,
        **common,
    )
    val = TokenStream(files, task, "val", t.batch_size, shuffle=False, **common)
    loader = lambda ds: torch.utils.data.DataLoader(ds, batch_size=None, num_workers=t.num_workers)  # noqa: E731
    return loader(train), loader(val), train, val


def _whole_val(
    t: TrainParams, files: TokenFiles, task: Task | None, *, label_seed: int, pretraining: bool, label_fraction=1.0
):
    """Every val row in one process (the main process re-validating the saved weights after DDP)."""
    val = TokenStream(
        files,
        task,
        "val",
        t.batch_size,
        shuffle=False,
        rank=0,
        world_size=1,
        cache_rows=t.cache_rows,
        keep_unlabelled=pretraining,
        label_fraction=label_fraction,
        label_seed=label_seed,
    )
    return torch.utils.data.DataLoader(val, batch_size=None, num_workers=t.num_workers)


def training_seed(study: StudyParams, classify: ClassifyParams | None = None) -> int:
    """Weights and shuffling of a classifier (`classify` given) follow `classify.seed` when set (seed bands over
    repeated training on the same tokens and backbone); everything else follows `study.seed` (pretraining:
    `pretrain_seed`)."""
    if classify is not None and classify.seed is not None:
        return int(classify.seed)
    return int(study.seed)


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


def pretrain(
    *, study: StudyParams, model: ModelParams, pretrain: PretrainParams, classify: ClassifyParams, tokens: Path
) -> dict:
    """Pretraining (`pretrain.objective`: masked-token or next-token) on every training row of the token files in
    `tokens` (the export's folder); returns the documented `pretrain.*` metrics of the best checkpoint, with its
    training health (`pretrain.converged`). `classify`: the probe's task definitions and label seed. Weights,
    masks and shuffling follow `pretrain.seed` when set, else `study.seed`."""
    p = pretrain
    out = Path(p.output_dir or run_dir(study) / "artifacts" / "pretrain")
    files = token_files(tokens, "tokens")
    task_name = p.probe_task or classify.task
    task = Task.from_params(classify, task_name)
    cfg = backbone_config(model, files)
    type_names = {str(v): k for k, v in files.vocabulary.type_ids.items()}
    seed = pretrain_seed(study, p)
    import lightning as L

    L.seed_everything(seed, workers=True, verbose=False)  # before the weights are drawn
    common = dict(
        n_classes=task.n_classes,
        pooling="mean",
        lr=learning_rate(p),
        weight_decay=p.train.weight_decay,
        warmup_steps=p.train.warmup_steps,
        seed=seed,
    )
    if p.objective == "next_token":
        module_cls, accuracy = NextTokenModel, "next_accuracy"
        net = module_cls(cfg.to_dict(), files.vocabulary.ranges, files.vocabulary_hash, type_names, **common)
    else:
        module_cls, accuracy = MaskedTokenModel, "masked_accuracy"
        net = module_cls(
            cfg.to_dict(),
            files.vocabulary.ranges,
            files.vocabulary_hash,
            type_names,
            mask_rate=p.mask_rate,
            p_mask=p.p_mask,
            p_random=p.p_random,
            **common,
        )
    trainer = make_trainer(p.train, out, monitor="val/loss")
    history = history_of(trainer)
    train_loader, val_loader, train_stream, val_stream = _streams(
        p.train, files, task, seed=seed, label_seed=classify.label_seed, pretraining=True
    )
    seconds = _fit(trainer, net, train_loader, val_loader, out, p.train.resume)
    if trainer.global_rank != 0:
        return {}  # DDP: the main process evaluates and reports
    best, path = _best(trainer, module_cls)
    if best is None:
        raise ConfigError("pretraining produced no checkpoint (no validation ran?)")
    results = make_trainer(p.train, None, logs=False, single_device=True).validate(
        best, _whole_val(p.train, files, task, label_seed=classify.label_seed, pretraining=True), verbose=False
    )[0]
    epoch = int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    out_metrics = {
        "pretrain.loss": results["val/loss"],
        f"pretrain.{accuracy}": results[f"val/{accuracy}"],
        "pretrain.probe_auc": results["val/probe_auc"],
        "pretrain.best_epoch": epoch,
        "pretrain.train_seconds": seconds,
        "pretrain.train_rows": float(train_stream.summary["rows"]),
    }
    if "val/type_accuracy" in results:
        out_metrics["pretrain.type_accuracy"] = results["val/type_accuracy"]
    for key, value in results.items():
        if key.startswith(f"val/{accuracy}/"):
            out_metrics[f"pretrain.{accuracy}.{key.rsplit('/', 1)[1]}"] = value
    out_metrics.update(
        training_health.metric_items(
            "pretrain",
            training_health.health(history.values, p.train.patience, min_delta=p.train.min_delta),
        )
    )
    record_rows(out / "rows_read.npz", train=train_stream, val=val_stream)
    metric_keys.check(out_metrics)
    return {k: float(v) for k, v in out_metrics.items()}


def learning_rate(pretrain: PretrainParams) -> float:
    """The objective's peak learning rate: `pretrain.next_token_lr` for next-token pretraining when set, else
    `pretrain.train.lr`."""
    if pretrain.objective == "next_token" and pretrain.next_token_lr is not None:
        return float(pretrain.next_token_lr)
    return float(pretrain.train.lr)


def pretrain_seed(study: StudyParams, pretrain: PretrainParams) -> int:
    """Pretraining's weights, masks and shuffling follow `pretrain.seed` when set (seed bands over repeated
    pretraining on the same tokens), else `study.seed`."""
    return int(study.seed if pretrain.seed is None else pretrain.seed)


def record_rows(path: Path, **streams: TokenStream) -> None:
    """The identities of the rows a model was trained, selected and tested on: the split check reads these."""
    np.savez(path, **{split: stream.identities() for split, stream in streams.items()})


def variant_name(classify: ClassifyParams) -> str:
    c = classify
    if c.inputs == "features":
        return "raw"
    if c.inputs == "decoded":
        return "decoded"
    name = {"scratch": "tokens", "finetune": "tokens_finetuned", "frozen": "tokens_frozen", "slow": "tokens_slow"}[
        c.mode
    ]
    if c.mode != "scratch" and c.backbone_objective != "masked":  # a backbone of chapter 08's other objective
        name += f"_{c.backbone_objective}"
    return name


def metrics_prefix(classify: ClassifyParams) -> str:
    """`classify.<task>.<variant>[.label_fraction_<pct>]`: where the classifier this classify section describes
    logs."""
    c = classify
    fraction = c.label_fraction
    return f"classify.{c.task}.{variant_name(c)}" + (
        "" if fraction == 1 else f".label_fraction_{round(100 * fraction)}"
    )


def classify(*, study: StudyParams, model: ModelParams, classify: ClassifyParams, tokens: Path) -> dict:
    """Train one classifier (task, inputs, mode, label fraction from `classify`) on the export's files in `tokens`
    and evaluate it on the test split.

    Returns the documented metrics under `metrics_prefix(classify)`, with the training health: whether early
    stopping fired and the validation loss is clearly below the class-prior entropy (`.converged`)."""
    c = classify
    task = Task.from_params(c)
    variant = variant_name(c)
    fraction = c.label_fraction
    tag = variant + ("" if fraction == 1 else f"_labels{round(100 * fraction)}")
    out = Path(c.output_dir or run_dir(study) / "artifacts" / "classify") / task.name / tag
    token = token_files(tokens, "tokens")
    files = token if c.inputs == "tokens" else token_files(tokens, c.inputs)
    cfg = backbone_config(model, token)
    if c.inputs != "tokens":
        cfg = raw_config_matching(cfg, files.feature_width(), model.feature_hidden)
    import lightning as L

    L.seed_everything(training_seed(study, c), workers=True, verbose=False)  # before the weights are drawn
    net = SequenceClassifier(
        cfg.to_dict(),
        task.n_classes,
        list(task.class_names),
        files.vocabulary_hash,
        mode=c.mode,
        pooling=model.pooling,
        head_hidden=c.head_hidden,
        head_dropout=c.head_dropout,
        lr=c.train.lr,
        weight_decay=c.train.weight_decay,
        warmup_steps=c.train.warmup_steps,
        backbone_lr_factor=c.backbone_lr_factor,
        catch_up_epochs=c.catch_up_epochs,
    )
    if c.mode != "scratch":
        net.load_backbone(c.backbone or run_dir(study) / "artifacts" / "pretrain" / "checkpoints" / "best.ckpt")
    train_loader, val_loader, train_stream, val_stream = _streams(
        c.train,
        files,
        task,
        seed=training_seed(study, c),
        label_seed=c.label_seed,
        pretraining=False,
        label_fraction=fraction,
    )
    schedule = equal_steps(c, files, task, train_stream)
    prior = training_health.prior_entropy(
        np.asarray(val_stream.summary["class_weights"]) * np.asarray(val_stream.summary["class_factors"])
    )
    trainer = make_trainer(schedule, out, monitor="val/loss")
    history = history_of(trainer)
    history.floor = (1.0 - c.convergence_margin) * prior  # patience counts once the model has left the prior
    history.floor_patience = max(schedule["patience"], round(schedule["max_epochs"] / 4))
    seconds = _fit(trainer, net, train_loader, val_loader, out, c.train.resume)
    if trainer.global_rank != 0:
        return {}  # DDP: the main process evaluates on the test split and reports
    best, path = _best(trainer, SequenceClassifier)
    best = best or net
    epoch = (
        int(torch.load(path, map_location="cpu", weights_only=True)["epoch"]) if path else int(trainer.current_epoch)
    )
    rows = read_split(files, task, "test", extra=["jet_pt", "process", "event_number", "source_file"])
    probs = predict(best, rows, c.train.batch_size)
    np.savez(
        out / "predictions.npz",
        probs=probs,
        label=rows["label"],
        weight=rows["weight"],
        **{k: rows[k] for k in ("jet_pt", "event_number") if k in rows},
    )
    summary = evaluate(task, rows, probs, c, seed=study.seed)
    prefix = metrics_prefix(c)
    result = metric_keys.prefixed(prefix, summary)
    health = training_health.health(
        history.values,
        schedule["patience"],
        prior_entropy=prior,
        margin=c.convergence_margin,
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
        test=TokenStream(files, task, "test", c.train.batch_size, shuffle=False),
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


def equal_steps(classify: ClassifyParams, files: TokenFiles, task: Task, train_stream: TokenStream) -> dict:
    """`classify.train` with epochs and patience scaled (`classify.equal_steps`) so a classifier on a fraction of the
    labels takes as many optimizer steps as one on all of them: the label-efficiency curve then compares labels,
    not training time (with 10% of the labels an epoch is a tenth as long)."""
    t = dict(classify.train)
    if not classify.equal_steps or classify.label_fraction == 1:
        return t
    full = TokenStream(files, task, "train", t["batch_size"], shuffle=False, max_batches=t["limit_train_batches"])
    scale = min(MAX_EPOCH_SCALE, len(full) / max(len(train_stream), 1))
    if scale > 1:
        t["max_epochs"] = int(np.ceil(t["max_epochs"] * scale))
        t["patience"] = int(np.ceil(t["patience"] * scale))
    return t


@torch.no_grad()
def predict(model, rows: Mapping, batch_size: int) -> np.ndarray:
    """Class probabilities for evaluation rows (model inputs only), each batch cut to its longest row."""
    model.eval()
    keys = [k for k in POSITIONAL if k in rows]
    out = []
    for s in range(0, len(rows["label"]), batch_size):
        batch = trim({k: rows[k][s : s + batch_size] for k in keys})
        out.append(model.predict_proba({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}))
    return np.concatenate([p.cpu().numpy() for p in out])


def evaluate(task: Task, rows: Mapping, probs: np.ndarray, classify: ClassifyParams, seed: int) -> dict:
    """Summary numbers with uncertainties: flavour (D_b rejections, pT bins), binary or multi-class; `classify`: the
    working point (`f_c`, `f_tau`) and pT bins, `seed`: the bootstrap's (`study.seed`)."""
    c = classify
    y, w = rows["label"], rows["weight"]
    if task.column == "label" and tuple(task.class_names[:3]) == ("b", "c", "light"):
        f_tau = c.f_tau if probs.shape[1] > 3 else 0.0
        out = metrics.flavour_summary(y, probs, w, f_c=c.f_c, f_tau=f_tau, seed=seed)
        if "jet_pt" in rows:
            edges = np.asarray(c.pt_bins_gev, dtype=float)
            for row in metrics.in_bins(rows["jet_pt"] / 1e3, edges, _bin_summary(c.f_c, f_tau), y, probs, w):
                for key, value in row.items():
                    if key not in ("low", "high", "error"):
                        out[f"pt_bin_{row['low']:g}_{row['high']:g}.{key}"] = value
        return out
    if task.binary:
        return metrics.binary_summary(y, probs[:, 1], w, seed=seed)
    return metrics.multiclass_summary(y, probs, w, class_names=list(task.class_names), seed=seed)


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
