"""`treasure export`: H5 -> token Parquet (+ raw-features Parquet, + heptokens npz for jets), streamed.

Exactly the cards the params sections name are used (`TokenizerSet.from_params`). One output per input file,
named by the input's stem and a hash of its resolved path (so same-named inputs from two folders
never collide), written atomically. An existing output is reused only if it records the same card
hashes and derived columns (with their params); otherwise it is redone. Reading the next chunk overlaps
with encoding the current one.

`export.derived` adds per-row analysis columns computed from the same rows (e.g. `h4l`: the H -> 4l selection's
masses, angles and pass flags, `treasure_lib.higgs4l.derived_columns`) to every output of the file. They are
bookkeeping for task selections (`classify.tasks.<name>.require`) and baselines, never model inputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import splits
from ..config import DataParams, ExportParams, SelectionParams, SequenceParams, StudyParams, TokenizerParams
from ..errors import ConfigError, InputFileError
from ..io.h5 import count_rows, expand_files
from ..io.prefetch import prefetch
from ..io.reader import H5Stream
from ..io.selection import class_names
from ..io.tokens import SAMPLE_COLUMNS, NpzWriter, TokenWriter, read_metadata, token_table
from ..object_collections import from_data
from ..progress import shown
from ..runs import atomic
from ..sequences import TokenizerSet

log = logging.getLogger(__name__)
CPU_BATCH, GPU_BATCH = 4096, 65536  # rows encoded per step when export.batch_size is null


def _h4l(batch, h4l) -> dict:
    from ..higgs4l import derived_columns

    return derived_columns(batch, h4l)


#: export.derived name -> (function of (batch, the selection block it reads) giving per-row columns, that block's key
#: in the `selection` section)
DERIVED = {"h4l": (_h4l, "h4l")}


def check_derived(export: ExportParams) -> list[str]:
    """The `export.derived` names, each known (an unknown one is an error listing the known ones)."""
    names = list(export.derived or [])
    unknown = [n for n in names if n not in DERIVED]
    if unknown:
        raise ConfigError(f"export.derived names {unknown}; known derived column sets: {', '.join(DERIVED)}")
    return names


def derived_record(export: ExportParams, selection: SelectionParams) -> dict:
    """What the derived columns depend on: {name: the selection block it reads} (the outputs' `derived` metadata)."""
    record = {}
    for name in check_derived(export):
        record[name] = selection[DERIVED[name][1]]
    return json.loads(json.dumps(atomic.jsonable(record)))  # as the metadata will read back


def _heap_trimmer():
    """glibc keeps freed chunks in per-thread arenas (the prefetch thread has its own), so resident
    memory creeps up chunk after chunk; malloc_trim hands them back. A no-op without glibc."""
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    return lambda: trim(0)


release_free_memory = _heap_trimmer()


def versions() -> dict[str, str]:
    out = {}
    for pkg in ("treasure-lib", "vector-quantize-pytorch", "torch", "numpy", "pyarrow"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def output_key(path: Path) -> str:
    """`<stem>-<8 hex of the resolved path>`: unique per input file, stable across runs."""
    return f"{path.stem}-{hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:8]}"


def token_sets(
    study: StudyParams,
    data: DataParams,
    tokenizer: TokenizerParams,
    export: ExportParams,
    sequence: SequenceParams,
    *,
    device: str = "cpu",
) -> dict[str, TokenizerSet]:
    """{"": the study's set} or, in `separate` mode, {card: a set of that card alone}."""
    sections = (study, data, tokenizer, export, sequence)
    full = TokenizerSet.from_params(*sections, device=device)
    if tokenizer.mode != "separate":
        return {"": full}
    return {card: TokenizerSet.from_params(*sections, device=device, only=[card]) for card in full.tokenizers}


def _outputs(
    path: Path, out_dir: Path, sets: Mapping[str, TokenizerSet], study: StudyParams, export: ExportParams
) -> dict:
    key = output_key(path)
    e = export
    plan = {}
    for name in sets:
        base = out_dir / (f"{key}.{name}" if name else key)
        plan[name] = {
            "tokens": base.with_name(base.name + ".tokens.parquet"),
            "features": base.with_name(base.name + ".features.parquet") if e["features"] else None,
            "decoded": base.with_name(base.name + ".decoded.parquet") if e["decoded"] else None,
        }
    vq = [c for c, t in sets[next(iter(sets))].tokenizers.items() if t.kind != "binning"]
    npz = out_dir / f"{key}.npz" if e["npz"] and study.kind == "jets" and len(sets) == 1 and len(vq) == 1 else None
    return {"sets": plan, "npz": npz, "npz_card": vq[0] if npz else None}


def _current(plan: dict, sets: Mapping[str, TokenizerSet]) -> bool:
    """Every output exists and was made with the same cards (by hash)."""
    for name, files in plan["sets"].items():
        want = {c: i["hash"] for c, i in sets[name].cards.items()}
        for f in files.values():
            if f is None:
                continue
            if not f.exists():
                return False
            try:
                made = {c: i["hash"] for c, i in json.loads(read_metadata(f)["cards"]).items()}
            except (InputFileError, KeyError, ValueError):
                return False
            if made != want:
                log.info("%s was made with other cards; re-exporting", f)
                return False
    if plan["npz"] is not None:
        if not plan["npz"].exists():
            return False
        with np.load(plan["npz"]) as z:
            if "card_hash" not in z or str(z["card_hash"]) != next(iter(sets.values())).cards[plan["npz_card"]]["hash"]:
                return False
    return True


def _derived_current(plan: dict, record: dict) -> bool:
    """Every output holds exactly the derived column sets asked for, made with the same params."""
    for files in plan["sets"].values():
        for f in files.values():
            if f is not None and json.loads(read_metadata(f).get("derived", "{}")) != record:
                log.info("%s holds other derived columns; re-exporting", f)
                return False
    return True


def _metadata(
    ts: TokenizerSet, data: DataParams, export: ExportParams, selection: SelectionParams, out: Path, kind: str
) -> dict[str, str]:
    meta = ts.metadata()
    cards = {
        n: {"hash": i["hash"], "path": str(Path(_relative(Path(i["path"]), out.parent)))} for n, i in ts.cards.items()
    }
    meta.update(
        {
            "cards": json.dumps(cards),
            "split": json.dumps(splits.SplitSpec.from_data(data).to_dict()),
            "labels": json.dumps(class_names(data.label)),
            "versions": json.dumps(versions()),
            "content": kind,
            "derived": json.dumps(derived_record(export, selection), sort_keys=True),
        }
    )
    return meta


def _relative(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


def _columns(batch, export: ExportParams, selection: SelectionParams) -> tuple[dict, dict]:
    """Per-row columns and per-file constants of a batch (labels, weights, split, identity, sample normalisation)."""
    meta = batch.metadata
    columns = {
        "label": batch.labels.astype(np.int64),
        "weight": batch.weights.astype(np.float32),
        "split": splits.names(batch.split).astype(str),
        "event_index": batch.event_index.astype(np.int64),
        "event_number": batch.event_number.astype(np.int64),
    }
    for name, spec in export.columns.items():
        coll, _, feature = str(spec).partition(".")
        if coll not in batch.collections or feature not in batch[coll].names or batch[coll].features.shape[1] != 1:
            raise ConfigError(
                f"export.columns.{name} = {spec!r}: expected '<scalar collection>.<feature>' read by the "
                f"study (collections: {', '.join(batch.collections)})"
            )
        columns[name] = batch[coll].feature(feature)[:, 0].astype(np.float32)
    for derived in check_derived(export):
        compute, block = DERIVED[derived]
        for name, values in compute(batch, selection[block]).items():
            if name in columns:
                raise ConfigError(
                    f"export.derived {derived!r} writes column {name!r}, which export.columns (or the "
                    f"token file itself) already has"
                )
            if len(values) != len(batch):
                raise ConfigError(
                    f"export.derived {derived!r}: column {name!r} has {len(values)} values for "
                    f"{len(batch)} rows of {batch.source_file}"
                )
            columns[name] = values
    constants = {"source_file": str(batch.source_file)}
    constants.update({k: meta[k] for k in SAMPLE_COLUMNS if k in meta})
    n_gen = meta.get("n_events")
    constants["n_events_generated"] = int(n_gen) if n_gen is not None else -1
    sow = meta.get("sum_of_weights", n_gen)  # unweighted samples: the sum of weights is the event count
    constants["sum_of_weights"] = float(sow) if sow is not None else float("nan")
    return columns, constants


def export_file(
    path: Path,
    sets: Mapping[str, TokenizerSet],
    study: StudyParams,
    data: DataParams,
    export: ExportParams,
    selection: SelectionParams,
    out_dir: Path,
    bar=None,
) -> dict:
    """Export one H5 file; returns what was written and how fast."""
    e = export
    plan = _outputs(path, out_dir, sets, study, export)
    outputs = [str(f) for files in plan["sets"].values() for f in files.values() if f is not None]
    outputs += [str(plan["npz"])] if plan["npz"] is not None else []
    if not e["overwrite"] and _current(plan, sets) and _derived_current(plan, derived_record(export, selection)):
        return {"file": str(path), "skipped": True, "outputs": outputs}
    on_gpu = any(
        getattr(t, "device", None) is not None and t.device.type == "cuda"
        for ts in sets.values()
        for t in ts.tokenizers.values()
    )
    batch_size = e["batch_size"] or (GPU_BATCH if on_gpu else CPU_BATCH)
    writers = []
    for name, files in plan["sets"].items():
        ts = sets[name]
        w_tok = TokenWriter(
            files["tokens"], _metadata(ts, data, export, selection, files["tokens"], "tokens"), e["row_group_size"]
        )
        extra = {
            kind: TokenWriter(
                files[kind], _metadata(ts, data, export, selection, files[kind], kind), e["row_group_size"]
            )
            for kind in ("features", "decoded")
            if files[kind] is not None
        }
        writers.append((ts, w_tok, extra))
    npz = None
    if plan["npz"] is not None:
        tok = sets[""].tokenizers[plan["npz_card"]]
        group = sets[""].groups_of(plan["npz_card"])[0]
        npz = NpzWriter(plan["npz"], group.slots, tok.num_quantizers)
    collections = from_data(data)
    stream = H5Stream.from_data(data, collections, files=[path])
    t0, rows = time.perf_counter(), 0
    try:
        for batch in prefetch(stream):
            columns, constants = _columns(batch, export, selection)
            for ts, w_tok, extra in writers:
                seq, local = ts.to_sequences(batch, batch_size)
                w_tok.write(token_table("tokens", seq.tokens, seq.type_ids, seq.mask, columns, constants))
                for kind, writer in extra.items():
                    raw = ts.features(batch) if kind == "features" else ts.decoded_features(batch, local)
                    writer.write(token_table("features", raw.tokens, raw.type_ids, raw.mask, columns, constants))
                if npz is not None and ts is sets[""]:
                    npz.write(local[sets[""].groups_of(plan["npz_card"])[0].name], batch.labels)
            rows += len(batch)
            release_free_memory()
            if bar is not None:
                bar.update(len(batch))
        for _, w_tok, extra in writers:
            w_tok.close()
            for writer in extra.values():
                writer.close()
        if npz is not None:
            tok = sets[""].tokenizers[plan["npz_card"]]
            npz.close(tok.codebooks(), extra={"card_hash": np.array(sets[""].cards[plan["npz_card"]]["hash"])})
    except BaseException:
        for _, w_tok, extra in writers:
            w_tok.abort()
            for writer in extra.values():
                writer.abort()
        if npz is not None:
            npz.abort()
        raise
    seconds = time.perf_counter() - t0
    return {
        "file": str(path),
        "skipped": False,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / max(seconds, 1e-9),
        "outputs": outputs,
    }


def tokens_dir(study: StudyParams, export: ExportParams) -> Path:
    out = export.output_dir
    return Path(out) if out else Path("runs") / study.kind / study.name / "artifacts" / "tokens"


def export(
    study: StudyParams,
    data: DataParams,
    tokenizer: TokenizerParams,
    export: ExportParams,
    sequence: SequenceParams,
    selection: SelectionParams,
    progress: bool = True,
) -> list[dict]:
    """Export every input file with the cards the params sections name."""
    e = export
    device = e["device"] if e["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    check_derived(export)
    sets = token_sets(study, data, tokenizer, export, sequence, device=device)
    files = expand_files(e["files"] or data.files)
    if not files:
        raise ConfigError("nothing to export: export.files and data.files are empty")
    keys = [output_key(f) for f in files]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"the same input file is listed twice in {[str(f) for f in files]}")
    out_dir = tokens_dir(study, export)
    first = next(iter(from_data(data).values()))
    total = sum(count_rows(f, first) for f in files)
    results = []
    with tqdm(total=total, unit="row", desc="export", disable=not shown(progress)) as bar:
        for f in files:
            results.append(export_file(f, sets, study, data, export, selection, out_dir, bar))
    return results
