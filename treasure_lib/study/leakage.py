"""The leakage report of a classification task: how much of its AUC the event shape alone explains.

Six rows, each with an uncertainty: (1) multiplicities only (object counts per type and the sequence
length, gradient-boosted trees); (2) the transformer on structure only (every code replaced by a
per-type constant); (3) codes shuffled across events within each type; (4) the fixed-slot layout
without SEP and type ids; (5) full tokens; (6) raw features. Rows 2-4 train the same classifier
as row 5 on rewritten copies of the token files, so only the information differs. Plus the data
checks: no event in two splits across stages, no label proxy among the model inputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .. import splits
from ..datamodules import INPUTS, TokenFiles, read_split
from ..datamodules.tasks import Task
from ..diagnostics import leakage
from ..io.tokens import list_column, nested_list
from ..sequences import Layout, Sequences, TokenizerSet
from . import stages


def _rewrite(src_files: list[Path], out_dir: Path, transform, metadata_update=None) -> Path:
    """Copies of token files with (tokens, type_ids, mask) replaced by `transform(seq, table) -> Sequences`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in src_files:
        table = pq.read_table(path)
        seq = transform(Sequences(list_column(table, "tokens"), list_column(table, "type_ids"), list_column(table, "mask")),
                        table)
        for name, values in (("tokens", seq.tokens), ("type_ids", seq.type_ids), ("mask", seq.mask)):
            table = table.set_column(table.schema.get_field_index(name), name, nested_list(values))
        meta = dict(table.schema.metadata or {})
        if metadata_update:
            meta.update({f"treasure.{k}".encode(): v.encode() for k, v in metadata_update.items()})
        pq.write_table(table.replace_schema_metadata(meta), out_dir / path.name, compression="zstd")
    return out_dir


VARIANTS = ("structure", "shuffled", "fixed_slots")


def variant_files(run, kind: str) -> Path:
    """Token files rewritten for one leakage row: structure, shuffled or fixed_slots (artifacts/leakage-<kind>,
    rebuilt whenever the run's token files change)."""
    if kind not in VARIANTS:
        raise ValueError(f"unknown leakage variant {kind!r}; known: {', '.join(VARIANTS)}")
    token_dir = stages.tokens(run)
    seed = run.params["study"]["seed"]
    files = sorted(token_dir.glob("*.tokens.parquet"))

    def build(out: Path) -> None:
        ts = TokenizerSet.from_metadata(json.loads(json.dumps(_meta(files[0]))), str(files[0]))
        if kind == "structure":
            first = {tid: [int(o) for o in ts.vocabulary.offsets(g.card)] for g in ts.groups for tid in [g.type_id]}
            _rewrite(files, out, lambda s, t: Sequences(leakage.constant_per_type(s.tokens, s.type_ids, s.mask, first),
                                                         s.type_ids, s.mask))
        elif kind == "shuffled":
            _shuffled(files, out, seed=seed)
        else:
            fixed = TokenizerSet(ts.vocabulary, ts.groups, Layout(ts.layout.tokens, "fixed", sep=False, type_ids=False))
            _rewrite(files, out, lambda s, t: fixed.assemble(_local_by_group(ts, s)), {"layout": fixed.metadata()["layout"]})

    return run.stage(f"leakage-{kind}", {"tokens": stages.identity(token_dir), "kind": kind, "seed": seed,
                                         "code": stages.code("leakage")})(build)


def _meta(path: Path) -> dict:
    from ..io.tokens import read_metadata

    return read_metadata(path)


def _local_by_group(ts: TokenizerSet, seq: Sequences) -> dict:
    """Each group's local indices from token rows (a card shared by several groups is split by type id)."""
    by_card = ts.split(seq)
    out = {}
    for card, idx in by_card.items():
        groups = ts.groups_of(card)
        if len(groups) == 1:
            out[groups[0].name] = idx[:, :groups[0].slots]
            continue
        # combined card: the objects come in sequence order, group after group; count them per group by type id
        level0 = seq.tokens[..., 0] if seq.tokens.ndim == 3 else seq.tokens
        start = 0
        counts = [((seq.type_ids == g.type_id) & seq.mask & (level0 >= 5)).sum(1) for g in groups]
        for g, n in zip(groups, counts):
            rows = np.arange(g.slots)[None, :] + start
            take = np.take_along_axis(idx, np.minimum(rows, idx.shape[1] - 1)[..., None], axis=1)
            out[g.name] = np.where((np.arange(g.slots)[None, :] < n[:, None])[..., None], take, -1)
            start = start + n[:, None]
    return out


