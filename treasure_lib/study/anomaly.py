"""Chapter 08's scores: what the standard-model backbones say of events (or jets) they never saw.

For every row of the test split (a fixed subset of `anomaly.max_rows` per sample), the `anomaly-scores` stage
computes, per seed of `anomaly.seeds`:
- `masked`: the masked-token pseudo-likelihood, -sum over objects of log p(object's codes | the rest), from the
  masked backbone pretrained with that seed;
- `next_token`: -log p(sequence) of the next-token (generative) backbone of that seed;
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
from . import held_out, stages

OBJECTIVES = ("masked", "next_token")
SCORES = ("masked", "next_token", "reconstruction", "autoencoder")
CHUNK = 256  # rows per forward pass of the next-token likelihood
EXTRA = ("process", "jet_pt", "event_number", "source_file")


def backbones(run) -> dict[tuple[str, int], Path]:
    """Every backbone the scores read: both objectives at every seed of `anomaly.seeds` (trained side by side)."""
    seeds = list(run.params.anomaly.seeds)
    if len(seeds) < 2:
        from ..errors import ConfigError

        raise ConfigError(f"anomaly.seeds {seeds}: chapter 08 needs at least two seeds to quote a seed spread")
    wanted = [(o, int(s)) for o in OBJECTIVES for s in seeds]
    return {k: v for k, v in stages.pretrained_many(run, wanted).items()}


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


def scores(run) -> Path:
    """The `anomaly-scores` stage: scores.npz (per score, seed and row) and info.json (rows, training health)."""
    params = stages.run_params(run)
    a: AnomalyParams = params.anomaly
    token_dir = held_out.signal_tokens(run)
    sm_dir = stages.tokens(run)
    found = backbones(run)
    signals = held_out.signals(a, params.data, params.generate, params.study.kind)

    def build(out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        arrays, info = compute(token_dir, sm_dir, found, signals, a, params.study.seed)
        np.savez_compressed(out / "scores.npz", **arrays)
        (out / "info.json").write_text(json.dumps(info, indent=1))

    inputs = {
        "tokens": stages.identity(token_dir),
        "backbones": {f"{o}-s{s}": stages.identity(p) for (o, s), p in sorted(found.items())},
        "anomaly": a.stage_inputs(),
        "seed": params.study.seed,
        "code": stages.code("anomaly"),
    }
    return run.stage("anomaly-scores", inputs)(build)


def compute(
    token_dir: Path,
    sm_dir: Path,
    found: dict[tuple[str, int], Path],
    signals: list[str],
    anomaly: AnomalyParams,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict]:
    """Every score of every chosen test row (the arrays scores.npz holds) and what was trained for them."""
    import torch

    from ..anomaly import autoencoder_scores, masked_pseudo_nll, matched_hidden, reconstruction_error, train_autoencoder
    from ..models import MaskedTokenModel, NextTokenModel, count_parameters, sequence_nll
    from ..models.generation import sample, slots_of

    rows = chosen_test_rows(token_dir, signals, anomaly, seed)
    features = chosen_test_rows(token_dir, signals, anomaly, seed, "features")
    decoded = chosen_test_rows(token_dir, signals, anomaly, seed, "decoded")
    _aligned(rows, features, str(token_dir))
    _aligned(rows, decoded, str(token_dir))
    arrays: dict[str, np.ndarray] = {
        "sample": rows["sample"],
        "objects": object_count(rows),
        "weight": rows["weight"].astype(np.float64),
    }
    if "jet_pt" in rows:
        arrays["jet_pt"] = rows["jet_pt"].astype(np.float64)
    info: dict = {"rows": {name: int((rows["sample"] == name).sum()) for name in np.unique(rows["sample"])}}
    info["seconds"] = {}
    t0 = time.perf_counter()
    arrays["reconstruction"] = reconstruction_error(features, decoded)
    info["seconds"]["reconstruction"] = time.perf_counter() - t0

    sm_processes = sorted(set(rows["process"][rows["sample"] == "standard_model"].astype(str)))
    train = _read(sm_dir, "features", "train", sm_processes)
    val = _read(sm_dir, "features", "val", sm_processes)
    ae = anomaly.autoencoder
    sm_tokens = TokenFiles(sorted(Path(sm_dir).glob("*.tokens.parquet")))
    n_types = max(sm_tokens.vocabulary.type_ids.values()) + 1
    for (objective, s), folder in sorted(found.items()):
        ckpt = Path(folder) / "checkpoints" / "best.ckpt"
        t0 = time.perf_counter()
        if objective == "masked":
            model = MaskedTokenModel.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
            arrays[f"masked/seed_{s}"] = masked_pseudo_nll(model, rows)["nll"]
            # the autoencoder of this seed is matched to this backbone's size
            target = count_parameters(model.backbone)
            t1 = time.perf_counter()
            hidden = matched_hidden(target, features["features"].shape[-1], n_types, ae.bottleneck)
            net, trained = train_autoencoder(
                train,
                val,
                hidden=hidden,
                bottleneck=ae.bottleneck,
                seed=s,
                max_epochs=ae.max_epochs,
                patience=ae.patience,
                min_delta=ae.min_delta,
                lr=ae.lr,
                batch_size=ae.batch_size,
                n_types=n_types,
            )
            arrays[f"autoencoder/seed_{s}"] = autoencoder_scores(net, features)
            info.setdefault("autoencoder", {})[str(s)] = {**trained, "target_parameters": target}
            info["seconds"][f"autoencoder/seed_{s}"] = time.perf_counter() - t1
        else:
            model = NextTokenModel.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
            arrays[f"next_token/seed_{s}"] = np.concatenate(
                [
                    sequence_nll(model, {k: rows[k][i : i + CHUNK] for k in ("tokens", "type_ids", "mask")})["nll"]
                    for i in range(0, len(rows["mask"]), CHUNK)
                ]
            )
            generated = sample(
                model,
                anomaly.generated_rows,
                generator=torch.Generator().manual_seed(int(s)),
                temperature=anomaly.temperature,
                max_len=sm_tokens.set.length,
                slots=slots_of(sm_tokens.set),
            )
            for key, value in generated.items():
                arrays[f"generated/seed_{s}/{key}"] = np.asarray(value)
        info["seconds"][f"{objective}/seed_{s}"] = time.perf_counter() - t0
    return arrays, info


def load(run) -> tuple[dict[str, np.ndarray], dict]:
    """The stage's arrays and info (built when missing)."""
    path = scores(run)
    with np.load(path / "scores.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads((path / "info.json").read_text())
