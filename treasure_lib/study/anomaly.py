"""Chapter 08's scores: what the standard-model backbones say of events (or jets) they never saw.

For every row of the test split (a fixed subset of `anomaly.max_rows` per sample), the stage
`anomaly-scores-s<seed>` of each seed of `anomaly.seeds` computes:
- `masked`: the masked-token pseudo-likelihood, -sum over objects of log p(object's codes | the rest), from the
  masked backbone pretrained with that seed;
- `next_token`: -log p(sequence) of the next-token (generative) backbone of that seed;
- `masked_per_object`, `next_token_per_object`: the same divided by the row's objects (the sums grow with them);
- `autoencoder`: the reconstruction error of a per-object autoencoder on the raw features, of the backbone's size;
and once `reconstruction`: the tokenizer's own reconstruction error (decoded vs original features). The next-token
backbones also sample `anomaly.generated_rows` sequences, kept for the generated-vs-test comparison. Higher scores
are more anomalous. Every backbone and the autoencoder learned from standard-model rows only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..config import AnomalyParams
from ..datamodules import TokenFiles, read_split
from ..vocabulary import N_SPECIAL
from . import held_out, stages, workers

OBJECTIVES = ("masked", "next_token")
SCORES = ("masked", "masked_per_object", "next_token", "next_token_per_object", "reconstruction", "autoencoder")
CHUNK = 256  # rows per forward pass of the next-token likelihood
EXTRA = ("process", "jet_pt", "event_number", "source_file")


def backbones(run) -> dict[tuple[str, int], Path]:
    """Every backbone the scores read: both objectives at every seed of `anomaly.seeds` (trained side by side)."""
    return stages.pretrained_many(run, wanted_backbones(run))


def wanted_backbones(run) -> list[tuple[str, int]]:
    """(objective, seed) of every backbone the scores read, the slowest to train (next-token) first."""
    seeds = list(run.params.anomaly.seeds)
    if len(seeds) < 2:
        from ..errors import ConfigError

        raise ConfigError(f"anomaly.seeds {seeds}: chapter 08 needs at least two seeds to quote a seed spread")
    return [(o, int(s)) for o in reversed(OBJECTIVES) for s in seeds]


def object_count(rows: dict) -> np.ndarray:
    """Objects per row: real positions that carry a code (no [CLS]/[SEP])."""
    return (rows["mask"] & (rows["type_ids"] > 0) & (rows["tokens"][..., 0] >= N_SPECIAL)).sum(1)


def chosen_rows(process: np.ndarray, samples: list[str], max_rows: int, seed: int) -> dict[str, np.ndarray]:
    """Per sample the indices of the rows scored: all of its test rows, or a fixed random subset of `max_rows`
    (sorted, so the files' order is kept). `samples[0]` is "standard_model": the rows of every other sample not
    named after it."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in samples:
        members = ~np.isin(process, samples[1:]) if name == "standard_model" else process == name
        idx = np.flatnonzero(members)
        if len(idx) > max_rows:
            idx = np.sort(rng.choice(idx, max_rows, replace=False))
        out[name] = idx
    return out


def chosen_test_rows(token_dir: Path, signals: list[str], anomaly: AnomalyParams, seed: int, content="tokens") -> dict:
    """The test rows every score is computed on, standard model first, then each signal (`chosen_rows`), with a
    `sample` column; `content` tokens, features or decoded (the same rows of each)."""
    rows = _read(token_dir, content, "test")
    chosen = chosen_rows(rows["process"].astype(str), ["standard_model", *signals], anomaly.max_rows, seed)
    out = _take(rows, np.concatenate(list(chosen.values())))
    out["sample"] = np.concatenate([[name] * len(idx) for name, idx in chosen.items()]).astype(str)
    return out


def _read(folder: Path, content: str, split: str, processes: list[str] | None = None) -> dict:
    files = TokenFiles(sorted(Path(folder).glob(f"*.{content}.parquet")), content)
    rows = read_split(files, None, split, extra=EXTRA)
    if processes is not None:
        keep = np.isin(rows["process"].astype(str), processes)
        rows = {k: v[keep] for k, v in rows.items()}
    return rows


def _take(rows: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in rows.items()}


def _aligned(a: dict, b: dict, what: str) -> None:
    from ..errors import InputFileError

    for key in ("event_number", "source_file"):
        if key in a and key in b and not np.array_equal(a[key], b[key]):
            raise InputFileError(f"{what}: the token and feature files hold other rows ({key} differs); re-export")


def scores(run) -> list[Path]:
    """The `anomaly-scores-s<seed>` stages, one per seed of `anomaly.seeds`, the missing ones built side by side
    (one thread each, as the classifiers: the same numbers alone or in parallel); returns their folders."""
    workers.side_by_side(run, "scoring the held-out samples", pending_scores(run))
    return [stage(build) for stage, build in (_score_stage(run, int(s)) for s in run.params.anomaly.seeds)]


def pending_scores(run) -> list[tuple]:
    """`workers.side_by_side` jobs of the score stages not yet built (their upstream stages built here)."""
    held_out.signal_tokens(run)  # upstream built here, once
    stages.tokens(run)
    backbones(run)
    return [(_score_in_worker, int(s)) for s in run.params.anomaly.seeds if not _score_stage(run, int(s))[0].done]


def _score_in_worker(job: tuple) -> bool:
    from ..runs.folder import Run

    run_dir, params, seed = job
    stage, build = _score_stage(Run(run_dir, params), seed)
    stage(build)
    return True


def _score_stage(run, seed: int):
    """(stage, build function) of one seed's scores: scores.npz (per score and row) and info.json."""
    params = stages.run_params(run)
    a: AnomalyParams = params.anomaly
    token_dir = held_out.signal_tokens(run)
    sm_dir = stages.tokens(run)
    found = {o: stages._pretrain_stage(run, o, seed)[0].path for o in OBJECTIVES}  # built by `backbones`
    signals = held_out.signals(a, params.data, params.generate, params.study.kind)

    def build(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        with workers.torch_threads(workers.threads_per_job(params.classify)):
            arrays, info = compute(token_dir, sm_dir, found, signals, a, params.study.seed, seed)
        np.savez_compressed(out / "scores.npz", **arrays)
        (out / "info.json").write_text(json.dumps(info, indent=1))

    inputs = {
        "tokens": stages.identity(token_dir),
        "backbones": {o: stages.identity(p) for o, p in sorted(found.items())},
        "anomaly": a.stage_inputs(),
        "seed": params.study.seed,
        "score_seed": seed,
        "code": stages.code("anomaly"),
    }
    return run.stage(f"anomaly-scores-s{seed}", inputs), build


def compute(
    token_dir: Path,
    sm_dir: Path,
    found: dict[str, Path],
    signals: list[str],
    anomaly: AnomalyParams,
    seed: int,
    score_seed: int,
) -> tuple[dict[str, np.ndarray], dict]:
    """Every score of one seed (`found`: that seed's backbone folder per objective) on every chosen test row, the
    tokenizer's error (no seed) and the rows the next-token backbone generates: the arrays scores.npz holds."""
    import torch

    from ..anomaly import autoencoder_scores, masked_pseudo_nll, matched_hidden, reconstruction_error, train_autoencoder
    from ..models import MaskedTokenModel, NextTokenModel, count_parameters, sequence_nll
    from ..models.generation import sample, slots_of

    s = int(score_seed)
    rows = chosen_test_rows(token_dir, signals, anomaly, seed)
    features = chosen_test_rows(token_dir, signals, anomaly, seed, "features")
    decoded = chosen_test_rows(token_dir, signals, anomaly, seed, "decoded")
    _aligned(rows, features, str(token_dir))
    _aligned(rows, decoded, str(token_dir))
    arrays: dict[str, np.ndarray] = {
        "sample": rows["sample"],
        "objects": object_count(rows),
        "weight": rows["weight"].astype(np.float64),
        "reconstruction": reconstruction_error(features, decoded),
    }
    if "jet_pt" in rows:
        arrays["jet_pt"] = rows["jet_pt"].astype(np.float64)
    info: dict = {"rows": {name: int((rows["sample"] == name).sum()) for name in np.unique(rows["sample"])}}
    info["seconds"] = {}

    t0 = time.perf_counter()
    model = MaskedTokenModel.load_from_checkpoint(
        Path(found["masked"]) / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    ).eval()
    masked = masked_pseudo_nll(model, rows)
    arrays[f"masked/seed_{s}"] = masked["nll"]
    arrays[f"masked_per_object/seed_{s}"] = masked["nll_per_object"]
    info["seconds"]["masked"] = time.perf_counter() - t0

    t0 = time.perf_counter()  # the autoencoder of this seed, matched to this seed's masked backbone in size
    sm_processes = sorted(set(rows["process"][rows["sample"] == "standard_model"].astype(str)))
    sm_tokens = TokenFiles(sorted(Path(sm_dir).glob("*.tokens.parquet")))
    n_types = max(sm_tokens.vocabulary.type_ids.values()) + 1
    target = count_parameters(model.backbone)
    ae = anomaly.autoencoder
    net, trained = train_autoencoder(
        _read(sm_dir, "features", "train", sm_processes),
        _read(sm_dir, "features", "val", sm_processes),
        hidden=matched_hidden(target, features["features"].shape[-1], n_types, ae.bottleneck),
        seed=s,
        n_types=n_types,
        **dict(ae),  # bottleneck, max_epochs, patience, min_delta, lr, batch_size, epoch_objects, val_objects
    )
    arrays[f"autoencoder/seed_{s}"] = autoencoder_scores(net, features)
    info["autoencoder"] = {str(s): {**trained, "target_parameters": target}}
    info["seconds"]["autoencoder"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = NextTokenModel.load_from_checkpoint(
        Path(found["next_token"]) / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True
    ).eval()
    parts = [
        sequence_nll(model, {k: rows[k][i : i + CHUNK] for k in ("tokens", "type_ids", "mask")})
        for i in range(0, len(rows["mask"]), CHUNK)
    ]
    nll = np.concatenate([p["nll"] for p in parts])
    arrays[f"next_token/seed_{s}"] = nll
    arrays[f"next_token_per_object/seed_{s}"] = nll / np.maximum(np.concatenate([p["n_objects"] for p in parts]), 1)
    generated = sample(
        model,
        anomaly.generated_rows,
        generator=torch.Generator().manual_seed(s),
        temperature=anomaly.temperature,
        max_len=sm_tokens.set.length,
        slots=slots_of(sm_tokens.set),
    )
    for key, value in generated.items():
        arrays[f"generated/seed_{s}/{key}"] = np.asarray(value)
    info["seconds"]["next_token"] = time.perf_counter() - t0
    return arrays, info


def load(run) -> tuple[dict[str, np.ndarray], dict]:
    """Every seed's arrays in one mapping (the rows, their objects and the tokenizer's error are the same in each),
    and the info of all seeds (rows, autoencoder training, seconds)."""
    arrays: dict[str, np.ndarray] = {}
    info: dict = {"autoencoder": {}, "seconds": {}}
    for path in scores(run):
        with np.load(path / "scores.npz") as z:
            arrays.update({k: z[k] for k in z.files})
        found = json.loads((path / "info.json").read_text())
        info["rows"] = found["rows"]
        info["autoencoder"].update(found["autoencoder"])
        info["seconds"][path.name] = found["seconds"]
    return arrays, info
