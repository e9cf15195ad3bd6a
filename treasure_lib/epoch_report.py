"""Which model trains, at which epoch, with which validation loss: told to the terminal of `treasure run`.

A chapter can train for minutes inside one cell; the runner's status line (`treasure_lib.runs.live`) shows the
epoch and the last validation loss from what this Lightning callback reports. It writes only to the small file the
runner named (`TREASURE_LIVE_FILE`) and prints nothing, so the notebook and the book never see it; outside
`treasure run` the trainer factory does not add it (`for_trainer`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from .runs import live

#: What each LightningModule trains, in the words of the status line.
KINDS = {
    "VQVAEModule": "tokenizer",
    "MaskedTokenModel": "pretraining",
    "NextTokenModel": "pretraining",
    "SequenceClassifier": "classifier",
}
#: Folder names that say nothing about which model it is.
GENERIC = {"artifacts", "tokenizers", "classify", "pretrain", "checkpoints"}


def label(module, out_dir: str | Path | None) -> str:
    """`classifier flavour/tokens`: the model's kind and the telling tail of its output folder (temporary build
    folders, hidden names, are left out)."""
    kind = KINDS.get(type(module).__name__, type(module).__name__)
    parts = [p for p in Path(out_dir).parts[-2:] if not p.startswith(".") and p not in GENERIC] if out_dir else []
    return f"{kind} {'/'.join(parts)}".strip()


class EpochReport(Callback):
    def __init__(self, out_dir: str | Path | None = None):
        self.out_dir = out_dir
        self.val_loss: float | None = None

    def _report(self, trainer, module) -> None:
        live.report(
            what=label(module, self.out_dir),
            epoch=int(trainer.current_epoch) + 1,
            max_epochs=int(trainer.max_epochs) if trainer.max_epochs and trainer.max_epochs > 0 else None,
            val_loss=self.val_loss,
        )

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            self._report(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and math.isfinite(float(value)):
            self.val_loss = float(value)
        self._report(trainer, pl_module)


def for_trainer(out_dir: str | Path | None = None) -> list:
    """[EpochReport] under `treasure run` (the runner named a live file), else []: a Trainer's extra callbacks."""
    return [EpochReport(out_dir)] if os.environ.get(live.ENV) else []
