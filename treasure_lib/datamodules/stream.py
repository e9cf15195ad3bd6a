"""Token Parquet as model batches: streamed, mixed across files, sharded, split-aware.

Each token file holds one process, so rows are read in small blocks whose order spreads every file
over the pass, then mixed by a bounded shuffle buffer (`io.mixing`); the order is new every
epoch. Blocks are dealt to DDP ranks and DataLoader workers; with `equal_batches` every rank yields
the same number of batches (required by DDP). Rows come from one split only, as exported (never
re-split), with the task's labels, weights and selection; `label_fraction` keeps a fixed, nested
subset of labelled training rows. A batch holds only the model inputs and targets (DESIGN.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import IterableDataset, get_worker_info

from .. import splits
from ..errors import ConfigError, InputFileError
from ..hashing import text_sha256
from ..io import mixing
from ..io.tokens import dense_features, list_column, read_metadata
from ..sequences import TokenizerSet
from . import in_memory
from . import tasks as T

INPUTS = {"tokens": ("tokens", "type_ids", "mask"), "features": ("features", "type_ids", "mask")}
#: Columns every token (or feature) file must hold besides its model inputs.
REQUIRED_COLUMNS = ("label", "weight", "split")
ROW_COLUMNS = (
    "label",
    "weight",
    "split",
    "event_number",
    "process",
    "dsid",
    "source_file",
    "cross_section_pb",
    "filter_efficiency",
    "k_factor",
    "sum_of_weights",
)


class TokenFiles:
    """The token (or raw-feature) Parquet files of a study, checked to share one vocabulary and layout."""

    def __init__(self, paths: Sequence[str | Path], content: str = "tokens"):
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise InputFileError(f"no {content} Parquet files given")
        self.content = content
        metas = [read_metadata(p) for p in self.paths]
        for p, meta in zip(self.paths, metas):
            if meta.get("content") != content:
                raise InputFileError(
                    f"{p}: holds {meta.get('content')!r}, expected {content!r} (the *.{content}.parquet files)"
                )
            for key in ("vocabulary", "layout"):
                if meta[key] != metas[0][key]:
                    raise InputFileError(
                        f"{p}: its {key} differs from {self.paths[0]}'s; all files of a study must come "
                        f"from the same tokenizer cards"
                    )
        self.metadata = metas[0]
        self.set = TokenizerSet.from_metadata(self.metadata, str(self.paths[0]))
        self.vocabulary = self.set.vocabulary
        self.levels = self.set.levels if self.set.layout.tokens == "grouped" else 1
        self.row_groups = [pq.ParquetFile(p).metadata for p in self.paths]
        self.columns = self._check_columns()
        self.sample_sum_of_weights = self._sample_sums()

    def _check_columns(self) -> set[str]:
        """The columns every file holds, checked before anything trains: each file has the model inputs, `label`,
        `weight` and `split`, and the same columns as the first (a file without one is one error naming it)."""
        inputs = INPUTS["tokens" if self.content == "tokens" else "features"]
        required = (*inputs, *REQUIRED_COLUMNS)
        first = None
        for path in self.paths:
            names = set(pq.read_schema(path).names)
            missing = [c for c in required if c not in names]
            if missing:
                raise InputFileError(
                    f"{path}: a {self.content} Parquet without column(s) {missing} (every file needs "
                    f"{', '.join(required)}); re-export it"
                )
            if first is None:
                first = names
            elif names != first:
                differ = sorted(names ^ first)
                raise InputFileError(
                    f"{path}: its columns differ from {self.paths[0]}'s ({', '.join(differ)}); all "
                    f"files of a study must come from one export"
                )
        return first

    def _sample_sums(self) -> list[float] | None:
        """Per file, the generated sum of weights of its whole *sample* (every file of the study with its dsid).

        A file records its own sum; a sample split into k files would otherwise count its cross section k
        times. The sample is the dsid (else the process, else the file)."""
        if "sum_of_weights" not in self.columns:
            return None
        key = next((c for c in ("dsid", "process", "source_file") if c in self.columns), None)
        samples, sums = [], []
        for path, meta in zip(self.paths, self.row_groups):
            if not meta.num_rows:
                samples.append(str(path))
                sums.append(0.0)
                continue
            first = (
                pq.ParquetFile(path).read_row_group(0, columns=[c for c in (key, "sum_of_weights") if c]).slice(0, 1)
            )
            samples.append(str(first.column(key)[0].as_py()) if key else str(path))
            sums.append(float(first.column("sum_of_weights")[0].as_py()))
        total: dict[str, float] = {}
        for sample, value in zip(samples, sums):
            total[sample] = total.get(sample, 0.0) + value
        return [total[sample] for sample in samples]

    @property
    def vocabulary_hash(self) -> str:
        """Identity of the vocabulary and layout: a checkpoint trained on other tokens refuses these."""
        text = self.metadata["vocabulary"] + self.metadata["layout"]
        return text_sha256(text)[:16]

    def feature_width(self) -> int:
        """Features per position of a raw-features file."""
        first = self.read(0, 0, ["features", "mask"])
        return int(first["features"].shape[-1])

    def positions_per_object(self) -> dict[int, int]:
        if self.set.layout.tokens == "grouped":
            return {}
        return {g.type_id: g.levels for g in self.set.groups}

    def read(self, i: int, row_group: int, columns: Sequence[str]) -> dict[str, np.ndarray]:
        table = pq.ParquetFile(self.paths[i]).read_row_group(
            row_group, columns=[c for c in columns if c in self.columns]
        )
        out = {}
        for name in table.column_names:
            if name in ("tokens", "type_ids", "mask"):
                out[name] = list_column(table, name)
            elif name == "features":
                out[name] = dense_features(table)
            elif name == "sum_of_weights" and self.sample_sum_of_weights is not None:
                out[name] = np.full(table.num_rows, self.sample_sum_of_weights[i])
            else:
                out[name] = table.column(name).to_numpy(zero_copy_only=False)
        return out


class TokenStream(IterableDataset):
    """Batches {tokens or features, type_ids, mask, label, weight} of one split for a task."""

    def __init__(
        self,
        files: TokenFiles,
        task: T.Task | None,
        split: str,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        buffer_rows: int = 20_000,
        block_rows: int = 256,
        label_fraction: float = 1.0,
        label_seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        equal_batches: bool = False,
        max_batches: int | None = None,
        cache_rows: int = 0,
        keep_unlabelled: bool = False,
    ):
        super().__init__()
        if not 0 < label_fraction <= 1:
            raise ConfigError(f"label_fraction must be in (0, 1], got {label_fraction}")
        self.files, self.task, self.split = files, task, splits.parse(split)
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.buffer_rows, self.block_rows = buffer_rows, block_rows
        self.label_fraction, self.label_seed = label_fraction, label_seed
        self._rank, self._world, self._equal = rank, world_size, equal_batches
        self.max_batches = max_batches
        self.keep_unlabelled = keep_unlabelled
        self.inputs = INPUTS["tokens" if files.content == "tokens" else "features"]  # decoded files hold `features` too
        self.epoch = 0
        self.summary = self._summarise()
        self.in_memory = self.summary["rows"] <= cache_rows
        self._memory: tuple[dict, np.ndarray] | None = None

    # ------------------------------------------------------------------ row selection
    def _rows(self, cols: dict, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kept row positions, labels, physics weights) of one block."""
        keep = splits.codes_from_names(cols["split"]) == self.split
        if self.task is not None:
            lab = T.labels(self.task, cols, where)
            w = T.sample_weights(self.task, cols, where)
            if self.keep_unlabelled:  # pretraining: every row, the task's labels only where it has them (the probe)
                return np.flatnonzero(keep), lab, w
            keep &= lab >= 0
        else:
            lab = np.full(len(keep), -1, dtype=np.int64)
            w = np.ones(len(keep))
        if self.label_fraction < 1:
            keep &= self._label_subset(cols)
        if self.task is not None and self.task.select and "type_ids" in cols:
            keep &= T.selected(
                self.task,
                cols["type_ids"],
                cols["mask"],
                self.files.vocabulary,
                where,
                self.files.positions_per_object(),
            )
        if self.task is not None and self.task.require:  # a physics selection the exporter computed (export.derived)
            keep &= T.required(self.task, cols, where)
        if self.task is not None and self.task.sample_fractions:
            kept, factor = T.subsample(self.task, cols, where)
            keep &= kept
            w = w * factor
        return np.flatnonzero(keep), lab, w

    def row_columns(self) -> list[str]:
        """What row selection reads: ROW_COLUMNS, the task's required columns, type ids and mask for a multiplicity
        selection (those the files hold: a missing required column is `T.required`'s error)."""
        names = list(ROW_COLUMNS) + list(self.task.require if self.task is not None else ())
        if self.task is not None and self.task.select:
            names += ["type_ids", "mask"]
        return [c for c in dict.fromkeys(names) if c in self.files.columns]

    def _label_subset(self, cols: dict) -> np.ndarray:
        """A fixed pseudo-random `label_fraction` of rows by identity; smaller fractions are subsets of larger ones."""
        sample = cols["dsid"].astype(str) if "dsid" in cols else np.asarray(cols["source_file"]).astype(str)
        out = np.zeros(len(sample), dtype=bool)
        for s in np.unique(sample):
            rows = sample == s
            u = splits.uniform(f"labels:{s}", cols["event_number"][rows], self.label_seed)
            out[rows] = u < self.label_fraction
        return out

    def _summarise(self) -> dict:
        """Rows, class counts and weight totals of this split (reads only the row columns)."""
        need = self.row_columns()
        n_rows, counts, totals = 0, None, None
        n_classes = self.task.n_classes if self.task is not None else 1
        per_file = []
        for i, p in enumerate(self.files.paths):
            rows_i = 0
            for rg in range(self.files.row_groups[i].num_row_groups):
                cols = self.files.read(i, rg, need)
                kept, lab, w = self._rows(cols, str(p))
                rows_i += len(kept)
                lab = lab[kept] if self.task is not None else np.zeros(len(kept), np.int64)
                w_kept = w[kept][lab >= 0]
                lab = lab[lab >= 0]  # unlabelled rows (pretraining) count as rows, not in any class
                c = np.bincount(lab, minlength=n_classes)
                t = np.bincount(lab, weights=w_kept, minlength=n_classes)
                counts = c if counts is None else counts + c
                totals = t if totals is None else totals + t
            per_file.append(rows_i)
            n_rows += rows_i
        if n_rows == 0:
            raise InputFileError(
                f"no rows of the '{splits.NAMES[self.split]}' split"
                f"{' for task ' + repr(self.task.name) if self.task else ''} in "
                f"{', '.join(map(str, self.files.paths[:3]))}{' ...' if len(self.files.paths) > 3 else ''}"
            )
        factors = np.ones(n_classes)
        if self.task is not None and self.task.balance:
            if (totals <= 0).any():
                raise InputFileError(
                    f"task '{self.task.name}': class(es) "
                    f"{[self.task.class_names[i] for i in np.flatnonzero(totals <= 0)]} have no rows in "
                    f"the '{splits.NAMES[self.split]}' split"
                )
            factors = (totals.sum() / n_classes) / totals
        scale = n_rows / float((totals * factors).sum()) if (totals * factors).sum() > 0 else 1.0
        return {
            "rows": n_rows,
            "rows_per_file": per_file,
            "class_counts": counts.tolist(),
            "class_weights": totals.tolist(),
            "class_factors": (factors * scale).tolist(),
        }

    # ------------------------------------------------------------------ iteration
    def _blocks(self, rng, ordered: bool = False) -> list[tuple[int, int, int, int]]:
        """(file, row group, start, stop) blocks. Shuffled: each file's blocks in file order from a random start
        (one row group per file is read at a time), the files interleaved so every stretch of the pass holds
        each file in proportion to its size."""
        per_file = []
        for i, meta in enumerate(self.files.row_groups):
            blocks = [
                (i, rg, s, min(s + self.block_rows, meta.row_group(rg).num_rows))
                for rg in range(meta.num_row_groups)
                for s in range(0, meta.row_group(rg).num_rows, self.block_rows)
            ]
            per_file.append(blocks)
        if ordered or not self.shuffle:
            return [b for blocks in per_file for b in blocks]
        order = mixing.interleaved_blocks([len(b) for b in per_file], 1, rng, keep_order=True)
        return [per_file[i][k] for i, k, _ in order]

    def _parts(self, blocks) -> Iterator[dict]:
        cached: dict[int, tuple[int, dict]] = {}
        factors = np.asarray(self.summary["class_factors"])
        columns = list(self.inputs) + [c for c in self.row_columns() if c not in self.inputs]
        for i, rg, a, b in blocks:
            if cached.get(i, (None,))[0] != rg:
                cached[i] = (rg, self.files.read(i, rg, columns))  # one row group per file in memory
            cols = {k: v[a:b] for k, v in cached[i][1].items()}
            where = str(self.files.paths[i])
            kept, lab, w = self._rows(cols, where)
            if not len(kept):
                continue
            part = {k: cols[k][kept] for k in self.inputs}
            if "tokens" in part:
                part["tokens"] = part["tokens"].astype(np.int64)  # embedding indices
            if "tokens" in part and part["tokens"].ndim == 2:
                part["tokens"] = part["tokens"][..., None]  # flat layout: Q = 1
            if "tokens" in part and (part["tokens"].max() >= self.files.vocabulary.size or part["tokens"].min() < 0):
                raise InputFileError(f"{where}: token ids outside the vocabulary 0..{self.files.vocabulary.size - 1}")
            if not self.keep_unlabelled:  # pretraining reads every object; a task's model reads its collections
                part = T.restrict(self.task, part, self.files.set, where)
            part["label"] = lab[kept]
            part["weight"] = (w[kept] * (factors[np.maximum(lab[kept], 0)] if self.task is not None else 1.0)).astype(
                np.float32
            )
            yield part

    def _batches(self, parts: Iterator[dict]) -> Iterator[dict]:
        carry = None
        for part in parts:
            rows = part if carry is None else {k: np.concatenate([carry[k], part[k]]) for k in part}
            n = len(rows["label"])
            full = n // self.batch_size * self.batch_size
            for s in range(0, full, self.batch_size):
                yield trim({k: v[s : s + self.batch_size] for k, v in rows.items()})
            carry = {k: v[full:] for k, v in rows.items()} if full < n else None
        if carry is not None and not self.equal_batches:
            yield trim(carry)

    @property
    def rank(self) -> int:
        """This process's DDP rank: given, else torch.distributed's (known only once DDP has started), else 0."""
        if self._rank is not None:
            return self._rank
        import torch.distributed as dist

        return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0

    @property
    def world_size(self) -> int:
        if self._world is not None:
            return self._world
        import torch.distributed as dist

        return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1

    @property
    def equal_batches(self) -> bool:
        """Every rank must take the same number of steps under DDP."""
        return self._equal or self.world_size > 1

    def _shard(self) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (info.num_workers, info.id) if info is not None else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def __len__(self) -> int:
        """Batches per pass on this rank (all workers together)."""
        per_rank = self.summary["rows"] // self.world_size
        n = per_rank // self.batch_size if self.equal_batches else -(-per_rank // self.batch_size)
        return min(n, self.max_batches) if self.max_batches else n

    def identities(self) -> np.ndarray:
        """64-bit fingerprints (`splits.fingerprint`) of every row this stream yields, in file order."""
        need = self.row_columns()
        out = []
        for i, p in enumerate(self.files.paths):
            for rg in range(self.files.row_groups[i].num_row_groups):
                cols = self.files.read(i, rg, need)
                kept, _, _ = self._rows(cols, str(p))
                out.append(splits.fingerprints_of_columns({k: v[kept] for k, v in cols.items()}))
        return np.concatenate(out) if out else np.zeros(0, np.uint64)

    def _load(self) -> tuple[dict, np.ndarray]:
        """The whole split in memory (model inputs, labels, loss weights) and each row's length, read once."""
        if self._memory is None:
            parts = list(self._parts(self._blocks(None, ordered=True)))
            if not parts:
                raise InputFileError(
                    f"{splits.NAMES[self.split]} split: no usable rows in {', '.join(map(str, self.files.paths[:3]))}"
                )
            rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            self._memory = (rows, in_memory.sequence_lengths(rows["mask"]))
        return self._memory

    def arrays(self) -> Iterator[dict]:
        """One pass of this shard as dicts of numpy arrays."""
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        shard, shards = self._shard()
        if self.in_memory:
            rows, lengths = self._load()
            for batch in in_memory.epoch(
                rows,
                lengths,
                self.batch_size,
                rng if self.shuffle else None,
                shard=shard,
                shards=shards,
                equal=self.equal_batches,
                max_batches=self.max_batches,
            ):
                yield trim(batch)
            return
        blocks = self._blocks(rng)[shard::shards]
        quota = None
        if self.equal_batches:
            info = get_worker_info()
            quota = len(self) // (info.num_workers if info is not None else 1)
        produced = 0
        while True:
            parts = self._parts(blocks)
            if self.shuffle:
                parts = mixing.shuffled(parts, self.buffer_rows, rng)
            before = produced
            for batch in self._batches(parts):
                if (quota is not None and produced >= quota) or (self.max_batches and produced >= self.max_batches):
                    return
                produced += 1
                yield batch
            if quota is None or produced >= quota or not blocks:
                return  # equal batches: a shard that ran out of rows starts its blocks again
            if produced == before:  # a whole pass gave nothing: going round again would never end
                raise InputFileError(
                    f"{splits.NAMES[self.split]} split, shard {shard} of {shards}: its blocks hold "
                    f"fewer usable rows than one batch of {self.batch_size} (other ranks have "
                    f"{quota} batches); use fewer devices, a smaller batch_size or smaller block_rows"
                )

    def __iter__(self):
        for b in self.arrays():
            yield {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in b.items()}


