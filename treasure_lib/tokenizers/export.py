"""`treasure export`: H5 -> token Parquet (and, for jets, the heptokens-style npz), streamed.

One output per input file (so exports resume and parallelise), written atomically. Reading
the next chunk overlaps with encoding the current one; encoding is index-only (no one-hot).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from tqdm import tqdm

from ..collections import Collection, from_params
from ..errors import ConfigError, InputFileError
from ..io.h5 import H5Stream, count_rows, expand_files
from ..io.prefetch import prefetch
from ..io.tokens import NpzWriter, TokenWriter, Vocabulary, to_global, token_table
from .card import Tokenizer, card_hash, load
from .train import COMBINED, to_combined, tokenizer_dir

log = logging.getLogger(__name__)
CPU_BATCH, GPU_BATCH = 4096, 65536  # rows encoded per step when export.batch_size is null


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


def load_cards(params: Mapping, device: str = "cpu") -> dict[str, Tokenizer]:
    """Every card under the cards folder, in the order the collections are configured."""
    root = Path(params["export"]["cards_dir"] or tokenizer_dir(params))
    found = {p.parent.parent.name: p for p in sorted(root.glob("*/card/card.json"))}
    if not found:
        raise InputFileError(f"{root}: no tokenizer cards (<collection>/card/card.json); run `treasure train-tokenizer` first")
    order = list(from_params(params)) + [COMBINED]
    names = sorted(found, key=lambda n: order.index(n) if n in order else len(order))
    backend = params["export"]["backend"]
    return {n: load(found[n].parent, device=device, backend=backend) for n in names}


def vocabulary_for(tokenizers: Mapping[str, Tokenizer]) -> Vocabulary:
    vocab = Vocabulary()
    for name, tok in tokenizers.items():
        kind = "binned" if tok.kind == "binning" else tok.kind
        vocab.add(name, tok.collection["type_id"], tok.num_quantizers, tok.codebook_size, kind,
                  tok.features if tok.kind == "binning" else None)
    return vocab


def encode_in_batches(tok: Tokenizer, features: np.ndarray, mask: np.ndarray, batch_size: int) -> np.ndarray:
    out = np.empty(mask.shape + (tok.num_quantizers,), dtype=np.int64)
    for start in range(0, len(mask), batch_size):
        sl = slice(start, start + batch_size)
        out[sl] = tok.encode(features[sl], mask[sl])
    return out


def sequence(batch, tokenizers: Mapping[str, Tokenizer], collections: Mapping[str, Collection], vocab: Vocabulary,
             batch_size: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Tokens [n, L, Q] (global ids), type ids and mask [n, L], and each collection's local indices."""
    Q = max(t.num_quantizers for t in tokenizers.values())
    parts_tok, parts_type, parts_mask, local = [], [], [], {}
    for name, tok in tokenizers.items():
        if name == COMBINED:
            oa = to_combined(batch, {n: collections[n] for n in tok.collection["members"]})
            type_ids = np.where(oa.mask, oa.feature("type"), 0).astype(np.int32)
        else:
            if name not in batch.collections:
                raise InputFileError(f"{where}: a tokenizer card exists for collection '{name}', which the data set does not read")
            oa = batch[name]
            type_ids = np.where(oa.mask, tok.collection["type_id"], 0).astype(np.int32)
        cols = tok.check_features(oa.names, where)
        idx = encode_in_batches(tok, oa.features[..., cols], oa.mask, batch_size)
        local[name] = idx
        ids = to_global(idx, vocab.offsets(name))
        if ids.shape[-1] < Q:  # binned scalars with fewer levels: pad the group with PAD
            ids = np.pad(ids, ((0, 0), (0, 0), (0, Q - ids.shape[-1])))
        parts_tok.append(ids)
        parts_type.append(type_ids)
        parts_mask.append(oa.mask)
    return np.concatenate(parts_tok, 1), np.concatenate(parts_type, 1), np.concatenate(parts_mask, 1), local


