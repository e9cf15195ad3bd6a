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
from ..datamodules import TokenFiles, TokenStream, read_split
from ..datamodules.tasks import Task
from ..diagnostics import label_proxies, leakage
from ..formatting import fmt
from ..io.tokens import list_column, nested_list
from ..sequences import Layout, Sequences, TokenizerSet
from . import names, seeds, stages


def _rewrite(src_files: list[Path], out_dir: Path, transform, metadata_update=None) -> Path:
    """Copies of token files with (tokens, type_ids, mask) replaced by `transform(seq, table) -> Sequences`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in src_files:
        table = pq.read_table(path)
        seq = transform(
            Sequences(list_column(table, "tokens"), list_column(table, "type_ids"), list_column(table, "mask")), table
        )
        for name, values in (("tokens", seq.tokens), ("type_ids", seq.type_ids), ("mask", seq.mask)):
            table = table.set_column(table.schema.get_field_index(name), name, nested_list(values))
        meta = dict(table.schema.metadata or {})
        if metadata_update:
            meta.update({f"treasure.{k}".encode(): v.encode() for k, v in metadata_update.items()})
        pq.write_table(table.replace_schema_metadata(meta), out_dir / path.name, compression="zstd")
    return out_dir


VARIANTS = ("structure", "shuffled", "fixed_slots")
#: rows built to carry less than the full tokens (codes removed, shuffled, or the layout's SEP / type ids dropped):
#: one that stays at the class prior after early stopping has fired (with the extra patience a classifier gets
#: above the prior) has answered "not learnable from this input at this sample size", not failed to train. The
#: headline models (tokens, raw features) must leave the prior.
CONTROLS = VARIANTS


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
            _rewrite(
                files,
                out,
                lambda s, t: Sequences(
                    leakage.constant_per_type(s.tokens, s.type_ids, s.mask, first), s.type_ids, s.mask
                ),
            )
        elif kind == "shuffled":
            _shuffled(files, out, seed=seed)
        else:
            fixed = TokenizerSet(ts.vocabulary, ts.groups, Layout(ts.layout.tokens, "fixed", sep=False, type_ids=False))
            _rewrite(
                files, out, lambda s, t: fixed.assemble(_local_by_group(ts, s)), {"layout": fixed.metadata()["layout"]}
            )

    return run.stage(
        f"leakage-{kind}",
        {"tokens": stages.identity(token_dir), "kind": kind, "seed": seed, "code": stages.code("leakage")},
    )(build)


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
            out[groups[0].name] = idx[:, : groups[0].slots]
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
        table = table.set_column(
            table.schema.get_field_index("tokens"), "tokens", nested_list(tokens[start : start + n])
        )
        pq.write_table(table, out_dir / path.name, compression="zstd")
        start += n
    return out_dir


def multiplicity_row(run, task: Task) -> dict:
    """Row 1: gradient-boosted trees on object counts per type and the sequence length (early-stopped on val:
    it has converged when early stopping ended it before its iteration budget)."""
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    parts = {name: read_split(files, task, name) for name in splits.NAMES}
    n_types = max(files.vocabulary.type_ids.values())
    feats = np.concatenate([leakage.multiplicity_features(p["type_ids"], p["mask"], n_types) for p in parts.values()])
    labels = np.concatenate([p["label"] for p in parts.values()])
    weights = np.concatenate([p["weight"] for p in parts.values()])
    split = np.concatenate([np.full(len(p["label"]), i) for i, p in enumerate(parts.values())])
    out = leakage.multiplicity_classifier(
        feats, labels, weights, split, seed=run.params["study"]["seed"], max_iter=MULTIPLICITY_MAX_ITER
    )
    summary = dict(out["summary"])
    summary["converged"] = summary["n_iter"] < MULTIPLICITY_MAX_ITER
    if seeds.is_flavour(task):
        from ..metrics.flavour import B, discriminant_b
        from ..metrics.roc import auc_uncertainty

        params = stages.run_params(run)
        test_labels, test_weights = labels[split == 2], weights[split == 2]
        stats = seeds.statistic(task, params.classify)(test_labels, out["scores"], test_weights)
        summary["fom"] = stats[seeds.figure_of_merit(task)[0]]
        summary["auc_b"] = stats["auc_b"]
        d_b = discriminant_b(out["scores"], params["classify"]["f_c"], seeds.f_tau(task, params.classify))  # as auc_b's
        summary["auc_b_err"] = auc_uncertainty(test_labels == B, d_b, test_weights)
    return summary


MULTIPLICITY_MAX_ITER = 300


def jobs(run, task: Task) -> list[dict]:
    """The classifiers of one leakage report: each rewritten-token row (one seed) beside the headline models."""
    first_seed = run.params["classify"]["seeds"][0]
    return [
        dict(
            name=f"{task.name}-leakage-{kind}",
            token_dir=variant_files(run, kind),
            seed=first_seed,
            classify={"task": task.name, "mode": "scratch", "inputs": "tokens"},
            log_as=f"leakage.{task.name}.{kind}",
        )
        for kind in VARIANTS
    ]


def _row(numbers: dict, prefix: str, key: str, stat: str | None, control: bool = False) -> dict:
    """A rewritten-token row. A control (`CONTROLS`) has finished learning when its early stopping fired, even at the
    class prior (`at_prior`: what it reads says nothing about the label); any other row must also leave the prior."""
    get = lambda short: numbers.get(f"{prefix}.{short}")  # noqa: E731
    auc = get(key)
    stopped = get("early_stopped")
    converged = bool(stopped) if control and stopped is not None else bool(get("converged"))
    return {
        "auc": auc,
        "auc_err": get(f"{key}_err") if get(f"{key}_err") is not None else float("nan"),
        "converged": converged,
        "at_prior": get("left_prior") == 0.0,
        "fom": get(stat) if stat else None,
    }


def leakage_auc(task: Task) -> str:
    """The AUC a leakage table compares rows by: b vs rest for flavour (a macro AUC would let a few dozen tau jets
    set the shape fraction), the ROC AUC of a binary task, the macro AUC of other multi-class tasks."""
    return "auc_b" if seeds.is_flavour(task) else "auc" if task.binary else "auc_macro"


def report(run, task_name: str | None = None) -> dict:
    """Every row of the leakage table (training what is missing, several at once), the verdict and the data checks."""
    params = stages.run_params(run)
    task = Task.from_params(params.classify, task_name)
    key = leakage_auc(task)
    stat, quantity = seeds.figure_of_merit(task)
    fom = stat if seeds.is_flavour(task) else None
    variant_jobs = jobs(run, task)
    # the study's task: every seed, and chapter 06's decoded model too, all trained together; another task: one seed
    own = params["classify"]["seeds"] if task.name == params["classify"]["task"] else params["classify"]["seeds"][:1]
    headline = seeds.jobs(
        run,
        task.name,
        ["tokens", "raw", "decoded"] if task.name == params["classify"]["task"] else ["tokens", "raw"],
        seeds=own,
    )
    numbers = stages.classifiers(run, variant_jobs + headline)
    counted = multiplicity_row(run, task)  # compared by the table's AUC, like every other row
    if key in counted:  # flavour: b vs rest (the summary's own "auc" is the macro one)
        counted = {**counted, "auc": counted[key], "auc_err": counted.get(f"{key}_err", float("nan"))}
    rows = {"multiplicity": counted}
    for kind, found in zip(VARIANTS, numbers[: len(VARIANTS)]):
        rows[kind] = _row(found, f"leakage.{task.name}.{kind}", key, fom, control=kind in CONTROLS)
    models = seeds.load(run, task.name, ["tokens", "raw"], seeds=own)
    for kind, variant in (("tokens", "tokens"), ("raw", "raw")):
        s = models.summary(variant)
        rows[kind] = {
            "auc": s[key],
            "auc_err": s[f"{key}_err"],
            "converged": models.converged(variant),
            "fom": s.get(fom) if fom else None,
        }
    table = leakage.leakage_table(rows)
    metrics = {}
    for row in table:
        if row["auc"] is not None and np.isfinite(row["auc"]):
            metrics[f"leakage.{task.name}.{row['key']}.{key}"] = float(row["auc"])
            metrics[f"leakage.{task.name}.{row['key']}.{key}_err"] = float(row["auc_err"])
            if row["converged"] is not None:
                metrics[f"leakage.{task.name}.{row['key']}.converged"] = float(row["converged"])
    metrics[f"leakage.{task.name}.shape_fraction"] = leakage.shape_fraction(table)
    run.log_metrics(metrics)
    return {
        "table": table,
        "verdict": leakage.leakage_verdict(table, quantity if fom else None),
        "metrics": metrics,
        "checks": checks(run),
        "fom": fom,
        "quantity": quantity,
        "auc": names.statistic(key),
    }


def _find(numbers: dict, key: str) -> str:
    return next(k for k in numbers if k.endswith("." + key) and ".label_fraction_" not in k and ".pt_bin_" not in k)


def row_records(run) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{stage: (row fingerprints, split codes)} of every row each trained stage of the run *read*: the tokenizer
    fit's training rows, pretraining's train and val rows, every classifier's train, val and test rows."""
    records = {}
    fit = run.artifacts / "tokenizers" / stages.FIT_ROWS
    found = [("tokenizer fit", fit)] + [
        (path.parent.name if path.parent.parent == run.artifacts else path.relative_to(run.artifacts).parts[0], path)
        for path in sorted(run.artifacts.glob("*/**/rows_read.npz"))
    ]
    for stage, path in found:
        if not path.is_file():
            continue
        with np.load(path) as z:
            ids = [z[k] for k in z.files]
            codes = [np.full(len(z[k]), splits.parse(k)) for k in z.files]
        records[stage] = (np.concatenate(ids), np.concatenate(codes))
    return records


