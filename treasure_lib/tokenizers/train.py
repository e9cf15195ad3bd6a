"""`treasure train-tokenizer`: fit scalers, train one tokenizer per collection, write cards.

Modes for event studies: `object` (one tokenizer per object collection), `combined` (one
tokenizer across all object collections on their shared features plus the object type),
`separate` (one per collection, like `object`, with exports kept per collection). Scalar
collections (MET, event info, the jet of a jet-level file) are binned.

Everything is fitted on train-split rows only, mixed across files; a card's metrics are a fresh
validation of the weights it holds, on val-split rows, in physical units (`reconstruction`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from .. import config, splits, training_health
from ..config import DataParams, Section, StudyParams, TokenizerParams, section_from
from ..config.schema import TOKENIZER
from ..diagnostics.reconstruction import levels_report
from ..distributed import is_main
from ..errors import ConfigError
from ..hashing import file_sha256
from ..io.batch import Batch, ObjectArrays, join_padded
from ..io.reader import H5Stream
from ..metrics.reconstruction import level_metric_items
from ..object_collections import Collection, from_data, load_collections
from ..preprocessing import CollectionScaler, reservoir_sample
from ..trainer import history_of, make_trainer
from .card import BinningTokenizer, KMeansTokenizer, Tokenizer, VQVAETokenizer, save
from .search import residual_indices

log = logging.getLogger(__name__)
COMBINED = "objects"
HELD_OUT_OBJECTS = 50_000  # val objects the card's physical-unit reconstruction is measured on


# ----------------------------------------------------------------------------- combined mode


def combined_collection(collections: Mapping[str, Collection]) -> Collection:
    """The shared feature set of all object collections, plus a categorical `type` (each object's own type id).

    The combined tokenizer owns no type id of its own (0): its objects keep their collections' ids.
    """
    objs = [c for c in collections.values() if not c.is_scalar]
    if not objs:
        raise ConfigError("combined tokenizer mode needs object collections; the set has only scalars")
    shared = [f for f in objs[0].features if all(f in c.features for c in objs)]
    if not shared:
        raise ConfigError(f"collections {[c.name for c in objs]} share no feature; combined mode needs at least one")
    log_f = tuple(f for f in shared if any(f in c.log_features for c in objs))
    cat_f = tuple(f for f in shared if any(f in c.categorical for c in objs)) + ("type",)
    scalers = tuple((f, k) for f, k in objs[0].scalers if f in shared and all((f, k) in c.scalers for c in objs))
    return Collection(
        name=COMBINED,
        layout="per_feature",
        path="",
        features=tuple(shared) + ("type",),
        type_id=0,
        log_features=log_f,
        categorical=cat_f,
        max_objects=sum(c.max_objects for c in objs),
        order_by=None,
        scalers=scalers,
    )


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


def tokenizer_dir(study: StudyParams, tokenizer: TokenizerParams) -> Path:
    out = tokenizer.output_dir
    return Path(out) if out else Path("runs") / study.kind / study.name / "artifacts" / "tokenizers"


def collection_params(tokenizer: TokenizerParams | Mapping, name: str) -> TokenizerParams:
    """The `tokenizer` section with `tokenizer.per_collection.<name>` merged in and validated: what that
    collection's tokenizer trains with (a plain mapping of the section's keys works too)."""
    t = tokenizer if isinstance(tokenizer, Section) else section_from("tokenizer", tokenizer)
    override = (t.per_collection or {}).get(name) or {}
    if not override:
        return t
    config.check_keys(override, TOKENIZER, origin=f"tokenizer.per_collection.{name}", prefix="tokenizer.")
    return t.replace(**override)


def expected_cards(data: DataParams, tokenizer: TokenizerParams) -> list[str]:
    """The card names the params ask for, in collection order: what train-tokenizer writes and export reads."""
    t = tokenizer
    collections = from_data(data)
    names = t["collections"] or list(collections)
    unknown = [n for n in names if n not in collections]
    if unknown:
        raise ConfigError(
            f"tokenizer.collections names {unknown}, not in data.collection_set "
            f"'{data.collection_set}' ({', '.join(collections)})"
        )
    objects = [n for n in names if not collections[n].is_scalar]
    scalars = [n for n in names if collections[n].is_scalar]
    return ([COMBINED] if t["mode"] == "combined" and objects else objects) + scalars


def _collection_info(c: Collection) -> dict:
    return {
        "name": c.name,
        "features": list(c.features),
        "type_id": c.type_id,
        "max_objects": c.max_objects,
        "categorical": list(c.categorical),
        "log_features": list(c.log_features),
    }


def _view(stream_fn: Callable[[], H5Stream], name: str, to_collection):
    """A fresh pass over a stream as Batches holding just the collection trained on."""
    for b in stream_fn():
        oa = to_collection(b) if to_collection else b[name]
        yield Batch({name: oa}, b.labels, b.weights, b.event_index, b.source_file, b.metadata, split=b.split)


def held_out(stream_fn, c: Collection, to_collection, max_objects: int = HELD_OUT_OBJECTS):
    """Val-split rows with at least one object, in file order, until `max_objects` objects (deterministic)."""
    parts, n = [], 0
    for b in _view(stream_fn, c.name, to_collection):
        oa = b[c.name]
        rows = np.flatnonzero(oa.mask.any(axis=1))
        parts.append((oa.features[rows], oa.mask[rows]))
        n += int(oa.mask[rows].sum())
        if n >= max_objects:
            break
    if not parts or n == 0:
        raise ConfigError(
            f"collection '{c.name}': no objects in the validation split to measure the tokenizer on "
            f"(data.split.val is {n} objects); generate more data or raise data.split.val"
        )
    return join_padded(parts)


# ----------------------------------------------------------------------------- per kind


def vqvae_config(t: Mapping, scaler: CollectionScaler) -> dict:
    from .networks import NetworkConfig

    explicit = {"width": t["width"], "depth": t["depth"], "heads": t["heads"]}
    enc = NetworkConfig.build(t["encoder"], t["size"], **explicit)
    dec = NetworkConfig.build(t["decoder"] or t["encoder"], t["size"], **explicit)
    return {
        "n_continuous": len(scaler.continuous),
        "n_categories": tuple(scaler.n_categories),
        "encoder": enc.__dict__,
        "decoder": dec.__dict__,
        "latent_dim": t["latent_dim"],
        "category_embed_dim": t["category_embed_dim"],
        "quantizer": t["quantizer"],
        "codebook_size": t["codebook_size"],
        "codebook_dim": t["codebook_dim"],
        "num_quantizers": t["num_quantizers"],
        "decay": t["decay"],
        "kmeans_init": t["kmeans_init"],
        "kmeans_iters": t["kmeans_iters"],
        "dead_code_fraction": t["dead_code_fraction"],
        "rotation_trick": t["rotation_trick"],
        "use_cosine_sim": t["use_cosine_sim"],
        "commitment_weight": t["commitment_weight"],
        "fsq_levels": tuple(t["fsq_levels"]),
    }


def _sets(
    data: DataParams, seed: int, t, c, scaler, stream_fn, to_collection, shuffle: bool, max_batches=None, whole=False
):
    """Training or validation batches of one collection (`whole`: every batch in this process, whatever DDP says)."""
    from .training_data import CollectionSets

    return CollectionSets(
        stream_fn(),
        c.name,
        scaler,
        t["train"]["batch_objects"],
        shuffle=shuffle,
        seed=seed,
        buffer_rows=data.sample_buffer_rows,
        block_rows=data.block_rows,
        to_collection=to_collection,
        max_batches=max_batches,
        cache_rows=t["train"]["cache_rows"],
        **({"rank": 0, "world_size": 1} if whole else {}),
    )


def _loader(ds):
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=0)


def validate_vqvae(
    tok: VQVAETokenizer,
    data: DataParams,
    tokenizer: TokenizerParams,
    seed: int,
    c: Collection,
    val_stream_fn,
    to_collection,
) -> dict:
    """The Lightning validation of a tokenizer's current weights on the val split (deterministic)."""
    from .lightning_module import VQVAEModule

    t = collection_params(tokenizer, c.name)
    module = VQVAEModule(tok.model.cfg.to_dict(), loss=t["loss"], categorical_weight=t["categorical_weight"])
    module.model.load_state_dict(tok.model.state_dict())
    results = make_trainer(t["train"], None, logs=False, single_device=True, log_every_n_steps=1).validate(
        module,
        _loader(_sets(data, seed, t, c, tok.scaler, val_stream_fn, to_collection, shuffle=False, whole=True)),
        verbose=False,
    )
    return {k: float(v) for k, v in results[0].items()}


