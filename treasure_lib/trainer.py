"""The one Lightning Trainer factory of every training in the library: tokenizers (`tokenizers.train`), masked-token
pretraining and classifiers (`training`).

One place decides what every training shares: the accelerator and precision the params ask for (bf16 on a GPU,
32-bit and deterministic on a CPU), DDP through `devices`, `num_nodes`, `strategy`, best and last checkpoints of the
monitored loss, its `LossHistory` (every epoch's value; the early stopping), offline logs (CSV, TensorBoard, and W&B
when `train.wandb` asks), the quiet console and the status line of `treasure run`. The data streams shard
themselves over DDP ranks, so Lightning never adds a sampler.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import ConfigError
from .loss_history import LossHistory
from .progress import shown


def make_trainer(
    train: Mapping,
    out_dir: Path | None,
    monitor: str | None = None,
    mode: str = "min",
    logs: bool = True,
    single_device: bool = False,
    extra_callbacks=(),
    log_every_n_steps: int = 10,
):
    """A Lightning Trainer from a `train` params section: accelerator, precision, DDP, checkpoints, offline logs.

    With `monitor` (and `out_dir`), a `LossHistory` on it (`train.patience`, `train.min_delta`) records every epoch
    and is the early stopping (read it back with `history_of(trainer)`), and `ModelCheckpoint` keeps `best` and
    `last` under `out_dir/checkpoints`. `single_device`: one device whatever the params say (the main process
    evaluating saved weights after DDP). `log_every_n_steps`: the tokenizers log every step (10 for the models)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from . import epoch_report
    from .distributed import quiet_sync_warning
    from .quiet import quiet_training

    quiet_sync_warning()
    quiet_training()
    gpu = torch.cuda.is_available() and train["accelerator"] in ("auto", "gpu", "cuda")
    callbacks, loggers = [], []
    if monitor is not None and out_dir is not None:
        callbacks = [
            LossHistory(monitor, train["patience"], train["min_delta"]),
            ModelCheckpoint(
                dirpath=out_dir / "checkpoints", filename="best", monitor=monitor, mode=mode, save_last=True
            ),
        ]
    callbacks += list(extra_callbacks)
    if logs and out_dir is not None:
        loggers = [CSVLogger(str(out_dir), name="logs"), TensorBoardLogger(str(out_dir), name="tensorboard")]
        if train.get("wandb"):
            loggers.append(wandb_logger(out_dir))
    reporting = epoch_report.for_trainer(out_dir) if monitor is not None and out_dir is not None else []
    return L.Trainer(
        max_epochs=train["max_epochs"],
        max_steps=train.get("max_steps") or -1,
        accelerator="gpu" if gpu else "cpu",
        devices=1 if single_device else train["devices"],
        num_nodes=1 if single_device else train["num_nodes"],
        strategy="auto" if single_device else train["strategy"],
        precision=train["precision"] or ("bf16-mixed" if gpu else "32-true"),
        deterministic=not gpu,
        default_root_dir=str(out_dir) if out_dir else None,
        callbacks=callbacks + reporting,
        logger=loggers or False,
        enable_checkpointing=bool(callbacks),
        enable_progress_bar=shown(train["progress_bar"]) and bool(callbacks),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=log_every_n_steps,
        limit_train_batches=None,
        use_distributed_sampler=False,
    )


def wandb_logger(out_dir: Path):
    """Weights & Biases, offline, beside the CSV and TensorBoard logs: only when params ask
    (`<section>.train.wandb`)."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ConfigError(
            "train.wandb is true but wandb is not installed: pip install wandb (or set <section>.train.wandb=false)"
        ) from None
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(save_dir=str(out_dir), offline=True)


def history_of(trainer) -> LossHistory:
    """The `LossHistory` of a trainer built with `monitor`: the monitored value of every epoch."""
    return next(c for c in trainer.callbacks if isinstance(c, LossHistory))
