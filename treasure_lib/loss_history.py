"""The validation loss of every epoch, kept with the model: what "did it finish learning" is judged on.

A physicist reading a number needs to know whether the model was still improving when training ended
(`training_health.health`). This Lightning callback records the monitored value after each validation,
survives a resume through the checkpoint, ignores Lightning's sanity check, and is also the early stopping:
it stops training on `training_health.stalled`, the same rule `health` judges by, so "early stopping fired"
and "converged" can never disagree.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback

from . import training_health


class LossHistory(Callback):
    """`floor`: a classifier's (1 - margin) x class-prior entropy. A model that takes some epochs to leave the prior
    (a control that must learn to count objects through noise) is not stopped on that plateau by the ordinary
    patience: until its best loss is below the floor it gets `floor_patience` epochs without improvement."""

    def __init__(
        self,
        monitor: str = "val/loss",
        patience: int | None = None,
        min_delta: float = 0.0,
        floor: float | None = None,
        floor_patience: int = 10,
    ):
        self.monitor = monitor
        self.patience, self.min_delta = patience, min_delta
        self.floor, self.floor_patience = floor, floor_patience
        self.values: list[float] = []

    @property
    def state_key(self) -> str:
        return f"LossHistory[{self.monitor}]"

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        self.values.append(float(value) if value is not None else math.nan)
        if self.patience is None:
            return
        learning = self.floor is None or min(self.values) < self.floor
        patience = self.patience if learning else max(self.patience, self.floor_patience)
        if training_health.stalled(self.values, patience, self.min_delta):
            trainer.should_stop = True

    def state_dict(self) -> dict:
        return {"values": list(self.values)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.values = [float(v) for v in state_dict.get("values", [])]
