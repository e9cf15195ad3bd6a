"""The second baseline: an autoencoder on the raw scaled features, of the pretrained backbone's size.

Why matched size: an anomaly score from a model with ten times the parameters would credit the capacity, not the
tokens or the pretraining. The autoencoder works per object: its input is the object's scaled features and a learned
embedding of its type, encoder F + d_type -> h -> h -> b and decoder b -> h -> h -> F, with h chosen by
`matched_hidden` so its parameter count is closest to the backbone's. Features a collection does not have are zero
at its positions: the loss and the score average the squared error over the columns that are not identically zero
for the object's type in the training rows (`columns`), so a decoder is never graded on another collection's slots.
A row's score is the mean over its objects of the per-object mean squared error.

Training is plain torch on the CPU, seeded (initialisation and batch order), every object of the training rows
counted once; it stops early on the validation loss by the rule every training of the library shares
(`training_health.stalled`) and restores the best epoch's weights, so `converged` means what it means elsewhere.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn

from .. import training_health
from ..errors import ConfigError, InputFileError
from ..models.backbone import count_parameters
from .positions import object_positions

TYPE_DIM = 4  # width of the learned type embedding
EVAL_OBJECTS = 65_536  # objects per forward pass when scoring


def parameter_count(feature_dim: int, n_types: int, hidden: int, bottleneck: int, type_dim: int = TYPE_DIM) -> int:
    """Parameters of `ObjectAutoencoder`: 2h^2 + h (2F + d_type + 2b + 4) + b + F + n_types d_type."""
    f, h, b = feature_dim, hidden, bottleneck
    return 2 * h * h + h * (2 * f + type_dim + 2 * b + 4) + b + f + n_types * type_dim


def matched_hidden(
    target_parameters: int, feature_dim: int, n_types: int, bottleneck: int, type_dim: int = TYPE_DIM
) -> int:
    """The hidden width h >= 1 whose autoencoder has the parameter count closest to `target_parameters` (the
    pretrained backbone's `count_parameters`)."""
    if target_parameters < 1 or feature_dim < 1 or n_types < 1 or bottleneck < 1:
        raise ConfigError(
            f"matched_hidden needs positive sizes, got target_parameters={target_parameters}, "
            f"feature_dim={feature_dim}, n_types={n_types}, bottleneck={bottleneck}"
        )
    linear = 2 * feature_dim + type_dim + 2 * bottleneck + 4
    constant = bottleneck + feature_dim + n_types * type_dim
    root = (-linear + math.sqrt(linear**2 + 8 * max(target_parameters - constant, 0))) / 4
    candidates = {max(1, math.floor(root)), max(1, math.ceil(root))}
    count = lambda h: parameter_count(feature_dim, n_types, h, bottleneck, type_dim)  # noqa: E731
    return min(sorted(candidates), key=lambda h: abs(count(h) - target_parameters))


class ObjectAutoencoder(nn.Module):
    """Per object: (features [M, F], type ids [M]) -> reconstructed features [M, F]; `columns` [n_types, F] (a buffer,
    saved with the weights) marks the feature columns each type is graded on."""

    def __init__(self, feature_dim: int, n_types: int, hidden: int, bottleneck: int, type_dim: int = TYPE_DIM):
        super().__init__()
        self.feature_dim, self.n_types = feature_dim, n_types
        self.type_embed = nn.Embedding(n_types, type_dim)
        self.encoder = nn.Sequential(
            nn.Linear(feature_dim + type_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, bottleneck),
        )
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, feature_dim),
        )
        self.register_buffer("columns", torch.ones(n_types, feature_dim, dtype=torch.bool))

    def forward(self, features: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(torch.cat([features, self.type_embed(types)], dim=-1)))

    def object_errors(self, features: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        """Per object [M]: the mean squared error over the columns of its type."""
        graded = self.columns[types].to(features.dtype)
        squared = (self(features, types) - features) ** 2 * graded
        return squared.sum(-1) / graded.sum(-1)


def objects_of(rows: dict, n_types: int | None = None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(features [M, F] float32, type ids [M] int64, row index [M]) of every object position of `rows`, row by row."""
    if "features" not in rows:
        raise InputFileError("rows without 'features': read the *.features.parquet files with read_split")
    features = np.asarray(rows["features"], dtype=np.float32)
    objects = object_positions(rows)
    if features.shape[:2] != objects.shape:
        raise InputFileError(f"features {features.shape} do not match mask {objects.shape}: expected [N, L, F]")
    row, position = np.nonzero(objects)
    types = np.asarray(rows["type_ids"])[row, position].astype(np.int64)
    if n_types is not None and types.size and types.max() >= n_types:
        raise InputFileError(f"type id {int(types.max())} is not below the autoencoder's n_types={n_types}")
    return torch.from_numpy(features[row, position]), torch.from_numpy(types), row


def graded_columns(features: torch.Tensor, types: torch.Tensor, n_types: int) -> torch.Tensor:
    """[n_types, F] bool: the columns not identically zero for each type's training objects (all columns for a type
    without any, which then has nothing to exclude)."""
    nonzero = torch.zeros(n_types, features.shape[1]).index_add_(0, types, (features != 0).float())
    seen = nonzero > 0
    seen[~seen.any(1)] = True
    return seen


def _mean_error(model: ObjectAutoencoder, features: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
    """Per-object errors of many objects in slices (eval mode, no gradient)."""
    model.eval()
    with torch.no_grad():
        parts = [
            model.object_errors(features[s : s + EVAL_OBJECTS], types[s : s + EVAL_OBJECTS])
            for s in range(0, len(features), EVAL_OBJECTS)
        ]
    return torch.cat(parts) if parts else torch.zeros(0)


def train_autoencoder(
    train_rows: dict,
    val_rows: dict,
    *,
    hidden: int,
    bottleneck: int,
    seed: int = 0,
    max_epochs: int = 50,
    patience: int = 5,
    min_delta: float = 0.0,
    lr: float = 1e-3,
    batch_size: int = 512,
    type_dim: int = TYPE_DIM,
    n_types: int | None = None,
    epoch_objects: int | None = None,
    val_objects: int | None = None,
) -> tuple[ObjectAutoencoder, dict]:
    """Train on the objects of `train_rows`, stop early on the validation loss of `val_rows`' objects, restore the
    best epoch. `n_types` None: one more than the largest type id of either split (pass the backbone's n_types so
    every type of the held-out samples has an embedding). `batch_size` counts objects; `epoch_objects` (None: all)
    the training objects one epoch draws afresh, so an epoch costs the same whatever the sample size;
    `val_objects` (None: all) the validation objects every epoch grades, a fixed subset (the same objects every
    epoch, so epochs compare with each other: early stopping needs their differences, not a precise mean).
    Returns (model in eval mode, info: epochs_run, best_epoch (0-based), best_val_loss, val_losses, converged
    (early stopping fired: the best epoch is not among the last `patience`), train_seconds, parameters, hidden,
    bottleneck)."""
    if hidden < 1 or bottleneck < 1 or max_epochs < 1 or batch_size < 1 or not lr > 0:
        raise ConfigError(
            f"train_autoencoder needs hidden, bottleneck, max_epochs, batch_size >= 1 and lr > 0, got hidden={hidden}, "
            f"bottleneck={bottleneck}, max_epochs={max_epochs}, batch_size={batch_size}, lr={lr}"
        )
    x_train, t_train, _ = objects_of(train_rows)
    x_val, t_val, _ = objects_of(val_rows)
    if not len(x_train) or not len(x_val):
        raise InputFileError(f"no objects to train on: {len(x_train)} training and {len(x_val)} validation objects")
    if n_types is None:
        n_types = int(max(t_train.max(), t_val.max())) + 1
    elif max(t_train.max(), t_val.max()) >= n_types:
        raise InputFileError(f"type id {int(max(t_train.max(), t_val.max()))} is not below n_types={n_types}")
    if val_objects is not None and len(x_val) > val_objects:  # a fixed subset, the same every epoch
        keep = torch.randperm(len(x_val), generator=torch.Generator().manual_seed(seed + 1))[:val_objects]
        x_val, t_val = x_val[keep.sort().values], t_val[keep.sort().values]
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):  # seeded initialisation without moving the caller's global stream
        torch.manual_seed(seed)
        model = ObjectAutoencoder(x_train.shape[1], n_types, hidden, bottleneck, type_dim)
    model.columns.copy_(graded_columns(x_train, t_train, n_types))
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    best_state, best = None, math.inf
    for _ in range(max_epochs):
        model.train()
        for idx in torch.randperm(len(x_train), generator=order)[:epoch_objects].split(batch_size):
            loss = model.object_errors(x_train[idx], t_train[idx]).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        losses.append(float(_mean_error(model, x_val, t_val).mean()))
        if losses[-1] < best:
            best, best_state = losses[-1], copy.deepcopy(model.state_dict())
        if training_health.stalled(losses, patience, min_delta):
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    health = training_health.health(losses, patience, min_delta=min_delta)
    return model, {
        "epochs_run": health["epochs_run"],
        "best_epoch": health["best_epoch"],
        "best_val_loss": health["best_val_loss"],
        "val_losses": losses,
        "converged": health["converged"],
        "train_seconds": time.perf_counter() - started,
        "parameters": count_parameters(model),
        "hidden": hidden,
        "bottleneck": bottleneck,
    }


def autoencoder_scores(model: ObjectAutoencoder, rows: dict) -> np.ndarray:
    """Per row, float64 [N]: the mean over its objects of the per-object mean squared error (0 without objects)."""
    features, types, row = objects_of(rows, model.n_types)
    if features.shape[1] != model.feature_dim:
        raise InputFileError(
            f"rows have {features.shape[1]} features per position, the autoencoder was trained on {model.feature_dim}"
        )
    errors = _mean_error(model, features, types).double().numpy()
    n = len(rows["mask"])
    count = np.bincount(row, minlength=n)
    return np.divide(np.bincount(row, weights=errors, minlength=n), count, out=np.zeros(n), where=count > 0)
