"""Masked-token pretraining of the sequence backbone, with a detached linear probe as an online downstream estimate.

Flat layout: BERT masking, one head over the vocabulary. Grouped layout: whole objects are
masked and one head per level predicts all Q codes. A masked target is scored only against the ids of
its own vocabulary range (its collection and level, known from the unmasked type): the cross entropy
and the accuracy are those of choosing among that range's K codes, and no head evaluates the thousands
of ids of other collections (which dominated the cost of an events study's vocabulary).
Validation masks are drawn from a generator
seeded by (seed, batch index), so validation numbers compare between epochs. Accuracy is logged
overall, per level and per type; the probe (a Linear on the detached mean of the hidden states,
trained on the labelled rows) logs its weighted validation AUC every epoch. It reads the mean,
not CLS: masked-token prediction never trains the CLS position, which only becomes a summary
once a classifier is fine-tuned on it.

Logged: `train/loss`, `train/probe_loss`; every validation epoch `val/loss`, `val/masked_accuracy`,
`val/masked_accuracy/level_<q>` (q = 1 for the first quantizer level, as in the codebook metrics;
the level is the vocabulary range's, so it is right in the flat layout too),
`val/masked_accuracy/<collection>` (the name from `type_names`, else `type_<id>`) and `val/probe_auc`.

Checkpoint format (what `classifier.load_backbone_state` reads): a Lightning `.ckpt` saved by the
Trainer, a torch pickle of plain containers and tensors that loads with `weights_only=True`:
`state_dict` (`backbone.*` = the `SequenceBackbone`, `heads.<q>.*`, `probe.*`) and
`hyper_parameters` (`backbone`: the `BackboneConfig` as a dict, `ranges`: the vocabulary id ranges,
`vocabulary_hash`, `type_names`, the masking and optimiser settings, `seed`, `objective`: "masked").
The probe, its AUC and the optimiser live in `PretrainingModel`, which `next_token.NextTokenModel` shares.
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather, merge_tallies
from .backbone import BackboneConfig, SequenceBackbone, init_weights, pool
from .masking import IGNORE, mask_flat, mask_objects, range_lookup


def seeded_generator(device, *parts: int) -> torch.Generator:
    """A torch generator seeded by a tuple of integers (seed, stream, step, ...) without collisions between tuples."""
    seed = int(np.random.SeedSequence([int(x) for x in parts]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=device).manual_seed(seed)


TRAIN_STREAM, VALIDATION_STREAM = 0, 1


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay to 10%."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def range_logits(hidden: torch.Tensor, head: nn.Linear, picked: torch.Tensor, starts: torch.Tensor, sizes):
    """Per vocabulary range among the picked rows: (rows [N] bool, the logits [rows, size] float32 of that range's
    ids only, its first id). `starts`, `sizes` [N]: each row's range (its collection and level), so a head never
    scores the thousands of ids that cannot be the answer."""
    for s in torch.unique(starts[picked]).tolist():
        rows = picked & (starts == s)
        n = int(sizes[rows][0])
        yield rows, F.linear(hidden[rows], head.weight[s : s + n], head.bias[s : s + n]).float(), s


class PretrainingModel(L.LightningModule):
    """What every pretraining objective shares: the detached linear probe (`self.probe`, pooled with
    `hparams.pooling`), its validation AUC, and AdamW with warm-up and cosine decay."""

    def probe_step(self, hidden: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted probe loss over the labelled rows, probe logits [B, classes]) on the detached pooled states."""
        pooled = pool(hidden, batch["mask"], self.hparams.pooling).detach()
        probe_logits = self.probe(pooled)
        labelled = batch["label"] >= 0
        probe_loss = hidden.new_zeros(())
        if labelled.any():
            w = batch["weight"][labelled]
            probe_loss = (
                F.cross_entropy(probe_logits[labelled], batch["label"][labelled], reduction="none") * w
            ).sum() / w.sum()
        return probe_loss, probe_logits

    def training_loss(self, loss: torch.Tensor, probe_loss: torch.Tensor, batch: dict) -> torch.Tensor:
        """Log `train/loss` and `train/probe_loss`; what the optimiser minimises, their sum (the probe sees detached
        features: its loss never moves the backbone)."""
        n = len(batch["tokens"])
        self.log_dict({"train/loss": loss, "train/probe_loss": probe_loss}, prog_bar=True, batch_size=n)
        return loss + probe_loss

    def record_probe(self, probe_logits: torch.Tensor, batch: dict) -> None:
        """Keep a validation batch's probe outputs, labels and weights (in `self._val`) for the epoch's AUC."""
        self._val["probs"].append(torch.softmax(probe_logits.float(), -1).cpu().numpy())
        self._val["labels"].append(batch["label"].cpu().numpy())
        self._val["weights"].append(batch["weight"].float().cpu().numpy())

    def tally_accuracy(self, hit: torch.Tensor, level: torch.Tensor, kind: torch.Tensor) -> None:
        """Add a validation batch's predictions (flat: hit bool, vocabulary level, type id, one per target) to the
        epoch's tallies in `self._val` ("correct", "total"): overall (`all`), per level (`level_<q + 1>`) and per
        collection (the name from `type_names`, else `type_<id>`)."""
        tally = {"all": (hit.sum(), len(hit))}
        for q in torch.unique(level).tolist():
            at = level == q
            tally[f"level_{q + 1}"] = (hit[at].sum(), at.sum())
        for t in torch.unique(kind).tolist():
            at = kind == t
            tally[self.hparams.type_names.get(str(t), f"type_{t}")] = (hit[at].sum(), at.sum())
        for key, (c, n) in tally.items():
            self._val["correct"][key] = self._val["correct"].get(key, 0) + int(c)
            self._val["total"][key] = self._val["total"].get(key, 0) + int(n)

    def log_accuracies(self, name: str, merged: dict) -> None:
        """`name` (all targets) and `name/<key>` for every tally of the epoch (merged over ranks)."""
        for key, total in merged["total"].items():
            self.log(name if key == "all" else f"{name}/{key}", merged["correct"][key] / max(total, 1))

    def log_probe_auc(self, merged: dict) -> None:
        self.log(
            "val/probe_auc",
            probe_auc(
                np.concatenate(merged["labels"]), np.concatenate(merged["probs"]), np.concatenate(merged["weights"])
            ),
            prog_bar=True,
        )

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, self.hparams.warmup_steps, total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def check_objective(objective: str, expected: str) -> None:
    """The `objective` hyper-parameter only records which model a checkpoint holds: it must be the class's own."""
    if objective != expected:
        raise ValueError(f"this model's objective is {expected!r}, got {objective!r}")