def revalidate(card_path: str | Path, data: DataParams, tokenizer: TokenizerParams, seed: int) -> dict:
    """A fresh validation of a saved card on the val split: what its `metrics` must equal (`seed`: the study's)."""
    from .card import load

    tok = load(card_path)
    name = Path(card_path).parent.name
    collections = from_data(data)
    objects = {n: collections[n] for n in tok.collection.get("members", [])}
    c = (
        combined_collection(objects)
        if name == COMBINED
        else load_collections(data.objects_file, data.collection_set)[name]
    )
    to_coll = (lambda b: to_combined(b, objects)) if name == COMBINED else None
    reads = objects if name == COMBINED else {name: collections[name]}
    val = lambda: H5Stream.from_data(data, reads, select_split=splits.VAL)  # noqa: E731
    return card_metrics(tok, data, tokenizer, seed, c, val, to_coll)


def card_metrics(
    tok: Tokenizer, data: DataParams, tokenizer: TokenizerParams, seed: int, c: Collection, val_stream_fn, to_collection
) -> dict:
    """What a card records about its own weights: validation (VQ-VAE) and physical-unit reconstruction on val rows."""
    metrics = validate_vqvae(tok, data, tokenizer, seed, c, val_stream_fn, to_collection) if tok.kind == "vqvae" else {}
    feats, mask = held_out(val_stream_fn, c, to_collection)
    metrics.update(level_metric_items(levels_report(tok, feats, mask), "reco."))
    metrics["reco.objects"] = int(mask.sum())
    return metrics