def trim(batch: dict) -> dict:
    """Drop trailing positions that are padding in every row of the batch (compact layouts pad at the end).

    Positions keep their indices from 0, so the model sees the same sequence, only shorter.
    """
    used = np.flatnonzero(batch["mask"].any(0))
    if not len(used) or used[-1] + 1 == batch["mask"].shape[1]:
        return batch
    length = used[-1] + 1
    return {k: (v[:, :length] if k in T.POSITIONAL else v) for k, v in batch.items()}


def read_split(
    files: TokenFiles,
    task: T.Task | None,
    split: str,
    extra: Sequence[str] = (),
    label_fraction: float = 1.0,
    label_seed: int = 0,
) -> dict[str, np.ndarray]:
    """All rows of a split in file order, with model inputs, labels, physics weights and `extra` columns
    (e.g. jet_pt, process, event_number) for evaluation: these never reach a model."""
    stream = TokenStream(
        files, task, split, batch_size=1 << 30, shuffle=False, label_fraction=label_fraction, label_seed=label_seed
    )
    stream.summary["class_factors"] = [1.0] * len(stream.summary["class_factors"])  # evaluation: physics weights
    columns = list(stream.inputs) + [
        c for c in set(stream.row_columns()) | set(extra) if c in files.columns and c not in stream.inputs
    ]
    parts = []
    for i, p in enumerate(files.paths):
        for rg in range(files.row_groups[i].num_row_groups):
            cols = files.read(i, rg, columns)
            kept, lab, w = stream._rows(cols, str(p))
            part = {k: cols[k][kept] for k in cols}
            part["label"], part["weight"] = lab[kept], w[kept]
            parts.append(T.restrict(task, part, files.set, str(p)))
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if "tokens" in out and out["tokens"].ndim == 2:
        out["tokens"] = out["tokens"][..., None]
    return out


def model_inputs(rows: dict) -> dict:
    """Only what a model may see (DESIGN.md): tokens or features, type ids, mask."""
    return {k: rows[k] for k in T.POSITIONAL if k in rows}


def describe(stream: TokenStream) -> str:
    return json.dumps({"split": splits.NAMES[stream.split], **stream.summary})
