"""`treasure train-tokenizer`: fit scalers, train one tokenizer per collection, write cards.

Modes for event studies: `object` (one tokenizer per object collection), `combined` (one
tokenizer across all object collections on their shared features plus the object type),
`separate` (one per collection, like `object`, with exports kept per collection). Scalar
collections (MET, event info) are binned.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..checksum import sha256_file
from ..collections import Collection, from_params
from ..errors import ConfigError
from ..io.batch import Batch, ObjectArrays
from ..io.h5 import H5Stream
from ..preprocessing import CollectionScaler, reservoir_sample
from .card import BinningTokenizer, KMeansTokenizer, VQVAETokenizer, save
from .data import CollectionSets
from .search import residual_indices

log = logging.getLogger(__name__)
COMBINED = "objects"


# ----------------------------------------------------------------------------- combined mode


def combined_collection(collections: Mapping[str, Collection]) -> Collection:
    """The shared feature set of all object collections, plus a categorical `type` (the type id)."""
    objs = [c for c in collections.values() if not c.is_scalar]
    if not objs:
        raise ConfigError("combined tokenizer mode needs object collections; the set has only scalars")
    shared = [f for f in objs[0].features if all(f in c.features for c in objs)]
    if not shared:
        raise ConfigError(f"collections {[c.name for c in objs]} share no feature; combined mode needs at least one")
    log_f = tuple(f for f in shared if any(f in c.log_features for c in objs))
    cat_f = tuple(f for f in shared if any(f in c.categorical for c in objs)) + ("type",)
    return Collection(name=COMBINED, layout="per_feature", path="", features=tuple(shared) + ("type",), type_id=1,
                      log_features=log_f, categorical=cat_f, max_objects=sum(c.max_objects for c in objs), order_by=None)


def to_combined(batch: Batch, collections: Mapping[str, Collection]) -> ObjectArrays:
    """All object collections of a batch as one set on the shared features, with the type id as a feature."""
    combined = combined_collection(collections)
    shared = combined.features[:-1]
    feats, masks = [], []
    for c in collections.values():
        if c.is_scalar:
            continue
        oa = batch[c.name]
        cols = [oa.feature(f) for f in shared] + [np.full(oa.mask.shape, c.type_id, np.float32)]
        feats.append(np.stack(cols, axis=-1))
        masks.append(oa.mask)
    return ObjectArrays(np.concatenate(feats, axis=1), np.concatenate(masks, axis=1), combined.features)


# ----------------------------------------------------------------------------- helpers


def tokenizer_dir(params: Mapping) -> Path:
    out = params["tokenizer"]["output_dir"]
    return Path(out) if out else Path("runs") / params["study"]["kind"] / params["study"]["name"] / "artifacts" / "tokenizers"


def _collection_info(c: Collection) -> dict:
    return {"name": c.name, "features": list(c.features), "type_id": c.type_id, "max_objects": c.max_objects,
            "categorical": list(c.categorical), "log_features": list(c.log_features)}


def _sample(params, c: Collection, batches_fn, to_collection, seed: int):
    """A bounded reservoir sample of collection `c` (for combined mode: of the combined set)."""
    def batches():
        for b in batches_fn():
            yield b if to_collection is None else Batch({c.name: to_collection(b)}, b.labels, b.weights, b.event_index,
                                                        b.source_file)

    return reservoir_sample(batches(), c.name, params["tokenizer"]["scaler_sample_objects"], seed)


# ----------------------------------------------------------------------------- per kind


def vqvae_config(params: Mapping, scaler: CollectionScaler) -> dict:
    from .networks import NetworkConfig

    t = params["tokenizer"]
    explicit = {"width": t["width"], "depth": t["depth"], "heads": t["heads"]}
    enc = NetworkConfig.build(t["encoder"], t["size"], **explicit)
    dec = NetworkConfig.build(t["decoder"] or t["encoder"], t["size"], **explicit)
    return {"n_continuous": len(scaler.continuous), "n_categories": tuple(scaler.n_categories),
            "encoder": enc.__dict__, "decoder": dec.__dict__, "latent_dim": t["latent_dim"],
            "category_embed_dim": t["category_embed_dim"], "quantizer": t["quantizer"], "codebook_size": t["codebook_size"],
            "codebook_dim": t["codebook_dim"], "num_quantizers": t["num_quantizers"], "decay": t["decay"],
            "kmeans_init": t["kmeans_init"], "kmeans_iters": t["kmeans_iters"],
            "threshold_ema_dead_code": t["threshold_ema_dead_code"], "rotation_trick": t["rotation_trick"],
            "use_cosine_sim": t["use_cosine_sim"], "commitment_weight": t["commitment_weight"],
            "fsq_levels": tuple(t["fsq_levels"])}


def train_vqvae(params: Mapping, c: Collection, scaler: CollectionScaler, batches_fn, to_collection, out_dir: Path):
    """Lightning training with early stopping and best/last checkpoints; returns the tokenizer and metrics."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from .lightning_module import VQVAEModule

    t, tr = params["tokenizer"], params["tokenizer"]["train"]
    seed = params["study"]["seed"]
    L.seed_everything(seed, workers=True, verbose=False)
    module = VQVAEModule(vqvae_config(params, scaler), lr=tr["lr"], weight_decay=tr["weight_decay"], loss=t["loss"],
                         categorical_weight=t["categorical_weight"])
    common = dict(batches=batches_fn, collection=c.name, scaler=scaler, batch_size=tr["batch_size"],
                  val_fraction=tr["val_fraction"], seed=seed, to_collection=to_collection)
    train_data = CollectionSets(split="train", max_batches=tr["limit_train_batches"], **common)
    val_data = CollectionSets(split="val", **common)
    loader = lambda ds: torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)  # noqa: E731
    gpu = torch.cuda.is_available() and tr["accelerator"] in ("auto", "gpu", "cuda")
    precision = tr["precision"] or ("bf16-mixed" if gpu else "32-true")
    ckpt = ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="best", monitor="val/loss", mode="min", save_last=True)
    trainer = L.Trainer(max_epochs=tr["max_epochs"], max_steps=tr["max_steps"] or -1, accelerator="gpu" if gpu else "cpu",
                        devices=1, precision=precision, deterministic=not gpu, default_root_dir=str(out_dir),
                        callbacks=[EarlyStopping(monitor="val/loss", mode="min", patience=tr["patience"]), ckpt],
                        logger=[CSVLogger(str(out_dir), name="logs")] + _tensorboard(out_dir),
                        enable_progress_bar=tr["progress_bar"], enable_model_summary=False,
                        num_sanity_val_steps=0,
                        log_every_n_steps=10)
    trainer.fit(module, loader(train_data), loader(val_data))
    if ckpt.best_model_path:
        state = torch.load(ckpt.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    metrics["epochs"] = int(trainer.current_epoch)
    metrics["best_val_loss"] = float(ckpt.best_model_score) if ckpt.best_model_score is not None else metrics.get("val/loss")
    module.model.cpu().eval()
    return VQVAETokenizer(_collection_info(c), scaler, module.model), metrics


def _tensorboard(out_dir: Path) -> list:
    """Offline TensorBoard event files (written by tensorboardX, a dependency; `tensorboard` also works)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    return [TensorBoardLogger(str(out_dir), name="tensorboard")]


def train_kmeans(params: Mapping, c: Collection, scaler: CollectionScaler, batches_fn, to_collection, seed: int):
    """Residual minibatch k-means on a bounded sample of scaled objects."""
    from sklearn.cluster import MiniBatchKMeans

    t = params["tokenizer"]
    feats, mask = _sample(params, c, batches_fn, to_collection, seed + 1)
    tok = KMeansTokenizer(_collection_info(c), scaler, np.zeros((0, t["codebook_size"], 1), np.float32))
    x = tok.embed(feats, mask)[mask].astype(np.float32)
    if len(x) < t["codebook_size"]:
        raise ConfigError(f"collection '{c.name}': {len(x)} objects are too few for k-means with codebook_size "
                          f"{t['codebook_size']}")
    residual, centroids = x, []
    for q in range(t["num_quantizers"]):
        km = MiniBatchKMeans(n_clusters=t["codebook_size"], random_state=seed + q, batch_size=4096, n_init=3,
                             max_iter=100).fit(residual)
        cb = km.cluster_centers_.astype(np.float32)
        centroids.append(cb)
        idx = residual_indices(torch.from_numpy(residual), [torch.from_numpy(cb)]).numpy()[:, 0]
        residual = residual - cb[idx]
    tok.centroids = np.stack(centroids)
    idx = residual_indices(torch.from_numpy(x), [torch.from_numpy(cb) for cb in tok.centroids]).numpy()
    approx = np.cumsum([tok.centroids[q][idx[:, q]] for q in range(tok.num_quantizers)], axis=0)
    return tok, {f"train/rec_level_{q + 1}": float(np.abs(x - approx[q]).mean()) for q in range(tok.num_quantizers)}


def train_binning(params: Mapping, c: Collection, batches_fn, seed: int):
    """Per-feature bins (uniform or quantile), fitted on a bounded sample; values outside are clipped."""
    b = params["tokenizer"]["binning"]
    feats, mask = reservoir_sample(batches_fn(), c.name, params["tokenizer"]["scaler_sample_objects"], seed + 2)
    valid = feats[mask]
    n = b["bins"]
    edges, centres = [], []
    for f in range(len(c.features)):
        v = valid[:, f].astype(np.float64)
        if b["method"] == "quantile":
            e = np.quantile(v, np.linspace(0, 1, n + 1))
            e = np.maximum.accumulate(e + np.arange(n + 1) * 1e-9 * max(1.0, np.abs(e).max()))  # strictly increasing
        else:
            e = np.linspace(v.min(), v.max(), n + 1)
        idx = np.clip(np.searchsorted(e[1:-1], v, side="right"), 0, n - 1)
        sums = np.bincount(idx, weights=v, minlength=n)
        counts = np.bincount(idx, minlength=n)
        mid = 0.5 * (e[1:] + e[:-1])
        centres.append(np.where(counts > 0, sums / np.maximum(counts, 1), mid))
        edges.append(e)
    tok = BinningTokenizer(_collection_info(c), np.stack(edges), np.stack(centres))
    rec = np.abs(tok.decode(tok.encode(feats, mask))[mask] - valid).mean(0)
    return tok, {f"train/abs_error_{f}": float(r) for f, r in zip(c.features, rec)}


# ----------------------------------------------------------------------------- entry point


def train_tokenizers(params: Mapping) -> dict[str, Path]:
    """Train every configured tokenizer and write its card; returns {collection: card path}."""
    t = params["tokenizer"]
    collections = from_params(params)
    names = t["collections"] or list(collections)
    unknown = [n for n in names if n not in collections]
    if unknown:
        raise ConfigError(f"tokenizer.collections names {unknown}, not in data.collection_set "
                          f"'{params['data']['collection_set']}' ({', '.join(collections)})")
    chosen = {n: collections[n] for n in names}
    stream = H5Stream.from_params(params, collections)
    batches_fn = lambda: iter(stream)  # noqa: E731  (a fresh pass over the files each call)
    checksums = {str(f): sha256_file(f) for f in stream.files}  # provenance recorded in each card
    out_root = tokenizer_dir(params)
    seed = params["study"]["seed"]
    torch.manual_seed(seed)
    targets: list[tuple[Collection, object]] = []
    objects = {n: c for n, c in chosen.items() if not c.is_scalar}
    if t["mode"] == "combined" and objects:
        targets.append((combined_collection(objects), lambda b: to_combined(b, objects)))
    else:
        targets += [(c, None) for c in objects.values()]
    targets += [(c, None) for c in chosen.values() if c.is_scalar]
    cards = {}
    for c, to_coll in targets:
        out_dir = out_root / c.name
        training = {"data_checksums": checksums, "seed": seed, "mode": t["mode"], "params": {"tokenizer": dict(t)}}
        if c.is_scalar:
            tok, metrics = train_binning(params, c, batches_fn, seed)
        else:
            feats, mask = _sample(params, c, batches_fn, to_coll, seed)
            scaler = CollectionScaler.for_collection(c, t["scalers"].get(c.name, {})).fit(feats, mask)
            if t["kind"] == "kmeans":
                tok, metrics = train_kmeans(params, c, scaler, batches_fn, to_coll, seed)
            elif t["kind"] == "vqvae":
                tok, metrics = train_vqvae(params, c, scaler, batches_fn, to_coll, out_dir)
            else:
                raise ConfigError(f"tokenizer.kind must be vqvae or kmeans, got {t['kind']!r}")
        if c.name == COMBINED:
            tok.collection["members"] = list(objects)  # which collections the combined set is made of, in order
        cards[c.name] = save(tok, out_dir / "card", metrics=metrics, training=training)
        log.info("collection %s: card %s, metrics %s", c.name, cards[c.name], json.dumps(metrics))
    return cards