def outputs_for(path: Path, out_dir: Path, separate: list[str] | None) -> list[Path]:
    if separate:
        return [out_dir / f"{path.stem}.{name}.parquet" for name in separate]
    return [out_dir / f"{path.stem}.parquet"]


def export_file(path: Path, tokenizers: Mapping[str, Tokenizer], params: Mapping, out_dir: Path, bar=None) -> dict:
    """Export one H5 file; returns what was written and how fast."""
    e = params["export"]
    collections = from_params(params)
    separate = list(tokenizers) if params["tokenizer"]["mode"] == "separate" else None
    outs = outputs_for(path, out_dir, separate)
    npz_path = out_dir / f"{path.stem}.npz"
    object_toks = [n for n, t in tokenizers.items() if t.kind != "binning" and n != COMBINED]
    want_npz = e["npz"] and params["study"]["kind"] == "jets" and len(object_toks) == 1
    if not e["overwrite"] and all(o.exists() for o in outs) and (not want_npz or npz_path.exists()):
        return {"file": str(path), "skipped": True, "outputs": [str(o) for o in outs]}
    hashes = {n: card_hash(t.card_path) for n, t in tokenizers.items()}
    on_gpu = any(getattr(t, "device", None) is not None and t.device.type == "cuda" for t in tokenizers.values())
    batch_size = e["batch_size"] or (GPU_BATCH if on_gpu else CPU_BATCH)
    groups = {n: {n: t} for n, t in tokenizers.items()} if separate else {"all": dict(tokenizers)}
    writers = {}
    for (key, toks), out in zip(groups.items(), outs):
        vocab = vocabulary_for(toks)
        levels = max(t.num_quantizers for t in toks.values())
        writers[key] = (TokenWriter(out, vocab, e["layout"], {n: hashes[n] for n in toks}, levels, e["row_group_size"]), toks, vocab)
    npz = None
    if want_npz:
        tok = tokenizers[object_toks[0]]
        npz = NpzWriter(npz_path, tok.collection["max_objects"], tok.num_quantizers)
    stream = H5Stream.from_params(params, collections, files=[path])
    t0, rows = time.perf_counter(), 0
    try:
        for batch in prefetch(stream):
            for writer, toks, vocab in writers.values():
                tokens, types, mask, local = sequence(batch, toks, collections, vocab, batch_size, str(path))
                writer.write(token_table(tokens, types, mask, batch.labels, batch.weights, batch.event_index,
                                         str(path), batch.metadata, e["layout"]))
                if npz is not None and object_toks[0] in local:
                    npz.write(local[object_toks[0]], batch.labels)
            rows += len(batch)
            release_free_memory()
            if bar is not None:
                bar.update(len(batch))
        for writer, _, _ in writers.values():
            writer.close()
        if npz is not None:
            npz.close(tokenizers[object_toks[0]].codebooks())
    except BaseException:
        for writer, _, _ in writers.values():
            writer.abort()
        if npz is not None:
            npz.abort()
        raise
    seconds = time.perf_counter() - t0
    return {"file": str(path), "skipped": False, "rows": rows, "seconds": seconds, "rows_per_s": rows / max(seconds, 1e-9),
            "outputs": [str(o) for o in outs] + ([str(npz_path)] if npz is not None else [])}


def export(params: Mapping, progress: bool = True) -> list[dict]:
    """Export every input file with the trained cards."""
    e = params["export"]
    device = e["device"] if e["device"] != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizers = load_cards(params, device=device)
    files = expand_files(e["files"] or params["data"]["files"])
    if not files:
        raise ConfigError("nothing to export: export.files and data.files are empty")
    out_dir = Path(e["output_dir"] or Path("runs") / params["study"]["kind"] / params["study"]["name"] / "artifacts" / "tokens")
    first = next(iter(from_params(params).values()))
    total = sum(count_rows(f, first) for f in files)
    results = []
    with tqdm(total=total, unit="row", desc="export", disable=not progress) as bar:
        for f in files:
            results.append(export_file(f, tokenizers, params, out_dir, bar))
    return results