class MaskedTokenModel(PretrainingModel):
    def __init__(
        self,
        backbone: dict,
        ranges: list,
        vocabulary_hash: str,
        type_names: dict,
        n_classes: int = 2,
        pooling: str = "mean",
        mask_rate: float = 0.15,
        p_mask: float = 0.8,
        p_random: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 50,
        seed: int = 0,
        objective: str = "masked",
    ):
        super().__init__()
        check_objective(objective, "masked")
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
            return mask_objects(
                tokens,
                batch["mask"],
                lookup,
                generator,
                self.hparams.mask_rate,
                self.hparams.p_mask,
                self.hparams.p_random,
            )
        return mask_flat(tokens, lookup, generator, self.hparams.mask_rate, self.hparams.p_mask, self.hparams.p_random)

    def _range_logits(self, hidden: torch.Tensor, targets: torch.Tensor):
        """Per masked target, the logits of its own vocabulary range only (the collection and level it belongs to
        are known: the object's type is not masked), so a head never scores thousands of ids that cannot be the
        answer. Returns (loss, hits [N, Q] bool, picked [N, Q] bool) over the N masked positions."""
        start_of, size_of = (t.to(targets.device) for t in self.lookup[:2])
        picked = targets != IGNORE
        safe = targets.clamp_min(0)
        starts, sizes = start_of[safe], size_of[safe]
        hits = torch.zeros_like(picked)
        total = hidden.new_zeros(())
        count = 0
        for q, head in enumerate(self.heads):
            level_picked = picked[:, q]
            if not level_picked.any():
                continue
            for rows, logits, s in range_logits(hidden, head, level_picked, starts[:, q], sizes[:, q]):
                target = targets[rows, q] - s
                total = total + F.cross_entropy(logits, target, reduction="sum")
                count += int(rows.sum())
                hits[rows, q] = logits.argmax(-1) == target
        return total / max(count, 1), hits, picked

    def _step(self, batch: dict, generator: torch.Generator):
        """(masked-token loss, probe loss, hits [N, Q], targets [N, Q] at the N masked positions, their bool
        position mask [B, L], probe logits)."""
        inputs, targets = self._corrupt(batch, generator)
        hidden = self.backbone({**batch, "tokens": inputs})
        positions = (targets != IGNORE).any(-1)  # heads run on the masked positions only
        targets = targets[positions]
        if positions.any():
            loss, hits, _ = self._range_logits(hidden[positions], targets)
        else:  # nothing drawn in this (tiny) batch: no signal, but keep the graph and no NaN
            loss, hits = hidden.sum() * 0.0, torch.zeros_like(targets, dtype=torch.bool)
        probe_loss, probe_logits = self.probe_step(hidden, batch)
        return loss, probe_loss, hits, targets, positions, probe_logits

    def training_step(self, batch, batch_idx):
        generator = seeded_generator(
            batch["tokens"].device, self.hparams.seed, TRAIN_STREAM, self.global_step, self.global_rank
        )
        loss, probe_loss, *_ = self._step(batch, generator)
        return self.training_loss(loss, probe_loss, batch)

    def on_validation_epoch_start(self):
        self._val = {"correct": {}, "total": {}, "probs": [], "labels": [], "weights": [], "loss": [], "n": []}

    def validation_generator(self, device, batch_idx: int) -> torch.Generator:
        """The fixed validation mask: seeded by (seed, batch index, rank) only, the same every epoch."""
        return seeded_generator(device, self.hparams.seed, VALIDATION_STREAM, batch_idx, self.global_rank)

    def validation_step(self, batch, batch_idx):
        generator = self.validation_generator(batch["tokens"].device, batch_idx)
        loss, _, hits, targets, positions, probe_logits = self._step(batch, generator)
        hit = hits & (targets != IGNORE)  # [N, Q]: the argmax within the target's own range
        picked = targets != IGNORE
        levels = self.lookup[2].to(targets.device)[targets.clamp_min(0)]  # the vocabulary level of each target id
        types = batch["type_ids"][positions][:, None].expand_as(targets)
        self.tally_accuracy(hit[picked], levels[picked], types[picked])
        self._val["loss"].append(float(loss) * int(picked.sum()))
        self._val["n"].append(int(picked.sum()))
        self.record_probe(probe_logits, batch)

    def on_validation_epoch_end(self):
        # under DDP every rank saw its own share: merge the tallies, so every rank logs (and early-stops on) the same
        v = merge_tallies(gather(self._trainer, self._val))
        self.log("val/loss", sum(v["loss"]) / max(sum(v["n"]), 1), prog_bar=True)
        self.log_accuracies("val/masked_accuracy", v)
        self.log_probe_auc(v)


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
