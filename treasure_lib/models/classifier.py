"""Sequence classifiers: pooled backbone + MLP head, trained from scratch or on a pretrained backbone.

Modes: `scratch`; `finetune` (everything trains); `frozen` (the backbone stays in eval mode
with no gradients, so dropout is off: a probe on fixed features); `slow` (the backbone's learning
rate starts at `backbone_lr_factor` x lr and rises to the full lr over `catch_up_epochs`). The
loss is the weighted cross entropy (no label smoothing: the outputs are probabilities that
working points rely on). A pretrained backbone is loaded strictly: a missing or unexpected key,
a shape mismatch or another vocabulary is an error naming the file, never a random backbone.
"""
from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputFileError
from .backbone import BackboneConfig, SequenceBackbone, init_weights, pool
from .pretrain import probe_auc, warmup_cosine

MODES = ("scratch", "finetune", "frozen", "slow")


def load_backbone_state(path: str | Path) -> tuple[dict, dict]:
    """(backbone state dict, hyper-parameters) from a pretraining checkpoint (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no pretrained checkpoint here; run `treasure pretrain` first or set classify.backbone")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise InputFileError(f"{path}: not a Lightning checkpoint with state_dict and hyper_parameters")
    state = {k[len("backbone."):]: v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    if not state:
        raise InputFileError(f"{path}: the checkpoint holds no backbone weights (keys 'backbone.*')")
    return state, ckpt["hyper_parameters"]


class SequenceClassifier(L.LightningModule):
    def __init__(self, backbone: dict, n_classes: int, class_names: list, vocabulary_hash: str, mode: str = "scratch",
                 pooling: str = "cls", head_hidden: int = 64, head_dropout: float = 0.1, lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 20, backbone_lr_factor: float = 0.1,
                 catch_up_epochs: int = 3):
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"classify.mode must be one of {MODES}, got {mode!r}")
        self.save_hyperparameters()
        cfg = BackboneConfig(**backbone)
        self.backbone = SequenceBackbone(cfg)
        self.head = nn.Sequential(nn.Linear(cfg.d_model, head_hidden), nn.ReLU(), nn.Dropout(head_dropout),
                                  nn.Linear(head_hidden, n_classes))
        init_weights(self)
        self._val: dict = {}

    # ------------------------------------------------------------------ backbone handling
    def load_backbone(self, path: str | Path) -> None:
        state, hparams = load_backbone_state(path)
        if hparams.get("vocabulary_hash") != self.hparams.vocabulary_hash:
            raise ConfigError(f"{path}: pretrained on another vocabulary or layout (hash {hparams.get('vocabulary_hash')}) "
                              f"than these tokens ({self.hparams.vocabulary_hash}); pretrain on the same token files")
        mine = self.backbone.state_dict()
        missing = sorted(set(mine) - set(state))
        unexpected = sorted(set(state) - set(mine))
        shapes = sorted(k for k in set(mine) & set(state) if mine[k].shape != state[k].shape)
        if missing or unexpected or shapes:
            raise ConfigError(f"{path}: the pretrained backbone does not fit this classifier's: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}, other shapes {shapes[:5]} (backbone sizes must match)")
        self.backbone.load_state_dict(state, strict=True)
        if self.hparams.mode == "frozen":
            self._freeze()

    def _freeze(self) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.hparams.mode == "frozen":
            self.backbone.eval()  # Lightning calls .train() every epoch: a frozen backbone keeps dropout off
        return self

    # ------------------------------------------------------------------ model
    def forward(self, batch: dict) -> torch.Tensor:
        if self.hparams.mode == "frozen":
            with torch.no_grad():
                hidden = self.backbone(batch)
        else:
            hidden = self.backbone(batch)
        return self.head(pool(hidden, batch["mask"], self.hparams.pooling))

    @torch.no_grad()
    def predict_proba(self, batch: dict) -> torch.Tensor:
        was = self.training
        self.eval()
        probs = torch.softmax(self(batch).float(), -1)
        self.train(was)
        return probs

    def _loss(self, batch: dict):
        logits = self(batch)
        labelled = batch["label"] >= 0
        w = batch["weight"][labelled].float()
        ce = F.cross_entropy(logits[labelled].float(), batch["label"][labelled], reduction="none")
        return (ce * w).sum() / w.sum().clamp_min(1e-12), logits

    def training_step(self, batch, _):
        loss, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["label"]))
        return loss

    def on_validation_epoch_start(self):
        self._val = {"probs": [], "labels": [], "weights": [], "loss": [], "w": []}

    def validation_step(self, batch, _):
        loss, logits = self._loss(batch)
        self._val["loss"].append(float(loss) * float(batch["weight"].sum()))
        self._val["w"].append(float(batch["weight"].sum()))
        self._val["probs"].append(torch.softmax(logits.float(), -1).cpu().numpy())
        self._val["labels"].append(batch["label"].cpu().numpy())
        self._val["weights"].append(batch["weight"].float().cpu().numpy())

    def on_validation_epoch_end(self):
        v = self._val
        self.log("val/loss", sum(v["loss"]) / max(sum(v["w"]), 1e-12), prog_bar=True)
        self.log("val/auc", probe_auc(np.concatenate(v["labels"]), np.concatenate(v["probs"]), np.concatenate(v["weights"])),
                 prog_bar=True)

    def configure_optimizers(self):
        h = self.hparams
        head = [p for p in self.head.parameters()]
        groups = [{"params": head, "lr": h.lr}]
        if h.mode != "frozen":
            groups.append({"params": list(self.backbone.parameters()), "lr": h.lr})
        opt = torch.optim.AdamW(groups, lr=h.lr, weight_decay=h.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)

        def backbone_factor(step: int) -> float:
            base = warmup_cosine(step, h.warmup_steps, total)
            if h.mode != "slow":
                return base
            catch_up = min(1.0, step / (per_epoch * max(h.catch_up_epochs, 1)))
            return base * (h.backbone_lr_factor + (1 - h.backbone_lr_factor) * catch_up)

        lambdas = [lambda s: warmup_cosine(s, h.warmup_steps, total)] + ([backbone_factor] if len(groups) > 1 else [])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