def _shuffled(files: list[Path], out_dir: Path, seed: int) -> Path:
    """Codes shuffled across all events (all files of the split together) within each type; structure kept."""
    tables = [pq.read_table(p) for p in files]
    seqs = [Sequences(list_column(t, "tokens"), list_column(t, "type_ids"), list_column(t, "mask")) for t in tables]
    split = np.concatenate([splits.codes_from_names(t.column("split").to_pylist()) for t in tables])
    tokens = np.concatenate([s.tokens for s in seqs])
    types = np.concatenate([s.type_ids for s in seqs])
    mask = np.concatenate([s.mask for s in seqs])
    rng = np.random.default_rng(seed)
    for code in np.unique(split):  # never move codes between splits
        rows = split == code
        tokens[rows] = leakage.shuffle_within_type(tokens[rows], types[rows], mask[rows], rng)
    start = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, table in zip(files, tables):
        n = table.num_rows
        table = table.set_column(table.schema.get_field_index("tokens"), "tokens", nested_list(tokens[start:start + n]))
        pq.write_table(table, out_dir / path.name, compression="zstd")
        start += n
    return out_dir


def multiplicity_row(run, task: Task) -> dict:
    """Row 1: gradient-boosted trees on object counts per type and the sequence length."""
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    parts = {name: read_split(files, task, name) for name in splits.NAMES}
    n_types = max(files.vocabulary.type_ids.values())
    feats = np.concatenate([leakage.multiplicity_features(p["type_ids"], p["mask"], n_types) for p in parts.values()])
    labels = np.concatenate([p["label"] for p in parts.values()])
    weights = np.concatenate([p["weight"] for p in parts.values()])
    split = np.concatenate([np.full(len(p["label"]), i) for i, p in enumerate(parts.values())])
    out = leakage.multiplicity_classifier(feats, labels, weights, split, seed=run.params["study"]["seed"])
    return out["summary"]


def report(run, task_name: str | None = None) -> dict:
    """Every row of the leakage table (training what is missing), the verdict and the data checks."""
    params = stages.run_params(run)
    task = Task.from_params(params, task_name)
    key = "auc" if task.binary else "auc_macro"
    rows = {"multiplicity": multiplicity_row(run, task)}
    for kind in VARIANTS:
        folder = variant_files(run, kind)
        numbers = stages.classifier(run, name=f"{task.name}-leakage-{kind}", token_dir=folder, classify__task=task.name,
                                    classify__mode="scratch", classify__inputs="tokens")
        rows[kind] = {"auc": numbers[_find(numbers, key)], "auc_err": numbers.get(_find(numbers, key) + "_err", np.nan)}
    for kind, inputs in (("tokens", "tokens"), ("raw", "features")):
        numbers = stages.classifier(run, classify__task=task.name, classify__mode="scratch", classify__inputs=inputs)
        rows[kind] = {"auc": numbers[_find(numbers, key)], "auc_err": numbers.get(_find(numbers, key) + "_err", np.nan)}
    table = leakage.leakage_table(rows)
    metrics = {}
    for row in table:
        if row["auc"] is not None and np.isfinite(row["auc"]):
            metrics[f"leakage.{task.name}.{row['key']}.auc"] = float(row["auc"])
            metrics[f"leakage.{task.name}.{row['key']}.auc_err"] = float(row["auc_err"])
    shape = max(float(rows[k]["auc"]) for k in ("multiplicity", "structure", "shuffled"))
    full = float(rows["tokens"]["auc"])
    metrics[f"leakage.{task.name}.shape_fraction"] = (shape - 0.5) / (full - 0.5) if full > 0.5 else float("nan")
    run.log_metrics(metrics)
    return {"table": table, "verdict": leakage.leakage_verdict(table), "metrics": metrics, "checks": checks(run)}


def _find(numbers: dict, key: str) -> str:
    return next(k for k in numbers if k.endswith("." + key) and ".label_fraction_" not in k and ".pt_bin_" not in k)


def checks(run) -> dict:
    """No event in two splits across tokenizer fit (H5 train rows), token files and any reader; no label proxy."""
    params = stages.run_params(run)
    from ..io.reader import H5Stream

    fit = H5Stream.from_params(params, select_split=splits.TRAIN)
    fit_ids = [(str(b.metadata.get("dsid", b.source_file)), int(e)) for b in fit for e in b.event_number]
    token_files = sorted(stages.tokens(run).glob("*.tokens.parquet"))
    rows = []
    for path in token_files:
        t = pq.read_table(path, columns=["dsid", "event_number", "split"] if "dsid" in pq.read_schema(path).names
                          else ["source_file", "event_number", "split"])
        sample = t.column(0).to_numpy(zero_copy_only=False).astype(str)
        rows.append((sample, t.column("event_number").to_numpy(), splits.codes_from_names(t.column("split").to_pylist())))
    sample = np.concatenate([r[0] for r in rows])
    numbers = np.concatenate([r[1] for r in rows])
    codes = np.concatenate([r[2] for r in rows])
    ids = np.char.add(np.char.add(sample, ":"), numbers.astype(str))
    fit_keys = np.array([f"{s}:{e}" for s, e in fit_ids])
    report_ = leakage.check_disjoint_splits({"tokenizer_fit": (fit_keys, np.zeros(len(fit_keys), int)),
                                             "tokens": (ids, codes)}, raise_error=False)
    proxies = leakage.check_no_label_proxy(list(INPUTS["tokens"]))
    return {"splits": report_, "label_proxies": proxies}