def proxy_inputs(files: TokenFiles, rows: dict) -> dict[str, np.ndarray]:
    """Per-row views of what a model reads: the leading object's code at each level of each collection, each
    collection's multiplicity, and the sequence length."""
    out = {"sequence length": rows["mask"].sum(1)}
    for name, type_id in files.vocabulary.type_ids.items():
        if name == "special":
            continue
        here = (rows["type_ids"] == type_id) & rows["mask"]
        out[f"{name} multiplicity"] = here.sum(1)
        first = np.argmax(here, axis=1)
        has = here.any(1)
        for q in range(rows["tokens"].shape[2]):
            code = rows["tokens"][np.arange(len(first)), first, q]
            if (code[has] > 4).any():
                out[f"{name} leading code, level {q + 1}"] = np.where(has, code, -1)
    return out


def checks(run, task_name: str | None = None) -> dict:
    """The data checks: no row in two splits across everything the run's stages read (a LeakageError, which stops
    the chapter, when one is); no model input that is sample bookkeeping by name, nor one that tells the sample
    apart beyond what the label explains."""
    params = stages.run_params(run)
    records = row_records(run)
    expected = {"tokenizer fit": ["train"], "pretrain": ["train", "val"]}
    split_report = splits.check_disjoint_splits(records, expected={k: v for k, v in expected.items() if k in records})
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    task = Task.from_params(params.classify, task_name)
    batch = next(TokenStream(files, task, "train", 64, shuffle=False).arrays())
    names = label_proxies.check_no_label_proxy(sorted(set(batch) - {"label", "weight"}))  # what a model batch holds
    rows = read_split(files, task, "train", extra=["process"])
    keep = np.random.default_rng(0).permutation(len(rows["label"]))[:PROXY_ROWS]
    rows = {k: v[keep] for k, v in rows.items()}
    scores = label_proxies.proxy_scores(proxy_inputs(files, rows), rows["process"], rows["label"])
    flagged = {k: v for k, v in scores.items() if v >= label_proxies.PROXY_THRESHOLD}
    return {
        "splits": split_report,
        "label_proxies": names,
        "proxy_scores": scores,
        "proxies": flagged,
        "stages_checked": sorted(records),
    }


