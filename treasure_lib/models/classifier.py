"""Sequence classifiers: pooled backbone + MLP head, trained from scratch or on a pretrained backbone.

Modes: `scratch`; `finetune` (everything trains); `frozen` (the backbone stays in eval mode
with no gradients, so dropout is off: a probe on fixed features); `slow` (the backbone's learning
rate starts at `backbone_lr_factor` x lr and rises to the full lr over `catch_up_epochs`). The
loss is the weighted cross entropy (no label smoothing: the outputs are probabilities that
working points rely on). A pretrained backbone is loaded strictly: a missing or unexpected key,
a shape mismatch, another architecture or another vocabulary is an error naming the file and the
keys, never a random backbone (only `causal` is taken from the checkpoint: a next-token backbone stays
causal, and then needs `pooling: mean`, its CLS seeing only itself); a `finetune`, `frozen` or `slow`
classifier refuses to fit before its backbone is loaded (or restored from its own checkpoint).

Pretraining checkpoints are Lightning `.ckpt` files (format in `pretrain.py`), read with
`torch.load(weights_only=True)`: `state_dict["backbone.*"]` and `hyper_parameters` (`backbone`
config, `ranges`, `vocabulary_hash`). Logged: `train/loss`, `val/loss`, `val/auc` (weighted; binary:
class 1 vs 0, multi-class: macro one-vs-rest). `predict_proba(batch)` gives softmax probabilities.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather, merge_tallies
from ..errors import ConfigError, InputFileError
from .backbone import BackboneConfig, SequenceBackbone, init_weights, pool
from .pretrain import probe_auc, warmup_cosine

MODES = ("scratch", "finetune", "frozen", "slow")
# backbone settings that change the function but not the tensor shapes (dropout is a training choice)
_ARCHITECTURE = (
    "vocab_size",
    "n_types",
    "max_len",
    "levels",
    "d_model",
    "n_layers",
    "n_heads",
    "d_ff",
    "inputs",
    "feature_dim",
    "feature_hidden",
    "group_attention",
    "group_attention_groups",
)


def load_backbone_state(path: str | Path) -> tuple[dict, dict]:
    """(backbone state dict, hyper-parameters) from a pretraining checkpoint (tensors and plain data only)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(
            f"{path}: no pretrained checkpoint here; run `treasure pretrain` first or set classify.backbone"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated file, not a torch file, or objects beyond tensors and plain data
        raise InputFileError(
            f"{path}: cannot be read as a pretraining checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise InputFileError(f"{path}: not a Lightning checkpoint with state_dict and hyper_parameters")
    state = {k[len("backbone.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("backbone.")}
    if not state:
        raise InputFileError(f"{path}: the checkpoint holds no backbone weights (keys 'backbone.*')")
    return state, ckpt["hyper_parameters"]


def catch_up(step: int, steps_per_epoch: int, epochs: int, factor: float) -> float:
    """`slow` mode: the backbone's share of the learning rate, `factor` at step 0 rising linearly to 1
    after `epochs`."""
    progress = min(1.0, step / (max(steps_per_epoch, 1) * max(epochs, 1)))
    return factor + (1 - factor) * progress


class SequenceClassifier(L.LightningModule):
    def __init__(
        self,
        backbone: dict,
        n_classes: int,
        class_names: list,
        vocabulary_hash: str,
        mode: str = "scratch",
        pooling: str = "cls",
        head_hidden: int = 64,
        head_dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 20,
        backbone_lr_factor: float = 0.1,
        catch_up_epochs: int = 3,
        ranges: list | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ConfigError(f"classify.mode must be one of {MODES}, got {mode!r}")
        if pooling not in ("cls", "mean"):
            raise ConfigError(f"model.pooling must be cls or mean, got {pooling!r}")
        self.save_hyperparameters()
        cfg = BackboneConfig(**backbone)
        self.backbone = SequenceBackbone(cfg)
        self.head = nn.Sequential(
            nn.Linear(cfg.d_model, head_hidden), nn.ReLU(), nn.Dropout(head_dropout), nn.Linear(head_hidden, n_classes)
        )
        init_weights(self)
        self.backbone_source: str | None = None  # where the backbone weights came from (None: drawn at random)
        if mode == "frozen":
            self._freeze()
        self._val: dict = {}

    # ------------------------------------------------------------------ backbone handling
    def load_backbone(self, path: str | Path) -> None:
        """Load the pretrained backbone of a `MaskedTokenModel` checkpoint; anything that does not fit exactly
        is an error."""
        state, hparams = load_backbone_state(path)
        if hparams.get("vocabulary_hash") != self.hparams.vocabulary_hash:
            raise ConfigError(
                f"{path}: pretrained on another vocabulary or layout (hash {hparams.get('vocabulary_hash')}) "
                f"than these tokens ({self.hparams.vocabulary_hash}); pretrain on the same token files"
            )
        if self.hparams.ranges is not None and _plain(hparams.get("ranges")) != _plain(self.hparams.ranges):
            raise ConfigError(
                f"{path}: pretrained on other vocabulary id ranges than these tokens' "
                f"(same hash {self.hparams.vocabulary_hash}); re-export or re-pretrain"
            )
        theirs, ours = hparams.get("backbone") or {}, self.hparams.backbone
        differ = [
            f"{k} {theirs.get(k)!r} != {ours.get(k)!r}"
            for k in _ARCHITECTURE
            if k in theirs and theirs.get(k) != ours.get(k)
        ]
        if differ:
            raise ConfigError(
                f"{path}: the pretrained backbone has another architecture ({', '.join(differ)}; "
                f"checkpoint vs this classifier); use the pretraining's model settings"
            )
        causal = bool(theirs.get("causal", False))  # part of the function, but taken from the checkpoint
        if causal and self.hparams.pooling == "cls":
            raise ConfigError(
                f"{path}: a causal (next-token) backbone's position 0 attends only to itself, so CLS pooling would "
                f"read a constant; use model.pooling=mean"
            )
        mine = self.backbone.state_dict()
        missing = sorted(set(mine) - set(state))
        unexpected = sorted(set(state) - set(mine))
        shapes = sorted(k for k in set(mine) & set(state) if mine[k].shape != state[k].shape)
        if missing or unexpected or shapes:
            raise ConfigError(
                f"{path}: the pretrained backbone does not fit this classifier's: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}, other shapes {shapes[:5]} (backbone sizes must match)"
            )
        self.backbone.load_state_dict(state, strict=True)
        self.backbone.cfg.causal = self.hparams.backbone["causal"] = causal  # this classifier's checkpoint records it
        self.backbone_source = str(path)
        if self.hparams.mode == "frozen":
            self._freeze()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.backbone_source = "classifier checkpoint"  # resuming or reloading this classifier: its own weights

    def on_fit_start(self) -> None:
        if self.hparams.mode != "scratch" and self.backbone_source is None:
            raise ConfigError(
                f"classify.mode={self.hparams.mode} needs a pretrained backbone: call load_backbone(path) "
                f"before fitting (classify.backbone), or use mode=scratch"
            )

    def _freeze(self) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(False)
        self.backbone.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.hparams.mode == "frozen":
            self.backbone.eval()  # whoever calls .train(), a frozen backbone keeps dropout off
        return self

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self.hparams.mode == "frozen" and self.backbone.training:  # a mode restored by a loop, set submodule-wise
            self.backbone.eval()

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
        v = merge_tallies(gather(self._trainer, self._val))  # every DDP rank: the same numbers
        self.log("val/loss", sum(v["loss"]) / max(sum(v["w"]), 1e-12), prog_bar=True)
        self.log(
            "val/auc",
            probe_auc(np.concatenate(v["labels"]), np.concatenate(v["probs"]), np.concatenate(v["weights"])),
            prog_bar=True,
        )

    def configure_optimizers(self):
        h = self.hparams
        groups = [{"params": list(self.head.parameters()), "lr": h.lr}]
        if h.mode != "frozen":
            groups.append({"params": list(self.backbone.parameters()), "lr": h.lr})
        opt = torch.optim.AdamW(groups, lr=h.lr, weight_decay=h.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        per_epoch = max(total // max(self.trainer.max_epochs or 1, 1), 1)

        def backbone_factor(step: int) -> float:
            base = warmup_cosine(step, h.warmup_steps, total)
            if h.mode != "slow":
                return base
            return base * catch_up(step, per_epoch, h.catch_up_epochs, h.backbone_lr_factor)

        lambdas = [lambda s: warmup_cosine(s, h.warmup_steps, total)] + ([backbone_factor] if len(groups) > 1 else [])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambdas)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def _plain(ranges) -> list | None:
    """Vocabulary ranges as comparable plain data (hparams may hold them as lists of dicts or of AttributeDicts)."""
    if ranges is None:
        return None
    return [{k: r[k] for k in ("collection", "level", "start", "size")} for r in ranges]
