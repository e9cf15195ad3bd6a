"""Training prints only what matters: Lightning's notes, adverts and warnings about its own internals are gone, a
real warning still shows, and under `treasure run` the epoch and validation loss reach the runner's status line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from .conftest import ROOT

# a small fit through the project's Trainer factory, with an IterableDataset that has __len__ (as our streams do),
# fewer batches than the logging interval, and one warning of the model's own
FIT = textwrap.dedent("""
    import warnings
    from pathlib import Path
    import torch, lightning as L
    from treasure_lib.trainer import make_trainer

    class Rows(torch.utils.data.IterableDataset):
        def __init__(self, n): self.n = n
        def __len__(self): return self.n
        def __iter__(self):
            g = torch.Generator().manual_seed(self.n)
            for _ in range(self.n):
                x = torch.randn(16, 4, generator=g)
                yield x, x.sum(1, keepdim=True)

    class Fit(L.LightningModule):
        def __init__(self):
            super().__init__(); self.layer = torch.nn.Linear(4, 1)
        def training_step(self, batch, i):
            if i == 0 and self.current_epoch == 0:
                warnings.warn("the model's own warning: inputs are not scaled")
            x, y = batch; return ((self.layer(x) - y) ** 2).mean()
        def validation_step(self, batch, i):
            x, y = batch; self.log("val/loss", ((self.layer(x) - y) ** 2).mean())
        def configure_optimizers(self): return torch.optim.SGD(self.parameters(), lr=0.05)

    train = dict(max_epochs=3, accelerator="cpu", devices=1, num_nodes=1, strategy="auto", precision=None, patience=5,
                 min_delta=0.0, progress_bar=False, wandb=False)
    loader = lambda n: torch.utils.data.DataLoader(Rows(n), batch_size=None)
    out = Path(__import__("sys").argv[1]) / "classify" / "flavour" / "tokens"
    make_trainer(train, out, monitor="val/loss").fit(Fit(), loader(4), loader(2))
    make_trainer(train, None, logs=False, single_device=True).validate(Fit(), loader(2), verbose=False)
""")

NOTES = (
    "GPU available",
    "TPU available",
    "Tip",
    "litlogger",
    "LeafSpec",
    "`IterableDataset` has `__len__`",
    "smaller than the logging interval",
    "Trainer.fit` stopped",
    "Loading `train_dataloader`",
    "site-packages",
)


def test_a_fit_shows_no_lightning_notes_but_keeps_real_warnings_and_reports_epochs(tmp_path):
    live = tmp_path / "live.json"
    env = {**os.environ, "TREASURE_LIVE_FILE": str(live), "PYTHONWARNINGS": "default"}
    proc = subprocess.run(
        [sys.executable, "-c", FIT, str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = proc.stdout + proc.stderr
    assert not [note for note in NOTES if note in shown], shown
    assert "the model's own warning: inputs are not scaled" in proc.stderr
    report = json.loads(live.read_text())
    assert report["what"] == "Fit flavour/tokens" and report["epoch"] == report["max_epochs"] == 3
    assert isinstance(report["val_loss"], float) and report["val_loss"] > 0


def test_outside_treasure_run_a_trainer_reports_nothing(tmp_path, monkeypatch):
    from treasure_lib import epoch_report

    monkeypatch.delenv("TREASURE_LIVE_FILE", raising=False)
    assert epoch_report.for_trainer(tmp_path) == []
    monkeypatch.setenv("TREASURE_LIVE_FILE", str(tmp_path / "live.json"))
    assert [type(c).__name__ for c in epoch_report.for_trainer(tmp_path)] == ["EpochReport"]


def test_a_model_is_named_by_its_kind_and_output_folder():
    from treasure_lib.epoch_report import label

    class SequenceClassifier:
        pass

    class VQVAEModule:
        pass

    assert (
        label(SequenceClassifier(), "runs/jets/default/artifacts/.classify-x.partial-h-1/flavour/tokens")
        == "classifier flavour/tokens"
    )
    assert label(VQVAEModule(), "runs/jets/default/artifacts/.tokenizers.partial-h-2/tracks") == "tokenizer tracks"
    assert label(SequenceClassifier(), None) == "classifier"