def train_vqvae(
    data: DataParams,
    tokenizer: TokenizerParams,
    seed: int,
    c: Collection,
    scaler: CollectionScaler,
    sample,
    streams,
    to_collection,
    out_dir: Path,
):
    """Lightning training with early stopping and best/last checkpoints; returns the tokenizer at its best epoch."""
    import lightning as L

    from . import codebooks
    from .lightning_module import VQVAEModule

    t = collection_params(tokenizer, c.name)
    tr = t["train"]
    L.seed_everything(seed, workers=True, verbose=False)
    module = VQVAEModule(
        vqvae_config(t, scaler),
        lr=tr["lr"],
        weight_decay=tr["weight_decay"],
        loss=t["loss"],
        categorical_weight=t["categorical_weight"],
        seed=seed,
    )
    init = {}
    if t["kmeans_init"] and codebooks.has_codebooks(module.model.quantizer):
        cont, cat = scaler.transform(sample.features, sample.mask)
        latents = module.model.encode_latents(
            torch.from_numpy(cont), torch.from_numpy(cat), torch.from_numpy(sample.mask)
        )
        stats = codebooks.init_from_sample(
            module.model.quantizer, latents, t["kmeans_iters"], seed, tr["batch_objects"]
        )
        init = {"init/objects": stats[0]["objects"], "init/empty_codes_level_1": stats[0]["codes_empty_after_init"]}
    train_data = _sets(
        data, seed, t, c, scaler, streams["train"], to_collection, shuffle=True, max_batches=tr["limit_train_batches"]
    )
    val_data = _sets(data, seed, t, c, scaler, streams["val"], to_collection, shuffle=False)
    trainer = make_trainer(tr, out_dir, monitor="val/loss", log_every_n_steps=1)  # best/last checkpoints, logs
    history = history_of(trainer)  # records every epoch; the early stopping
    trainer.fit(module, _loader(train_data), _loader(val_data))
    if trainer.global_rank != 0:
        return None, {}  # DDP: the main process evaluates the saved weights and writes the card
    best_epoch = int(trainer.current_epoch)
    if trainer.checkpoint_callback.best_model_path:
        saved = torch.load(trainer.checkpoint_callback.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(saved["state_dict"])
        best_epoch = int(saved["epoch"])
    module.model.cpu().eval()
    tok = VQVAETokenizer(_collection_info(c), scaler, module.model)
    health = training_health.health(history.values, tr["patience"], min_delta=tr["min_delta"])
    training = {
        "best_epoch": best_epoch,
        "epochs_run": int(trainer.current_epoch),
        "converged": health["converged"],
        "val_loss_by_epoch": [round(v, 6) for v in history.values],
        **init,
    }
    return tok, training


def train_kmeans(tokenizer: TokenizerParams, c: Collection, scaler: CollectionScaler, sample, seed: int):
    """Residual minibatch k-means on a bounded sample of scaled training objects."""
    from sklearn.cluster import MiniBatchKMeans

    t = collection_params(tokenizer, c.name)
    tok = KMeansTokenizer(_collection_info(c), scaler, np.zeros((0, t["codebook_size"], 1), np.float32))
    x = tok.scaled_inputs(sample.features, sample.mask)[sample.mask]
    residual, centroids, iterations = x, [], []
    for q in range(t["num_quantizers"]):
        km = MiniBatchKMeans(
            n_clusters=t["codebook_size"], random_state=seed + q, batch_size=4096, n_init=3, max_iter=KMEANS_MAX_ITER
        ).fit(residual)
        cb = km.cluster_centers_.astype(np.float32)
        centroids.append(cb)
        iterations.append(int(km.n_iter_))
        idx = residual_indices(torch.from_numpy(residual), [torch.from_numpy(cb)]).numpy()[:, 0]
        residual = residual - cb[idx]
    tok.centroids = np.stack(centroids)
    # converged: every level's k-means stopped on its own (no improvement) before the iteration budget
    return tok, {"iterations": iterations, "converged": all(n < KMEANS_MAX_ITER for n in iterations)}


KMEANS_MAX_ITER = 100


def binned_features(c: Collection, b: Mapping) -> list[str]:
    """The features a binning card bins: every feature of a scalar collection; for objects `binning.features`
    (null: the non-categorical ones). An unknown name is an error naming the collection's features."""
    if c.is_scalar:
        return list(c.features)
    chosen = list(b["features"]) if b["features"] else [f for f in c.features if f not in c.categorical]
    unknown = [f for f in chosen if f not in c.features]
    if unknown or not chosen:
        raise ConfigError(
            f"tokenizer.binning.features for '{c.name}' names {unknown or 'no feature'}; the collection "
            f"has: {', '.join(c.features)}"
        )
    return chosen


def _edges_and_centres(v: np.ndarray, n: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges (strictly increasing) and each bin's mean value (its middle when empty)."""
    if method == "quantile":
        e = np.quantile(v, np.linspace(0, 1, n + 1))
        e = np.maximum.accumulate(e + np.arange(n + 1) * 1e-9 * max(1.0, np.abs(e).max()))  # strictly increasing
    else:
        e = np.linspace(v.min(), v.max(), n + 1)
    idx = np.clip(np.searchsorted(e[1:-1], v, side="right"), 0, n - 1)
    sums = np.bincount(idx, weights=v, minlength=n)
    counts = np.bincount(idx, minlength=n)
    return e, np.where(counts > 0, sums / np.maximum(counts, 1), 0.5 * (e[1:] + e[:-1]))


def _fill_values(c: Collection, valid: np.ndarray) -> np.ndarray:
    """What a feature that is not binned decodes to: its median, or for a category its most frequent value."""
    out = np.median(valid, axis=0).astype(np.float64) if len(valid) else np.zeros(len(c.features))
    for f in c.categorical:
        j = c.features.index(f)
        values, counts = np.unique(valid[:, j], return_counts=True)
        out[j] = values[counts.argmax()] if len(values) else 0.0
    return out


def train_binning(tokenizer: TokenizerParams, c: Collection, sample, scaler: CollectionScaler | None = None):
    """Per-feature bins (uniform or quantile) fitted on training rows; values outside are clipped. `scaler`: the
    object collection's (for the raw-feature baseline); scalar collections fit their own."""
    b = collection_params(tokenizer, c.name)["binning"]
    valid = sample.features[sample.mask].astype(np.float64)
    chosen = binned_features(c, b)
    fitted = [_edges_and_centres(valid[:, c.features.index(f)], b["bins"], b["method"]) for f in chosen]
    if scaler is None:
        scaler = CollectionScaler.for_collection(c).fit(sample.features, sample.mask, sample.categories)
    tok = BinningTokenizer(
        _collection_info(c),
        np.stack([e for e, _ in fitted]),
        np.stack([m for _, m in fitted]),
        scaler,
        binned=chosen,
        fill=_fill_values(c, valid),
    )
    return tok, {}


# ----------------------------------------------------------------------------- entry point


def _check_sample_size(c: Collection, t: Mapping, n_objects: int) -> None:
    k, need = t["codebook_size"], t["min_objects_per_code"]
    if t["kind"] == "binning":
        k = t["binning"]["bins"]
    elif t["kind"] == "vqvae" and t["quantizer"] == "rfsq":
        return
    if n_objects < need * k:
        raise ConfigError(
            f"collection '{c.name}': {n_objects} training objects are too few for codebook_size {k} "
            f"(tokenizer.min_objects_per_code = {need} needs {need * k}); set "
            f"tokenizer.per_collection.{c.name}.codebook_size to at most {max(2, n_objects // need)}, "
            f"or generate more data"
        )


def train_tokenizers(study: StudyParams, data: DataParams, tokenizer: TokenizerParams) -> dict[str, Path]:
    """Train every configured tokenizer and write its card; returns {card name: card path}."""
    t = tokenizer
    collections = from_data(data)
    names = expected_cards(data, tokenizer)
    universe = load_collections(data.objects_file, data.collection_set)
    objects = {n: collections[n] for n in (t.collections or list(collections)) if not collections[n].is_scalar}
    files = H5Stream.from_data(data, collections).files
    checksums = {str(f): file_sha256(f) for f in files}  # provenance recorded in each card
    out_root = tokenizer_dir(study, tokenizer)
    seed = study.seed
    torch.manual_seed(seed)
    trained = []
    for name in names:  # under DDP every rank trains every collection first; then the main process writes the cards
        # (so the other ranks never wait inside the next collection's DDP setup while the main process validates)
        combined = name == COMBINED
        c = combined_collection(objects) if combined else universe[name]
        to_coll = (lambda b: to_combined(b, objects)) if combined else None
        tc = collection_params(tokenizer, name)
        out_dir = out_root / name
        reads = objects if combined else {name: collections[name]}  # (cut, phi and identity collections come along)
        streams = {
            split: (lambda s=code, r=reads: H5Stream.from_data(data, r, select_split=s))
            for split, code in (("train", splits.TRAIN), ("val", splits.VAL))
        }
        training = {
            "data_checksums": checksums,
            "seed": seed,
            "mode": t.mode,
            "split": splits.SplitSpec.from_data(data).to_dict(),
            "params": {"tokenizer": tc.to_dict()},
        }
        started = time.perf_counter()
        sample = reservoir_sample(
            _view(streams["train"], name, to_coll), name, tc["scaler_sample_objects"], seed, categorical=c.categorical
        )
        if c.is_scalar:
            tok, extra = train_binning(tokenizer, c, sample)
        else:
            _check_sample_size(c, tc, int(sample.mask.sum()))
            scaler = CollectionScaler.for_collection(c, tc["scalers"].get(name, {})).fit(
                sample.features, sample.mask, sample.categories
            )
            if tc["kind"] == "kmeans":
                tok, extra = train_kmeans(tokenizer, c, scaler, sample, seed)
            elif tc["kind"] == "binning":
                tok, extra = train_binning(tokenizer, c, sample, scaler)
            else:
                tok, extra = train_vqvae(data, tokenizer, seed, c, scaler, sample, streams, to_coll, out_dir)
        if tok is None or not is_main():  # another DDP rank: it trained its share; the main process writes
            continue
        if combined:
            tok.collection["members"] = list(objects)  # which collections the combined set is made of, in order
            tok.collection["member_type_ids"] = {n: objects[n].type_id for n in objects}
        training.update(extra, train_seconds=round(time.perf_counter() - started, 3))  # sample, scalers, fit
        trained.append((name, tok, c, streams["val"], to_coll, training, out_dir))
    cards = {}
    for name, tok, c, val, to_coll, training, out_dir in trained:
        metrics = card_metrics(tok, data, tokenizer, seed, c, val, to_coll)
        cards[name] = save(tok, out_dir / "card", metrics=metrics, training=training)
        log.info("collection %s: card %s, metrics %s", name, cards[name], json.dumps(metrics))
    return cards
