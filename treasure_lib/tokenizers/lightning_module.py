"""Lightning training of the object VQ-VAE: reconstruction + commitment, codebook upkeep, per-level monitoring."""

from __future__ import annotations

import lightning as L
import torch

from . import codebooks
from .vqvae import ObjectVQVAE, VQVAEConfig, reconstruction_loss


class VQVAEModule(L.LightningModule):
    """Loss = reconstruction (L1 or MSE on valid objects) + categorical CE + commitment.

    After each training step, dead codes are re-drawn from the batch's valid latents
    (`train/replaced_level_q`: the fraction of the codebook replaced in that step).
    Validation reconstructs after 1, 2, ..., Q quantizer levels (`val/rec_level_q`) and counts
    codebook usage per level (`val/usage_level_q`, fraction of codes used).
    """

    def __init__(
        self,
        config: dict,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        loss: str = "l1",
        categorical_weight: float = 0.1,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = ObjectVQVAE(VQVAEConfig(**config))
        self._used: list[torch.Tensor] = []
        self._generator = torch.Generator().manual_seed(seed)

    def forward(self, cont, cat, mask):
        return self.model(cont, cat, mask)

    def _losses(self, batch):
        cont, cat, mask = batch
        result = self.model(cont, cat, mask)
        rec, ce = reconstruction_loss(result, self.hparams.loss)
        total = rec + self.hparams.categorical_weight * ce + result["commit_loss"]
        return total, rec, ce, result

    def training_step(self, batch, _):
        total, rec, ce, result = self._losses(batch)
        n = int(batch[2].sum())
        self.log_dict(
            {
                "train/loss": total,
                "train/rec": rec,
                "train/ce": ce,
                "train/commit": result["commit_loss"],
                "train/objects": float(n),
            },
            prog_bar=False,
            batch_size=n,
        )
        self.log("loss", total, prog_bar=True, logger=False, batch_size=n)
        replaced = codebooks.replace_dead_codes(
            self.model.quantizer, result["latent"].detach(), self.model.cfg.dead_code_fraction, self._generator
        )
        if self._ddp and any(replaced):  # every rank agrees on `replaced` (shared EMA counts): all broadcast
            codebooks.broadcast(self.model.quantizer)
        K = self.model.cfg.effective_codebook_size
        for q, count in enumerate(replaced, start=1):
            self.log(f"train/replaced_level_{q}", count / K, batch_size=n)
        return total

    @property
    def _ddp(self) -> bool:
        return self._trainer is not None and self.trainer.world_size > 1

    def on_fit_start(self):
        if self._ddp:
            codebooks.distribute(self.model.quantizer, True)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self._ddp and batch_idx == 0 and not codebooks.same_on_every_rank(self.model.quantizer):
            raise RuntimeError(
                "tokenizer codebook statistics differ between DDP ranks after a training step: the EMA "
                "updates were not summed over ranks (vector-quantize-pytorch internals changed?)"
            )

    def on_fit_end(self):
        if self._ddp:
            codebooks.distribute(self.model.quantizer, False)

    def on_validation_epoch_start(self):
        K = self.model.cfg.effective_codebook_size
        self._used = [
            torch.zeros(K, dtype=torch.bool, device=self.device) for _ in range(self.model.cfg.num_quantizers)
        ]

    def validation_step(self, batch, _):
        total, rec, ce, result = self._losses(batch)
        cont, cat, mask = batch
        n = int(mask.sum())
        self.log_dict({"val/loss": total, "val/rec": rec, "val/ce": ce}, prog_bar=True, batch_size=n, sync_dist=True)
        full = self.model.encode_indices(cont, cat, mask)
        for q in range(self.model.cfg.num_quantizers):
            self._used[q][full[..., q][mask]] = True
        fn = torch.nn.functional.l1_loss if self.hparams.loss == "l1" else torch.nn.functional.mse_loss
        for q in range(1, self.model.cfg.num_quantizers + 1):
            rec_q, _ = self.model.decode_indices(full, mask, levels=q)
            if cont.shape[-1]:
                self.log(f"val/rec_level_{q}", fn(rec_q[mask], cont[mask].float()), batch_size=n, sync_dist=True)

    def on_validation_epoch_end(self):
        if self._ddp:  # a code used on any rank is used
            import torch.distributed as dist

            for used in self._used:
                flag = used.to(torch.uint8)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                used.copy_(flag.bool())
        for q, used in enumerate(self._used, start=1):
            self.log(f"val/usage_level_{q}", used.float().mean(), sync_dist=True)  # the same on every rank

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