PROXY_ROWS = 20_000  # training rows the proxy scores are measured on


def table_rows(rep: dict) -> list[dict]:
    """The leakage table as the chapter shows it: inputs, AUC, the figure of merit (flavour), finished learning."""
    out = []
    for row in rep["table"]:
        if row["auc"] is None:
            continue
        shown = {"": row["row"], "inputs": row["name"], rep.get("auc", "AUC"): fmt(row["auc"], row["auc_err"])}
        if rep["fom"]:
            shown[names.statistic(rep["fom"])] = fmt(row["fom"]) if row["fom"] is not None else "—"
        shown["finished learning"] = {True: "yes", False: "no", None: "—"}[row["converged"]]
        if row["converged"] and row.get("at_prior"):
            shown["finished learning"] = "yes (validation loss at the class prior)"
        out.append(shown)
    return out


def checked_stages(stages_checked: list[str]) -> str:
    """What the split check read, from the stage names `row_records` gives (a chapter sees the stages built before
    it: chapter 04 runs before pretraining)."""
    parts = ["the tokenizer fit's rows"] if "tokenizer fit" in stages_checked else []
    backbones = sum(name.startswith("pretrain") for name in stages_checked)
    classifiers = sum(name.startswith("classify") for name in stages_checked)
    if backbones:
        parts.append(f"the train and validation rows of {backbones} pretraining{'s' if backbones > 1 else ''}")
    if classifiers:
        parts.append(f"the train, validation and test rows of {classifiers} classifier{'s' if classifiers > 1 else ''}")
    return "; ".join(parts) or "nothing yet"


def checks_sentence(checks: dict) -> str:
    """What the data checks found, in words."""
    s = checks["splits"]
    text = (
        f"Split check: {s['n_identities']} event identities (one per event, whatever it holds: the split assigns "
        f"whole events) across what {len(checks['stages_checked'])} stages built so far read "
        f"({checked_stages(checks['stages_checked'])}), {s['n_overlapping']} of them in two splits"
    )
    text += "." if s["ok"] else f"; {', '.join(f'{k} reads {v}' for k, v in s['unexpected'].items())}."
    top = sorted(checks["proxy_scores"].items(), key=lambda kv: -kv[1])[:3]
    text += (
        f" Label-proxy check: a model batch holds {', '.join(f'`{c}`' for c in checks['label_proxies'])} and "
        f"nothing else. Of what those inputs say, the most that any one explains of which sample a row came from, "
        f"beyond its label, is "
        + ", ".join(f"{name} {score:.2f}" for name, score in top)
        + " (1 would name the sample; physics that differs between processes scores well below)"
    )
    if checks["proxies"]:
        text += (
            ": **"
            + ", ".join(checks["proxies"])
            + f" explain(s) at least {label_proxies.PROXY_THRESHOLD:.0%} and act as "
            "a label proxy**."
        )
    else:
        text += f"; none reaches {label_proxies.PROXY_THRESHOLD:.0%}."
    return text
