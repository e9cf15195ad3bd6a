"""Masked-token pretraining of the sequence backbone, with a detached linear probe as an online downstream estimate.

Flat layout: BERT masking, one head over the vocabulary. Grouped layout: whole objects are
masked and one head per level predicts all Q codes. Validation masks are drawn from a generator
seeded by (seed, batch index), so validation numbers compare between epochs. Accuracy is logged
overall, per level and per type; the probe (a Linear on the detached mean of the hidden states,
trained on the labelled rows) logs its weighted validation AUC every epoch. It reads the mean,
not CLS: masked-token prediction never trains the CLS position, which only becomes a summary
once a classifier is fine-tuned on it.
"""
from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .backbone import BackboneConfig, SequenceBackbone, init_weights, pool
from .masking import IGNORE, mask_flat, mask_objects, range_lookup


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class MaskedTokenModel(L.LightningModule):
    def __init__(self, backbone: dict, ranges: list, vocabulary_hash: str, type_names: dict, n_classes: int = 2,
                 pooling: str = "mean", mask_rate: float = 0.15, p_mask: float = 0.8, p_random: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 50, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        cfg = BackboneConfig(**backbone)
        self.backbone = SequenceBackbone(cfg)
        self.heads = nn.ModuleList(nn.Linear(cfg.d_model, cfg.vocab_size) for _ in range(cfg.levels))
        self.probe = nn.Linear(cfg.d_model, n_classes)
        init_weights(self)
        self.lookup = range_lookup(ranges, cfg.vocab_size)
        self.grouped = cfg.levels > 1
        self._val: dict = {}

    def _corrupt(self, batch: dict, generator: torch.Generator):
        tokens = batch["tokens"]
        lookup = tuple(t.to(tokens.device) for t in self.lookup)
        if self.grouped:
            return mask_objects(tokens, batch["mask"], lookup, generator, self.hparams.mask_rate, self.hparams.p_mask,
                                self.hparams.p_random)
        return mask_flat(tokens, lookup, generator, self.hparams.mask_rate, self.hparams.p_mask, self.hparams.p_random)

    def _step(self, batch: dict, generator: torch.Generator):
        """(masked-token loss, probe loss, logits [N, Q, V] and targets [N, Q] at the N masked positions,
        their bool position mask [B, L], probe logits)."""
        inputs, targets = self._corrupt(batch, generator)
        hidden = self.backbone({**batch, "tokens": inputs})
        picked = (targets != IGNORE).any(-1)  # heads run on the masked positions only (the vocabulary is wide)
        logits = torch.stack([head(hidden[picked]) for head in self.heads], dim=1)
        targets = targets[picked]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)
        pooled = pool(hidden, batch["mask"], self.hparams.pooling).detach()
        probe_logits = self.probe(pooled)
        labelled = batch["label"] >= 0
        probe_loss = hidden.new_zeros(())
        if labelled.any():
            w = batch["weight"][labelled]
            probe_loss = (F.cross_entropy(probe_logits[labelled], batch["label"][labelled], reduction="none") * w).sum() / w.sum()
        return loss, probe_loss, logits, targets, picked, probe_logits

    def training_step(self, batch, batch_idx):
        generator = torch.Generator(device=batch["tokens"].device).manual_seed(self.hparams.seed * 1_000_003 + self.global_step)
        loss, probe_loss, *_ = self._step(batch, generator)
        n = len(batch["tokens"])
        self.log_dict({"train/loss": loss, "train/probe_loss": probe_loss}, prog_bar=True, batch_size=n)
        return loss + probe_loss  # the probe sees detached features: its loss never moves the backbone

    def on_validation_epoch_start(self):
        self._val = {"correct": {}, "total": {}, "probs": [], "labels": [], "weights": [], "loss": [], "n": []}

    def validation_step(self, batch, batch_idx):
        generator = torch.Generator(device=batch["tokens"].device).manual_seed(self.hparams.seed * 7919 + batch_idx)
        loss, _, logits, targets, positions, probe_logits = self._step(batch, generator)
        hit = (logits.argmax(-1) == targets) & (targets != IGNORE)  # [N, Q]
        picked = targets != IGNORE
        levels = torch.arange(targets.shape[1], device=targets.device).expand_as(targets)
        types = batch["type_ids"][positions][:, None].expand_as(targets)
        tally = {"all": (hit.sum(), picked.sum())}
        for q in range(targets.shape[1]):
            tally[f"level_{q + 1}"] = (hit[levels == q].sum(), picked[levels == q].sum())
        for t in torch.unique(types[picked]).tolist():
            name = self.hparams.type_names.get(str(t), str(t))
            tally[name] = (hit[types == t].sum(), picked[types == t].sum())
        for key, (c, n) in tally.items():
            self._val["correct"][key] = self._val["correct"].get(key, 0) + int(c)
            self._val["total"][key] = self._val["total"].get(key, 0) + int(n)
        self._val["loss"].append(float(loss) * int(picked.sum()))
        self._val["n"].append(int(picked.sum()))
        self._val["probs"].append(torch.softmax(probe_logits.float(), -1).cpu().numpy())
        self._val["labels"].append(batch["label"].cpu().numpy())
        self._val["weights"].append(batch["weight"].float().cpu().numpy())

    def on_validation_epoch_end(self):
        v = self._val
        self.log("val/loss", sum(v["loss"]) / max(sum(v["n"]), 1), prog_bar=True)
        for key, total in v["total"].items():
            name = "val/masked_accuracy" if key == "all" else f"val/masked_accuracy/{key}"
            self.log(name, v["correct"][key] / max(total, 1))
        self.log("val/probe_auc", probe_auc(np.concatenate(v["labels"]), np.concatenate(v["probs"]),
                                            np.concatenate(v["weights"])), prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, self.hparams.warmup_steps, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def probe_auc(labels: np.ndarray, probs: np.ndarray, weights: np.ndarray) -> float:
    """Weighted AUC of probe outputs: class 1 vs 0 for two classes, macro one-vs-rest otherwise (NaN if undefined)."""
    from .. import metrics
    from ..errors import MetricInputError

    keep = labels >= 0
    labels, probs, weights = labels[keep], probs[keep], weights[keep]
    if len(np.unique(labels)) < 2:
        return float("nan")
    try:
        if probs.shape[1] == 2:
            return metrics.auc(labels, probs[:, 1], weights)
        return metrics.macro_auc(labels, probs, weights)
    except MetricInputError:
        return float("nan")
