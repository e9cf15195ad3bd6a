"""Training without Lightning's chatter: its notes, adverts and warnings about its own internals are not the study.

At every fit Lightning prints which accelerators exist ("GPU available: False, used: False", "TPU available"), a
"Tip" advertising its cloud logger, "Loading `train_dataloader` to estimate number of stepping batches", why `fit`
stopped, and warnings that are about Lightning's own use of torch (a deprecated `_pytree.LeafSpec` check) or advice
that does not fit our token streams (an `IterableDataset` with `__len__`, fewer batches than the logging interval,
few loader workers). On a book page they bury the result; in a log they hide the warnings that matter.

`quiet_training()` turns off exactly those, in the process that trains (a chapter's kernel, a classifier worker a
chapter spawned, a CLI command): Lightning's informational log lines (its loggers go to WARNING) and the warnings
listed in `NOISE`. Every other warning and every error stays as it was, so a real problem still reaches the
terminal and the run's log (`treasure run` copies what a chapter wrote to stderr into `<run>/logs/run.log`).
The trainer factory calls it (`trainer.make_trainer`), so every process that builds
a Trainer is quiet without having to remember it.
"""

from __future__ import annotations

import logging
import warnings

#: Lightning's loggers: their INFO lines are status notes and adverts, their WARNINGs stay.
LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")

#: Warnings that say nothing about the study (regular expressions matched at the start of the message), and why.
NOISE = {
    r"`isinstance\(treespec, LeafSpec\)` is deprecated": "torch deprecating what Lightning's own code calls",
    r"Your `IterableDataset` has `__len__` defined": "our streams deal blocks to workers: the length holds",
    r"The number of training batches \(\d+\) is smaller than the logging interval": "small test epochs log per epoch",
    r"The '\w+' does not have many workers": "the token streams read in the training process by design",
}


def quiet_training() -> None:
    """Silence Lightning's notes and the warnings in `NOISE` in this process (idempotent; cheap to call per Trainer)."""
    import lightning.pytorch  # noqa: F401  - importing it sets its logger to INFO: lower it after the import

    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in NOISE:
        warnings.filterwarnings("ignore", message=pattern)  # an identical filter is replaced, never stacked
