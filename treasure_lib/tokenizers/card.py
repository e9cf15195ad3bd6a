"""Tokenizers with one interface, and the self-describing tokenizer card they are saved as.

Every tokenizer has `encode(features, mask) -> indices [n, max_n, Q]` (int64, -1 where
masked) and `decode(indices) -> features [n, max_n, F]` in physical units, plus
`num_quantizers`, `codebook_size` and `codebooks()` [Q, K, D].

A card is a folder: `card.json` (kind, collection, config, scaler state, vocabulary,
training-data checksums, metrics) and `weights.pt` (a plain state dict of tensors, loaded
with `weights_only=True`). No pickled objects anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputFileError, TreasureError
from ..hashing import file_sha256, json_sha256
from ..preprocessing import CollectionScaler
from .search import residual_indices

CARD_FORMAT = "treasure-tokenizer-card"
CARD_VERSION = 2  # 2: sample-initialised codebooks, scale-aware dead codes, metrics of the saved weights


class Tokenizer:
    """Shared behaviour: feature checks and the card description."""

    kind = "base"

    def __init__(self, collection: Mapping, scaler: CollectionScaler | None):
        self.collection = dict(collection)  # name, features, type_id, max_objects
        self.scaler = scaler

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.collection["features"])

    def check_features(self, names, where: str = "") -> list[int]:
        """Column positions of this tokenizer's features in `names`; error naming any missing one."""
        names = list(names)
        missing = [f for f in self.features if f not in names]
        if missing:
            raise InputFileError(
                f"{where + ': ' if where else ''}tokenizer for collection '{self.collection['name']}' "
                f"needs feature(s) {missing}, which the input does not have (it has: {', '.join(names)})"
            )
        return [names.index(f) for f in self.features]

    def scaler_width(self) -> int:
        """Width of `scaled_inputs`: continuous features plus one-hot categories."""
        return len(self.scaler.continuous) + sum(self.scaler.n_categories)

    def scaled_inputs(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Scaled continuous features then one-hot categories, float32 [n, m, scaler_width]; zeros where masked."""
        cont, cat = self.scaler.transform(features, mask)
        onehots = [np.eye(n, dtype=np.float32)[cat[..., j]] for j, n in enumerate(self.scaler.n_categories)]
        out = np.concatenate([cont] + onehots, axis=-1).astype(np.float32)
        out[~mask] = 0.0
        return out

    def vocabulary(self) -> dict:
        return {
            "num_quantizers": self.num_quantizers,
            "codebook_size": self.codebook_size,
            "levels": [{"level": q, "size": self.codebook_size} for q in range(self.num_quantizers)],
        }

    def state(self) -> dict:
        raise NotImplementedError

    def tensors(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class VQVAETokenizer(Tokenizer):
    """A trained object VQ-VAE with its scaler."""

    kind = "vqvae"

    def __init__(self, collection, scaler, model, backend: str = "auto"):
        super().__init__(collection, scaler)
        self.model = model.eval()
        self.backend = backend

    @property
    def num_quantizers(self) -> int:
        return self.model.cfg.num_quantizers

    @property
    def codebook_size(self) -> int:
        return self.model.cfg.effective_codebook_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _backend(self) -> str:
        if self.backend != "auto":
            return self.backend
        return "faiss" if self.device.type == "cpu" and self.model.cfg.quantizer == "rvq" else "torch"

    def encode(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        cont, cat = self.scaler.transform(features, mask)
        dev = self.device
        idx = self.model.encode_indices(
            torch.from_numpy(cont).to(dev),
            torch.from_numpy(cat).to(dev),
            torch.from_numpy(np.ascontiguousarray(mask)).to(dev),
            backend=self._backend(),
        )
        return idx.cpu().numpy()

    def decode(self, indices: np.ndarray, levels: int | None = None) -> np.ndarray:
        mask = indices[..., 0] >= 0
        dev = self.device
        cont, cat = self.model.decode_indices(torch.from_numpy(indices).to(dev), torch.from_numpy(mask).to(dev), levels)
        out = self.scaler.inverse(cont.cpu().numpy(), cat.cpu().numpy())
        out[~mask] = 0.0
        return out

    def codebooks(self) -> np.ndarray:
        books = self.model.quantizer.codebooks  # [Q, K, D] (ResidualFSQ: the implicit grid, scaled per level)
        return books.detach().cpu().numpy().astype(np.float32)

    def state(self) -> dict:
        return {"config": self.model.cfg.to_dict(), "scaler": self.scaler.state()}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}


class KMeansTokenizer(Tokenizer):
    """Residual k-means on scaled features (continuous + one-hot categories): a training-free baseline."""

    kind = "kmeans"

    def __init__(self, collection, scaler, centroids: np.ndarray):
        super().__init__(collection, scaler)
        self.centroids = np.asarray(centroids, dtype=np.float32)  # [Q, K, D]

    @property
    def num_quantizers(self) -> int:
        return self.centroids.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.centroids.shape[1]

    def encode(self, features, mask) -> np.ndarray:
        x = self.scaled_inputs(features, mask)
        out = np.full(mask.shape + (self.num_quantizers,), -1, dtype=np.int64)
        idx = residual_indices(
            torch.from_numpy(x[mask]), [torch.from_numpy(c) for c in self.centroids], backend="faiss"
        )
        out[mask] = idx.numpy()
        return out

    def decode(self, indices, levels: int | None = None) -> np.ndarray:
        mask = indices[..., 0] >= 0
        levels = levels or self.num_quantizers
        x = sum(self.centroids[q][np.maximum(indices[..., q], 0)] for q in range(levels))
        nc = len(self.scaler.continuous)
        cont, start, cats = x[..., :nc], nc, []
        for n in self.scaler.n_categories:
            cats.append(x[..., start : start + n].argmax(-1))
            start += n
        cat = np.stack(cats, -1) if cats else np.zeros(mask.shape + (0,), np.int64)
        out = self.scaler.inverse(cont, cat)
        out[~mask] = 0.0
        return out

    def codebooks(self) -> np.ndarray:
        return self.centroids

    def state(self) -> dict:
        return {"scaler": self.scaler.state()}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"centroids": torch.from_numpy(self.centroids)}


class BinningTokenizer(Tokenizer):
    """Per-feature bins: level q is the bin of binned feature q (values outside the edges are clipped).

    Event scalars (mu, MET, ...) bin every feature. Object collections (`tokenizer.kind: binning`, the
    no-network baseline) may bin a subset (`binned`): a feature left out costs no bits and decodes to
    `fill`, its training median (continuous) or most frequent value (categorical)."""

    kind = "binning"

    def __init__(
        self,
        collection,
        edges: np.ndarray,
        centres: np.ndarray,
        scaler: CollectionScaler | None = None,
        binned: list[str] | None = None,
        fill: np.ndarray | None = None,
    ):
        super().__init__(collection, scaler)  # the scaler serves the raw-feature baseline, not the bins
        self.edges = np.asarray(edges, dtype=np.float64)  # [Q, K + 1]
        self.centres = np.asarray(centres, dtype=np.float64)  # [Q, K]
        self.binned = list(binned) if binned is not None else list(self.features)[: self.edges.shape[0]]
        self.columns = [self.features.index(f) for f in self.binned]  # feature column of each level
        if len(self.columns) != self.edges.shape[0]:
            raise ConfigError(
                f"binning card of '{self.collection['name']}': {len(self.columns)} binned features "
                f"but {self.edges.shape[0]} sets of edges"
            )
        self.fill = np.zeros(len(self.features)) if fill is None else np.asarray(fill, dtype=np.float64)

    @property
    def num_quantizers(self) -> int:
        return self.edges.shape[0]

    @property
    def codebook_size(self) -> int:
        return self.edges.shape[1] - 1

    @property
    def level_features(self) -> list[str]:
        """The feature each level bins (the vocabulary names its ranges by them)."""
        return list(self.binned)

    def encode(self, features, mask) -> np.ndarray:
        out = np.full(mask.shape + (self.num_quantizers,), -1, dtype=np.int64)
        for q, column in enumerate(self.columns):
            out[..., q] = np.searchsorted(self.edges[q, 1:-1], features[..., column], side="right")
        out[~mask] = -1
        return out

    def decode(self, indices, levels: int | None = None) -> np.ndarray:
        mask = indices[..., 0] >= 0
        out = np.broadcast_to(self.fill, mask.shape + (len(self.features),)).copy()
        for q, column in enumerate(self.columns):
            out[..., column] = self.centres[q][np.maximum(indices[..., q], 0)]
        out[~mask] = 0.0
        return out.astype(np.float32)

    def codebooks(self) -> np.ndarray:
        return self.centres[..., None].astype(np.float32)  # [Q, K, 1]

    def state(self) -> dict:
        out = {"scaler": self.scaler.state()} if self.scaler is not None else {}
        if self.binned != list(self.features):
            out["binned"] = list(self.binned)
        return out

    def tensors(self) -> dict[str, torch.Tensor]:
        return {
            "edges": torch.from_numpy(self.edges),
            "centres": torch.from_numpy(self.centres),
            "fill": torch.from_numpy(self.fill),
        }


# ---------------------------------------------------------------------------- cards


#: What a card's identity (`card_hash`) covers: what it computes with, never where or when it was trained (training
#: provenance, timings, the folder it was written to) nor the metrics measured on it.
IDENTITY_KEYS = ("format", "version", "kind", "collection", "config", "scaler", "binned", "vocabulary")
#: Output locations: a card records what it was trained from, not where the training wrote (a temporary folder).
LOCATION_KEYS = ("output_dir", "cards_dir")


def _without_locations(value):
    if isinstance(value, Mapping):
        return {k: _without_locations(v) for k, v in value.items() if k not in LOCATION_KEYS}
    if isinstance(value, list):
        return [_without_locations(v) for v in value]
    return value


def save(
    tokenizer: Tokenizer, path: str | Path, *, metrics: Mapping | None = None, training: Mapping | None = None
) -> Path:
    """Write a card folder atomically (a temporary folder renamed into place)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        torch.save(tokenizer.tensors(), tmp / "weights.pt")
        card = {
            "format": CARD_FORMAT,
            "version": CARD_VERSION,
            "kind": tokenizer.kind,
            "collection": tokenizer.collection,
            **tokenizer.state(),
            "vocabulary": tokenizer.vocabulary(),
            "training": _without_locations(dict(training or {})),
            "metrics": dict(metrics or {}),
            "weights": "weights.pt",
            "weights_sha256": file_sha256(tmp / "weights.pt"),
        }
        (tmp / "card.json").write_text(json.dumps(card, indent=2, default=float))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def read_card(path: str | Path) -> dict:
    """The checked `card.json` of a card folder, its weights file present and matching its checksum; every problem
    is one InputFileError naming the file."""
    path = Path(path)
    card_file = path / "card.json"
    if not card_file.is_file():
        raise InputFileError(f"{path}: not a tokenizer card (no card.json)")
    try:
        card = json.loads(card_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputFileError(
            f"{card_file}: not valid JSON ({exc}); the card is truncated or corrupt: retrain it "
            f"with `treasure train-tokenizer`"
        ) from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        found = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise InputFileError(f"{card_file}: not a {CARD_FORMAT} (format={found!r})")
    if card.get("version", 0) > CARD_VERSION:
        raise InputFileError(f"{card_file}: card version {card['version']} is newer than this library ({CARD_VERSION})")
    if card.get("version", 0) < CARD_VERSION:
        raise InputFileError(
            f"{card_file}: card version {card.get('version')} was written by an older TREASURE "
            f"(first-batch k-means, fixed dead-code threshold, last-epoch metrics); retrain it with "
            f"`treasure train-tokenizer`"
        )
    missing = [k for k in ("kind", "collection", "vocabulary", "weights", "weights_sha256") if k not in card]
    if missing:
        raise InputFileError(f"{card_file}: card without {missing}; the card is corrupt: retrain it")
    weights_file = path / card["weights"]
    if not weights_file.is_file():
        raise InputFileError(
            f"{weights_file}: missing (the card names it as its weights); the card is incomplete: "
            f"retrain it with `treasure train-tokenizer`"
        )
    if file_sha256(weights_file) != card["weights_sha256"]:
        raise InputFileError(f"{weights_file}: checksum differs from the card's; the card is corrupt or was edited")
    return card


def card_hash(path: str | Path) -> str:
    """A short identity of a card, recorded in token files: its weights (their sha256, checked against the file),
    config, scaler and vocabulary (`IDENTITY_KEYS`); the same weights trained again at another time or into another
    folder have the same hash."""
    card = read_card(path)
    identity = {k: card.get(k) for k in IDENTITY_KEYS}
    identity["weights_sha256"] = card["weights_sha256"]
    return json_sha256(identity)[:16]


def load(path: str | Path, device: str = "cpu", backend: str = "auto") -> Tokenizer:
    """Open a card (safe loading only: tensors, never pickled objects); a corrupt card is one clear error."""
    path = Path(path)
    card = read_card(path)
    card_file = path / "card.json"
    weights_file = path / card["weights"]
    tensors = torch.load(weights_file, map_location=device, weights_only=True)
    try:
        tok = _tokenizer(card, card_file, tensors, device, backend)
    except TreasureError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # a card.json edited by hand, or half written
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(
            f"{card_file}: does not describe its weights ({type(exc).__name__}: {text}); retrain the card"
        ) from None
    tok.card = card
    tok.card_path = path
    return tok


def _tokenizer(card: Mapping, card_file: Path, tensors: Mapping, device: str, backend: str) -> Tokenizer:
    kind = card["kind"]
    if kind == "vqvae":
        from .vqvae import ObjectVQVAE, VQVAEConfig

        cfg = dict(card["config"])
        cfg["n_categories"] = tuple(cfg["n_categories"])
        cfg["fsq_levels"] = tuple(cfg["fsq_levels"])
        model = ObjectVQVAE(VQVAEConfig(**cfg)).to(device)
        model.load_state_dict(tensors)
        tok: Tokenizer = VQVAETokenizer(card["collection"], CollectionScaler.from_state(card["scaler"]), model, backend)
    elif kind == "kmeans":
        tok = KMeansTokenizer(
            card["collection"], CollectionScaler.from_state(card["scaler"]), tensors["centroids"].numpy()
        )
    elif kind == "binning":
        scaler = CollectionScaler.from_state(card["scaler"]) if "scaler" in card else None
        fill = tensors["fill"].numpy() if "fill" in tensors else None
        tok = BinningTokenizer(
            card["collection"], tensors["edges"].numpy(), tensors["centres"].numpy(), scaler, card.get("binned"), fill
        )
    else:
        raise ConfigError(f"{card_file}: unknown tokenizer kind {kind!r}")
    return tok
