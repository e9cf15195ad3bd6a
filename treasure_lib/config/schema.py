"""The declared parameter schema: every key a params YAML may hold, its type, default and meaning.

A nested mapping of `Key`s. A mapping under the name "*" stands for user-named blocks
(e.g. `generate.processes.<name>`). `config.validate` checks types and fills defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError

_PY_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


@dataclass(frozen=True)
class Key:
    """One parameter: `type` is int|float|str|bool|list|dict|any; lists may name `item`."""

    type: str
    default: Any = None
    doc: str = ""
    choices: tuple = ()
    nullable: bool = False
    item: str | None = None
    required: bool = False
    minimum: float | None = None
    #: What the key changes: "result" (what a stage builds: part of its identity), "where" (output locations),
    #: "how" (progress display, resuming, logging), "speed" (how fast only: the bytes built come out the same),
    #: "evaluation" (recomputed from a trained classifier's saved predictions), "chapter" (which models a chapter
    #: trains, not how one is trained). Only "result" keys enter a stage's identity (`Section.stage_inputs`).
    role: str = "result"

    def check(self, dotted: str, value: Any) -> Any:
        if value is None:
            if self.nullable or self.type == "any":
                return None
            raise ConfigError(f"key '{dotted}' must be {self._expected()}, got null")
        value = _coerce(dotted, value, self.type, self._expected())
        if self.type == "list" and self.item:
            value = [_coerce(f"{dotted}[{i}]", v, self.item, self.item) for i, v in enumerate(value)]
        if self.choices and value not in self.choices:
            raise ConfigError(f"key '{dotted}' must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"key '{dotted}' must be >= {self.minimum}; got {value!r}")
        return value

    def _expected(self) -> str:
        text = f"a list of {self.item}" if self.type == "list" and self.item else self.type
        return text + (" or null" if self.nullable else "")


def _coerce(dotted: str, value: Any, type_name: str, expected: str) -> Any:
    if type_name == "any":
        return value
    if type_name == "float":
        if isinstance(value, str):  # YAML 1.1 reads 20e3 as a string; physicists write it anyway
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif type_name == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif isinstance(value, _PY_TYPES[type_name]) and not (type_name != "bool" and isinstance(value, bool)):
        return value
    raise ConfigError(f"key '{dotted}' must be {expected}, got {type(value).__name__} {value!r}")


def K(type: str, default: Any = None, doc: str = "", **kw: Any) -> Key:  # noqa: A002
    return Key(type=type, default=default, doc=doc, **kw)


STUDY = {
    "name": K("str", "default", "run name; the run folder is runs/<kind>/<name>"),
    "kind": K(
        "str", "jets", "which study: jet flavour (jets) or event classification (events)", choices=("jets", "events")
    ),
    "seed": K("int", 42, "seed for every random number in the study"),
    "shared_artifacts": K(
        "str",
        None,
        "a folder the runs of a scan share: a stage (tokenizer cards, token files, a "
        "backbone, a classifier) built with identical inputs by one run is linked, not rebuilt, by "
        "the others (null: each run keeps its own)",
        nullable=True,
    ),
}

DATA = {
    "objects_file": K("str", "params/objects.yaml", "object collection definitions"),
    "collection_set": K("str", "jets", "which set in objects_file: jets (flavour tagging) or events"),
    "collections": K("list", None, "subset of the set's collections to read (null: all)", nullable=True, item="str"),
    "files": K("list", [], "input H5 files (globs allowed)", item="str"),
    "chunk_size": K("int", 10_000, "rows read per chunk while streaming", minimum=1),
    "cuts": K("list", [], "simple cuts such as 'jets.pt > 20e3' (scalars drop rows, objects drop objects)", item="str"),
    "nan_policy": K(
        "str",
        "error",
        "NaN/inf in a valid entry: error, zero (replace by 0) or drop (drop the object, or the row for scalars)",
        choices=("error", "zero", "drop"),
    ),
    "label": K("dict", {}, "how to make class labels: {collection, field, table} or {metadata, classes}"),
    "weight": K("dict", {}, "per-row weight: {collection, field}; empty means weight 1"),
    "max_rows": K("int", None, "stop after this many rows per file (null: all)", nullable=True, minimum=1),
    "phi_reference": K(
        "str",
        "none",
        "express every phi relative to the leading object of the event (leading) or keep absolute phi (none)",
        choices=("none", "leading"),
    ),
    "phi_reference_collections": K(
        "list",
        None,
        "collections that may hold the leading object (null: every object collection with pt and phi)",
        nullable=True,
        item="str",
    ),
    "split": {
        "train": K("float", 0.8, "fraction of rows (jets: of events) in the training split"),
        "val": K("float", 0.1, "fraction in the validation split (early stopping, model choice)"),
        "test": K("float", 0.1, "fraction in the test split (read only for the final evaluation)"),
        "salt": K("int", 0, "changes the whole assignment; kept apart from study.seed so seeds share a test set"),
    },
    "sample_buffer_rows": K("int", 20_000, "rows held by the cross-file shuffle buffer while training", minimum=1),
    "block_rows": K("int", 256, "rows read from one file at a time when files are interleaved", minimum=1),
}

GENERATE = {
    "processes_file": K("str", "params/processes.yaml", "named blocks of Pythia settings"),
    "samples": K("dict", {}, "events to generate per process name, e.g. {ttbar: 3000}"),
    "output_dir": K("str", "runs/data", "where the H5 files go: events_<process>_<k>.h5 and jets_<process>_<k>.h5"),
    "layouts": K(
        "list", ["events", "jets"], "which files to write: events (per-feature) and/or jets (compound)", item="str"
    ),
    "events_per_file": K("int", 5000, "split a process into files of this many events (parallel jobs)", minimum=1),
    "batch_size": K("int", 200, "events per Pythia nextBatch call and per emulation step", minimum=1),
    "gzip_level": K("int", 1, "gzip level of the written files (1: fastest to write; 9: smallest)", minimum=0),
    "workers": K("int", None, "parallel processes (null: all cores)", nullable=True, minimum=1),
    "seed": K("int", None, "generation seed (null: study.seed)", nullable=True),
    "pythia_common": K("list", [], "Pythia settings shared by every process", item="str"),
    "detector": K("dict", {}, "overrides of DetectorConfig numbers (treasure_lib/generate/detector.py)"),
    "jet_selection": K(
        "dict", {}, "overrides of JetSelection for the jet-level files (pt_min_mev, eta_max, jvt_min, ...)"
    ),
}

TOKENIZER = {
    "kind": K(
        "str",
        "vqvae",
        "object tokenizer: vqvae, the kmeans baseline or per-feature binning (no network; tokenizer.binning)",
        choices=("vqvae", "kmeans", "binning"),
    ),
    "mode": K(
        "str",
        "object",
        "events: one tokenizer per object type (object), one across types (combined), "
        "or per type with outputs kept apart (separate)",
        choices=("object", "combined", "separate"),
    ),
    "collections": K(
        "list", None, "collections to tokenize (null: every collection of the set)", nullable=True, item="str"
    ),
    "output_dir": K("str", None, "where cards go (null: runs/<kind>/<name>/artifacts/tokenizers)", nullable=True),
    "encoder": K("str", "mlp", "mlp (each object alone) or transformer (in context)", choices=("mlp", "transformer")),
    "decoder": K(
        "str", None, "mlp or transformer (null: same as encoder)", nullable=True, choices=("mlp", "transformer")
    ),
    "size": K("str", "small", "network size preset", choices=("small", "medium", "large")),
    "width": K("int", None, "explicit width (overrides the preset)", nullable=True, minimum=1),
    "depth": K("int", None, "explicit depth (overrides the preset)", nullable=True, minimum=1),
    "heads": K("int", None, "explicit attention heads (overrides the preset)", nullable=True, minimum=1),
    "latent_dim": K("int", 32, "latent dimension fed to the quantizer", minimum=1),
    "category_embed_dim": K("int", 4, "embedding size of each categorical feature", minimum=1),
    "quantizer": K("str", "rvq", "rvq (ResidualVQ) or rfsq (ResidualFSQ)", choices=("rvq", "rfsq")),
    "codebook_size": K("int", 512, "codes per quantizer level (rvq, kmeans)", minimum=2),
    "codebook_dim": K("int", None, "codebook dimension (null: latent_dim; else projected)", nullable=True, minimum=1),
    "num_quantizers": K("int", 3, "residual quantizer levels Q", minimum=1),
    "decay": K("float", 0.9, "EMA decay of codebook updates"),
    "kmeans_init": K(
        "bool",
        True,
        "initialise each level's codebook by residual k-means on a mixed reservoir sample of "
        "training objects (several times K of them), not on the first batch",
    ),
    "kmeans_iters": K("int", 20, "k-means iterations for the initialisation", minimum=1),
    "dead_code_fraction": K(
        "float",
        0.05,
        "a code is dead when its EMA count falls below this fraction of a uniform "
        "share (objects per batch / K); dead codes are re-drawn from valid objects of the batch "
        "(0: never)",
        minimum=0,
    ),
    "min_objects_per_code": K(
        "int",
        4,
        "training needs this many training objects per code for the k-means "
        "initialisation; fewer is an error that suggests a smaller codebook_size",
        minimum=1,
    ),
    "rotation_trick": K("bool", True, "gradients through the quantizer by the rotation trick"),
    "use_cosine_sim": K("bool", False, "cosine-similarity codebooks"),
    "commitment_weight": K("float", 0.25, "weight of the commitment loss"),
    "fsq_levels": K("list", [8, 5, 5, 5], "levels per dimension for rfsq (codebook size is their product)", item="int"),
    "loss": K("str", "l1", "reconstruction loss on valid objects", choices=("l1", "mse")),
    "categorical_weight": K("float", 0.1, "weight of the cross-entropy on categorical features"),
    "scalers": K("dict", {}, "scaler kind overrides per collection and feature, e.g. {tracks: {d0: quantile}}"),
    "scaler_sample_objects": K(
        "int",
        200_000,
        "training objects kept (reservoir sample over all files) to fit scalers, k-means and bins",
        minimum=100,
    ),
    "per_collection": K(
        "dict",
        {},
        "per-collection overrides of these keys, e.g. {taus: {codebook_size: 32, "
        "train: {batch_objects: 256}}} (rare objects need smaller codebooks)",
    ),
    "binning": {
        "bins": K("int", 32, "bins per feature: event scalars, and object collections with kind binning", minimum=2),
        "features": K(
            "list",
            None,
            "kind binning, object collections: the features binned, one level each (null: "
            "every non-categorical feature); the others cost no bits and decode to their training median "
            "(categories: the most frequent value)",
            nullable=True,
            item="str",
        ),
        "method": K(
            "str",
            "quantile",
            "bin edges: quantile or uniform (values outside are clipped)",
            choices=("quantile", "uniform"),
        ),
    },
    "train": {
        "batch_objects": K(
            "int", 2048, "valid objects per training batch (rows are added until it is reached)", minimum=1
        ),
        "max_epochs": K("int", 10, "maximum epochs", minimum=1),
        "max_steps": K("int", None, "stop after this many steps (null: no limit)", nullable=True, minimum=1),
        "limit_train_batches": K("int", None, "batches per epoch (null: all)", nullable=True, minimum=1),
        "cache_rows": K(
            "int",
            200_000,
            "hold a collection's scaled train/val rows in memory after the first pass when "
            "there are at most this many (then every epoch is a full shuffle); more rows stream",
            minimum=0,
        ),
        "lr": K("float", 1e-3, "AdamW learning rate"),
        "weight_decay": K("float", 0.0, "AdamW weight decay"),
        "patience": K("int", 3, "early stopping patience in epochs", minimum=1),
        "min_delta": K(
            "float",
            0.005,
            "early stopping (and convergence): training has stopped improving when its "
            "last `patience` epochs lowered the best validation loss by less than this fraction of it",
            minimum=0,
        ),
        "accelerator": K("str", "auto", "auto, cpu or gpu", choices=("auto", "cpu", "gpu", "cuda")),
        "precision": K("str", None, "Lightning precision (null: bf16-mixed on GPU, 32-true on CPU)", nullable=True),
        "devices": K(
            "any",
            1,
            "devices per node (an int, a list, or 'auto'); more than one trains with DDP, every "
            "rank on its share of the batches, codebook statistics summed over ranks",
        ),
        "num_nodes": K("int", 1, "nodes (multi-node DDP under Slurm: one task per device)", minimum=1),
        "strategy": K("str", "auto", "Lightning strategy: auto, ddp, ..."),
        "progress_bar": K("bool", True, "show Lightning's progress bar"),
    },
}

EXPORT = {
    "output_dir": K("str", None, "where token files go (null: runs/<kind>/<name>/artifacts/tokens)", nullable=True),
    "cards_dir": K("str", None, "tokenizer cards to use (null: the tokenizer output_dir)", nullable=True),
    "layout": K(
        "str",
        "grouped",
        "tokens per object as [Q] lists (grouped) or one flat list (flat)",
        choices=("grouped", "flat"),
    ),
    "batch_size": K(
        "int",
        None,
        "rows encoded per step (null: sized to the device, 4096 on CPU, 65536 on a GPU)",
        nullable=True,
        minimum=1,
    ),
    "backend": K(
        "str", "auto", "nearest-code search: auto (faiss on CPU), torch or faiss", choices=("auto", "torch", "faiss")
    ),
    "device": K("str", "auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda")),
    "npz": K("bool", True, "jets: also write the heptokens-style npz"),
    "row_group_size": K("int", 10_000, "rows per Parquet row group", minimum=1),
    "overwrite": K("bool", False, "re-export files whose outputs exist (false: skip them, so an export resumes)"),
    "files": K("list", None, "input files to export (null: data.files)", nullable=True, item="str"),
    "columns": K(
        "dict", {}, "extra per-row columns from scalar collections, e.g. {jet_pt: jets.pt, jet_eta: jets.eta}"
    ),
    "derived": K(
        "list",
        [],
        "per-row analysis columns computed from each row's objects and written beside the tokens "
        "(never model inputs): h4l = the H -> 4l selection (selection.h4l) with m12, m34, m4l, pt4l, eta4l, "
        "the five decay angles, pass_h4l_preselection and pass_h4l_sr (tasks select rows with `require`)",
        item="str",
    ),
    "decoded": K(
        "bool",
        False,
        "also write the decoded-features Parquet (tokens decoded back to physics quantities, "
        "scaled like the raw features: the cost table's middle column)",
    ),
    "features": K(
        "bool",
        True,
        "also write the raw-features Parquet (scaled object features at the token positions: "
        "the tokens-vs-raw baseline)",
    ),
}

SEQUENCE = {
    "order": K(
        "list",
        None,
        "collections in sequence order, e.g. [event, electrons, ..., met] (null: the tokenized "
        "collections in objects-file order)",
        nullable=True,
        item="str",
    ),
    "slots": K(
        "str",
        "compact",
        "compact (objects packed, padding at the end) or fixed (max_objects positions per "
        "collection: the length carries no information)",
        choices=("compact", "fixed"),
    ),
    "sep": K("bool", True, "a [SEP] after each object collection"),
    "type_ids": K("bool", True, "write each position's type id (false: 0 everywhere; a leakage-study switch)"),
}


def _training(batch_size: int, max_epochs: int, patience: int, lr: float) -> dict:
    """Training keys shared by pretraining and classification."""
    return {
        "batch_size": K("int", batch_size, "sequences per batch (per device)", minimum=1),
        "max_epochs": K("int", max_epochs, "maximum epochs", minimum=1),
        "patience": K("int", patience, "early stopping patience in epochs (on val/loss)", minimum=1),
        "min_delta": K(
            "float",
            0.0,
            "training has stopped improving when its last `patience` epochs lowered the best "
            "validation loss by less than this fraction of it (0: by nothing); the same rule early stops "
            "and judges convergence",
            minimum=0,
        ),
        "lr": K("float", lr, "AdamW peak learning rate (linear warm-up, cosine decay to 10%)"),
        "weight_decay": K("float", 0.01, "AdamW weight decay"),
        "warmup_steps": K("int", 50, "learning-rate warm-up steps", minimum=0),
        "limit_train_batches": K("int", None, "batches per epoch (null: the whole split)", nullable=True, minimum=1),
        "buffer_rows": K("int", 20_000, "rows held by the cross-file shuffle buffer", minimum=1),
        "block_rows": K("int", 256, "rows read from one file at a time", minimum=1),
        "cache_rows": K(
            "int",
            200_000,
            "hold a split in memory when it has at most this many rows (then every epoch is "
            "a full shuffle, and rows of similar length are batched together); more rows stream from the "
            "files through the shuffle buffer",
            minimum=0,
        ),
        "num_workers": K("int", 0, "DataLoader worker processes (blocks are dealt to workers)", minimum=0),
        "accelerator": K("str", "auto", "auto, cpu or gpu", choices=("auto", "cpu", "gpu", "cuda")),
        "precision": K("str", None, "Lightning precision (null: bf16-mixed on GPU, 32-true on CPU)", nullable=True),
        "devices": K("any", 1, "devices per node (an int, a list, or 'auto')"),
        "num_nodes": K("int", 1, "nodes (multi-node DDP under Slurm: one task per device)", minimum=1),
        "strategy": K("str", "auto", "Lightning strategy: auto, ddp, ddp_spawn, ..."),
        "resume": K("bool", True, "continue from the last checkpoint when one exists"),
        "progress_bar": K("bool", True, "show Lightning's progress bar"),
        "wandb": K(
            "bool",
            False,
            "also log to Weights & Biases, offline, beside the CSV and TensorBoard logs (needs `pip install wandb`)",
        ),
    }


MODEL = {
    "d_model": K("int", 64, "width of the backbone", minimum=1),
    "n_layers": K("int", 2, "transformer blocks", minimum=1),
    "n_heads": K("int", 4, "attention heads", minimum=1),
    "d_ff": K("int", 128, "width of the blocks' MLP", minimum=1),
    "dropout": K("float", 0.1, "dropout in embeddings, attention and MLPs"),
    "pooling": K("str", "cls", "classifier pooling: cls (the [CLS] position) or mean", choices=("cls", "mean")),
    "level_dropout": K(
        "float",
        0.0,
        "token models, training only: the probability that an object keeps only its "
        "first k quantizer levels (k uniform below Q): fine residual codes of a small sample name single "
        "events, and a classifier memorises them without it",
        minimum=0,
    ),
    "feature_hidden": K(
        "int",
        128,
        "raw-feature and decoded-token models: width of the object MLP (features -> hidden "
        "-> d_model) at every position (null: as many parameters as the token embedding table)",
        nullable=True,
        minimum=1,
    ),
    "group_attention": K("bool", False, "the seed design's attention among sub-vectors of each token embedding"),
    "group_attention_groups": K("int", 4, "sub-vectors per embedding for group attention", minimum=1),
}

PRETRAIN = {
    "objective": K(
        "str",
        "masked",
        "what the backbone learns: masked (masked-token prediction, a bidirectional backbone) or next_token "
        "(generative: a causal backbone predicts each next object's type, then its codes coarse to fine; it gives "
        "a sequence likelihood and samples sequences; a classifier fine-tuned on it needs model.pooling=mean)",
        choices=("masked", "next_token"),
    ),
    "next_token_lr": K(
        "float",
        None,
        "the next-token objective's learning rate (null: train.lr): its loss reads every position, not 15% of them, "
        "and it learns best at its own rate",
        nullable=True,
    ),
    "seed": K(
        "int",
        None,
        "seed of pretraining's weights, masks and shuffling (null: study.seed); a seed axis repeats the "
        "pretraining on the same tokens",
        nullable=True,
    ),
    "mask_rate": K("float", 0.15, "fraction of tokens (flat) or objects (grouped) selected for prediction"),
    "p_mask": K("float", 0.8, "of the selected: fraction replaced by [MASK]"),
    "p_random": K("float", 0.1, "of the selected: fraction replaced by a random code of the same range"),
    "probe_task": K("str", None, "task of the online linear probe (null: classify.task)", nullable=True),
    "output_dir": K("str", None, "checkpoints and logs (null: runs/<kind>/<name>/artifacts/pretrain)", nullable=True),
    "train": _training(256, 10, 3, 1e-3),
}

CLASSIFY = {
    "task": K("str", "flavour", "the task to train (a key of classify.tasks)"),
    "tasks": K(
        "dict",
        {},
        "tasks: {name: {column, names} or {classes: {class: [samples]}, others, weights, balance, "
        "select}} (treasure_lib/datamodules/tasks.py)",
    ),
    "inputs": K(
        "str",
        "tokens",
        "tokens, features (the raw-feature baseline) or decoded (tokens decoded back to features)",
        choices=("tokens", "features", "decoded"),
    ),
    "mode": K(
        "str",
        "scratch",
        "scratch, finetune, frozen (linear probe) or slow (backbone lr catches up)",
        choices=("scratch", "finetune", "frozen", "slow"),
    ),
    "backbone": K(
        "str", None, "pretrained checkpoint (null: the run's artifacts/pretrain/checkpoints/best.ckpt)", nullable=True
    ),
    "backbone_objective": K(
        "str",
        "masked",
        "finetune, frozen and slow modes: the pretraining objective of the backbone they start from (masked: "
        "chapter 05's; next_token: chapter 08's generative backbone)",
        choices=("masked", "next_token"),
    ),
    "label_fraction": K("float", 1.0, "fraction of labelled training rows kept (fixed and nested by identity)"),
    "label_fractions": K("list", [0.1, 0.3], "the label-efficiency curve's points below 1 (chapter 06)", item="float"),
    "also": K(
        "list", [], "further tasks chapter 06 trains (tokens and raw features), e.g. [h_vs_all, multiclass]", item="str"
    ),
    "leakage_tasks": K("list", None, "tasks of the leakage report (null: classify.task)", nullable=True, item="str"),
    "label_seed": K("int", 0, "which rows a label fraction keeps"),
    "equal_steps": K(
        "bool",
        True,
        "with a label fraction, epochs and patience grow (at most 20x) so the classifier "
        "takes as many optimizer steps as with all labels: a label-efficiency curve compares labels, not "
        "training time",
    ),
    "seed": K(
        "int",
        None,
        "seed of the classifier's weights and shuffling (null: study.seed); a scan's seed axis "
        "repeats the training on the same tokens and backbone",
        nullable=True,
    ),
    "seeds": K(
        "list",
        [1, 2, 3],
        "training seeds of every headline classifier and label-efficiency point (chapters 04 "
        "and 06): numbers are their mean, with the seed spread and a paired bootstrap of the test rows",
        item="int",
    ),
    "jobs": K(
        "int",
        None,
        "classifiers trained at once in separate processes (null: one per core, at most 4, on a "
        "CPU; one on a GPU); only how fast, never what",
        nullable=True,
        minimum=1,
    ),
    "convergence_margin": K(
        "float",
        0.02,
        "a classifier has learned something when its best validation loss is below "
        "(1 - margin) x the class-prior entropy",
        minimum=0,
    ),
    "physics_baselines": K(
        "bool",
        False,
        "chapter 06 also scores the task's physics baselines on the same test rows "
        "(the m4l window and gradient-boosted trees on the classic H -> 4l variables; needs "
        "export.derived: [h4l])",
    ),
    "n_boot": K(
        "int", 200, "bootstrap replicates of the test rows for uncertainties and paired comparisons", minimum=0
    ),
    "compare": K(
        "bool",
        True,
        "chapter 06 compares tokens (scratch, fine-tuned), decoded tokens and raw features and "
        "draws the label-efficiency curve; false trains only the classifier these params describe "
        "(task, inputs, mode, label_fraction: one point of a scan)",
    ),
    "head_hidden": K("int", 64, "width of the head's hidden layer (Linear-ReLU-Dropout-Linear)", minimum=1),
    "head_dropout": K("float", 0.1, "dropout in the head"),
    "backbone_lr_factor": K("float", 0.1, "slow mode: the backbone's starting learning-rate factor"),
    "catch_up_epochs": K("int", 3, "slow mode: epochs until the backbone learns at the full rate", minimum=1),
    "f_c": K("float", 0.2, "flavour: charm fraction in the D_b discriminant"),
    "f_tau": K(
        "float",
        0.01,
        "flavour: tau fraction in the D_b discriminant, "
        "D_b = ln(p_b / (f_c p_c + f_tau p_tau + (1 - f_c - f_tau) p_light)) (GN2's convention)",
    ),
    "pt_bins_gev": K("list", [20, 40, 60, 100, 150, 250, 400, 1000], "flavour: jet pT bin edges [GeV]", item="float"),
    "output_dir": K(
        "str", None, "checkpoints, logs, predictions (null: runs/<kind>/<name>/artifacts/classify)", nullable=True
    ),
    "train": _training(256, 15, 3, 1e-3),
}


SELECTION = {  # physics selections that chapters, baselines and exporters apply to events (treasure_lib/higgs4l.py)
    "h4l": {
        "electron_pt_min_gev": K("float", 7.0, "electron candidates: pT above this [GeV]"),
        "electron_eta_max": K("float", 2.47, "electron candidates: |eta| below this"),
        "electron_id": K(
            "str",
            "LHLoose",
            "electron candidates: the ID flag they must carry",
            choices=("LHLoose", "LHMedium", "LHTight"),
        ),
        "muon_pt_min_gev": K("float", 5.0, "muon candidates: pT above this [GeV]"),
        "muon_eta_max": K("float", 2.7, "muon candidates: |eta| below this"),
        "muon_quality": K(
            "str",
            "Loose",
            "muon candidates: this quality or tighter (quality 0 Tight ... 3 VeryLoose)",
            choices=("Tight", "Medium", "Loose", "VeryLoose"),
        ),
        "lepton_pt_min_gev": K(
            "list",
            [20.0, 15.0, 10.0],
            "pT thresholds of the quadruplet's leading, second and third lepton [GeV]",
            item="float",
        ),
        "isolation_max": K(
            "float", 0.15, "each quadruplet lepton: trk_iso03 (track pT sum within dR 0.3 / lepton pT) below this"
        ),
        "m12_gev": K("list", [50.0, 106.0], "leading pair (SFOS pair closest to m_Z) mass range [GeV]", item="float"),
        "m34_gev": K(
            "list", [12.0, 115.0], "subleading pair (the other SFOS pair closest to m_Z) mass range [GeV]", item="float"
        ),
        "m4l_window_gev": K("list", [115.0, 130.0], "the signal region's four-lepton mass window [GeV]", item="float"),
    },
}


ANOMALY = {  # chapter 08: anomaly scores from the standard-model backbone, and what pretraining buys
    "signals": K(
        "dict",
        {},
        "held-out samples beyond the standard model the chapter scores: {process: events to generate} (blocks of "
        "params/processes.yaml; never in data.files or generate.samples, so never in tokenizer training or "
        "pretraining)",
    ),
    "signal_split": {
        "train": K("float", 0.5, "fraction of a signal's rows (jets: of events) the supervised upper bound trains on"),
        "val": K("float", 0.1, "fraction it selects its model on"),
        "test": K("float", 0.4, "fraction every score is evaluated on"),
    },
    "seeds": K(
        "list",
        [],
        "pretraining seeds of the backbones (both objectives) and seeds of the autoencoder and the supervised "
        "classifier: the seed spread of every score (study.seed reuses chapter 05's backbone)",
        item="int",
    ),
    "max_rows": K(
        "int",
        3000,
        "test rows scored per sample (a fixed subset, the same for every score: the pseudo-likelihood costs "
        "rows x objects forward passes)",
        minimum=10,
    ),
    "min_jet_pt_gev": K(
        "dict",
        {},
        "per signal: score only jets above this pT [GeV], standard-model jets alike (a boosted-resonance search "
        "looks at high-pT jets; rows need the jet_pt column)",
    ),
    "autoencoder": {
        "bottleneck": K("int", 4, "latent width of the per-object autoencoder on the raw features", minimum=1),
        "max_epochs": K("int", 100, "maximum epochs", minimum=1),
        "patience": K("int", 3, "early stopping patience in epochs (on the validation loss)", minimum=1),
        "min_delta": K(
            "float",
            0.005,
            "stopped improving: its last `patience` epochs lowered the best validation loss by less than this "
            "fraction of it",
            minimum=0,
        ),
        "lr": K(
            "float",
            3.0e-3,
            "Adam learning rate (events study, seed 42: 3e-3 reached a lower validation loss in 36 epochs than 1e-3 "
            "in 64; 1e-2 stopped higher)",
        ),
        "batch_size": K("int", 1024, "objects per batch", minimum=1),
        "epoch_objects": K(
            "int",
            50_000,
            "training objects one epoch draws afresh (null: all); events study, seed 42, with 20k validation objects: "
            "dark-shower / Z' -> tt AUC 0.945 / 0.768 in 45 s, against 0.931 / 0.750 in 80 s with 100k and 100k",
            nullable=True,
            minimum=1,
        ),
        "val_objects": K(
            "int",
            20_000,
            "validation objects graded every epoch: a fixed subset, the same every epoch (null: all)",
            nullable=True,
            minimum=1,
        ),
    },
    "supervised_sm_fraction": K(
        "float",
        0.25,
        "share of each standard-model sample's rows the supervised upper bound trains on (the signal has a few "
        "thousand rows, classes are balanced: more background adds time, hardly separation)",
    ),
    "label_efficiency": K(
        "bool",
        True,
        "train the next-token label-efficiency curve (classify.label_fractions x classify.seeds fine-tunings beside "
        "chapter 06's scratch and masked fine-tuned models); false where the study cannot resolve it at this scale",
    ),
    "generated_rows": K(
        "int", 2000, "sequences sampled from each next-token backbone and compared with the test split", minimum=1
    ),
    "temperature": K("float", 1.0, "sampling temperature of the generated sequences (1: the model's distribution)"),
}


ROLES = ("result", "where", "how", "speed", "evaluation", "chapter")


def _mark(section: dict, role: str, *keys: str) -> None:
    """Declare the role of some keys of a section (and of its `train` block, for keys found there)."""
    for block in (section, section.get("train", {})):
        for key in keys:
            if key in block:
                block[key] = replace(block[key], role=role)


for _section in (TOKENIZER, EXPORT, PRETRAIN, CLASSIFY):
    _mark(_section, "where", "output_dir", "cards_dir", "backbone")
    _mark(_section, "how", "progress_bar", "resume", "wandb")
_mark(EXPORT, "how", "overwrite")
_mark(EXPORT, "speed", "batch_size")
_mark(CLASSIFY, "evaluation", "f_c", "f_tau", "pt_bins_gev", "n_boot")
_mark(ANOMALY, "chapter", "signals", "seeds", "label_efficiency")
_mark(CLASSIFY, "chapter", "compare", "also", "label_fractions", "leakage_tasks", "seeds", "physics_baselines")
# Not "speed", though they look it: data.chunk_size sizes the reservoir sample the scalers, k-means and bins fit on
# (from the first chunk's objects per row) and where the held-out sample stops; classify.jobs sets each
# classifier's torch threads (cores / jobs), and a CPU reduction's float sum may depend on the thread count.

SCHEMA: dict = {
    "study": STUDY,
    "data": DATA,
    "generate": GENERATE,
    "tokenizer": TOKENIZER,
    "export": EXPORT,
    "sequence": SEQUENCE,
    "model": MODEL,
    "pretrain": PRETRAIN,
    "classify": CLASSIFY,
    "selection": SELECTION,
    "anomaly": ANOMALY,
}
