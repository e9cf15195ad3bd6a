"""The one Trainer factory (`treasure_lib.trainer.make_trainer`): a tokenizer and a classifier train with the same
CPU settings that make a run repeatable (32-bit, deterministic, no sanity steps, no sampler added), their own epochs,
early stopping and checkpoints, and the main process evaluates saved weights on one device without logs."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from treasure_lib import config
from treasure_lib.loss_history import LossHistory
from treasure_lib.progress import shown
from treasure_lib.tokenizers.train import collection_params
from treasure_lib.trainer import history_of, make_trainer

from .conftest import ROOT


@pytest.fixture(scope="module")
def sections():
    params = config.load([ROOT / "params" / "default.yaml"])
    tokenizer = collection_params(params.tokenizer, "tracks").train.replace(
        max_epochs=7, max_steps=500, patience=2, min_delta=0.01, accelerator="cpu", progress_bar=False
    )
    classifier = params.classify.train.replace(
        max_epochs=11, patience=4, min_delta=0.0, accelerator="cpu", devices=1, strategy="auto"
    )
    return {"tokenizer": tokenizer, "classifier": classifier}


def _common(trainer):
    """What makes a CPU training repeatable, the same for every model."""
    assert trainer.precision == "32-true" and type(trainer.accelerator).__name__ == "CPUAccelerator"
    assert torch.are_deterministic_algorithms_enabled(), "deterministic=True on a CPU"
    assert trainer.num_sanity_val_steps == 0 and trainer.limit_train_batches == 1.0
    assert trainer.gradient_clip_val is None and trainer.accumulate_grad_batches == 1
    assert trainer._accelerator_connector.use_distributed_sampler is False, "the streams shard themselves"


@pytest.mark.parametrize("model, steps, every", [("tokenizer", 500, 1), ("classifier", -1, 10)])
def test_training_trainer_keeps_its_epochs_early_stopping_checkpoints_and_logs(sections, tmp_path, model, steps, every):
    train = sections[model]
    trainer = make_trainer(train, tmp_path, monitor="val/loss", log_every_n_steps=every)
    _common(trainer)
    assert (trainer.max_epochs, trainer.max_steps, trainer.log_every_n_steps) == (train["max_epochs"], steps, every)
    assert trainer.num_devices == 1 and trainer.num_nodes == 1
    history = history_of(trainer)
    assert isinstance(history, LossHistory) and (history.monitor, history.patience, history.min_delta) == (
        "val/loss",
        train["patience"],
        train["min_delta"],
    )
    ckpt = trainer.checkpoint_callback
    assert isinstance(ckpt, ModelCheckpoint) and ckpt.dirpath == str(tmp_path / "checkpoints")
    assert (ckpt.filename, ckpt.monitor, ckpt.mode, ckpt.save_last) == ("best", "val/loss", "min", True)
    assert [type(logger) for logger in trainer.loggers] == [CSVLogger, TensorBoardLogger]
    assert (trainer.progress_bar_callback is not None) == shown(train["progress_bar"])
    assert not any(type(c).__name__ == "ModelSummary" for c in trainer.callbacks)


@pytest.mark.parametrize("model", ["tokenizer", "classifier"])
def test_evaluation_trainer_uses_one_device_and_writes_nothing(sections, model):
    train = dict(sections[model], devices=2, num_nodes=2, strategy="ddp")  # what DDP training asked for
    trainer = make_trainer(train, None, logs=False, single_device=True)
    _common(trainer)
    assert (
        trainer.num_devices == 1
        and trainer.num_nodes == 1
        and type(trainer.strategy).__name__ == ("SingleDeviceStrategy")
    )
    assert trainer.checkpoint_callback is None and trainer.loggers == [] and trainer.progress_bar_callback is None
    assert not any(isinstance(c, LossHistory) for c in trainer.callbacks)
