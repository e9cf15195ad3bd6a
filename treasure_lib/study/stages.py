"""The expensive steps of a study as reusable run stages: data, tokenizer cards, token files, backbone, classifiers.

Each step writes under the run's `artifacts/` and is rebuilt only when its inputs change (the
runs layer's `Stage`): the params that shape it (never where outputs go or how progress is shown),
input file contents, the content of the upstream artifacts, and the source of the library code
that builds it. A chapter reads like a sentence: `cards = stages.tokenizers(run)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ..config import ClassifyParams, DataParams, GenerateParams, Params, StudyParams
from ..distributed import fit_here_or_distributed as _fit
from ..errors import ConfigError
from .workers import side_by_side, threads_per_job, torch_threads


def run_params(run, classify: Mapping | None = None) -> Params:
    """The run's params with every output under its folder (so scan points and the default run never mix);
    `classify`: a classifier variant, keys merged into the classify section (`{"mode": "finetune"}`)."""
    art = run.artifacts
    return run.params.replace(
        tokenizer={"output_dir": str(art / "tokenizers")},
        export={"output_dir": str(art / "tokens"), "cards_dir": str(art / "tokenizers")},
        pretrain={"output_dir": str(art / "pretrain")},
        classify={"output_dir": str(art / "classify"), **(classify or {})},
    )


def data_files(data: DataParams) -> list[Path]:
    """`data.files`, globs expanded (an error names a pattern that matches nothing)."""
    from ..io.h5 import expand_files

    return expand_files(data.files)


def ensure_data(run) -> list[Path]:
    """The study's input files; the default samples are generated when none exist yet."""
    return ensure_samples(run.params.study, run.params.data, run.params.generate)


def ensure_samples(study: StudyParams, data: DataParams, generate: GenerateParams, log=print) -> list[Path]:
    """`data.files`. When they are the generator's own output (under `generate.output_dir`), the missing ones are
    generated first; files that exist are never rewritten (they may be a bigger sample made on purpose), but files
    made with other generator settings, or read without being in the plan, are reported."""
    from ..errors import InputFileError
    from ..io.h5 import expand_files

    out = Path(generate.output_dir)
    if not all(str(Path(f)).startswith(str(out).rstrip("/") + "/") for f in data.files):
        return data_files(data)  # your own files: read as they are
    from ..generate import generate as make_samples
    from ..generate.run import job_outputs, plan_jobs, stale_files

    if make_samples(study, data, generate, progress=True, only_missing=True):
        log(f"generated the missing default samples into {out}/")
    stale = stale_files(study, data, generate)
    planned = {p.name for j in plan_jobs(study, data, generate) for p in job_outputs(j)}
    try:
        files = expand_files(data.files)
    except InputFileError:
        files = []
    extra = sorted(f.name for f in files if f.name not in planned)
    if stale:
        log(
            f"note: {len(stale)} sample file(s) in {out}/ were made with other generator settings than these params "
            f"({', '.join(stale[:4])}{' ...' if len(stale) > 4 else ''}); they are used as they are: "
            f"`treasure generate` remakes them"
        )
    if extra:
        log(
            f"note: data.files also matches {len(extra)} file(s) these generator settings do not make "
            f"({', '.join(extra[:4])}{' ...' if len(extra) > 4 else ''}); they are read too"
        )
    return data_files(data)


def _data_inputs(data: DataParams) -> dict:
    """The input files' content, the data section and the object definitions' content (features, scalers, ...)."""
    return {"files": data_files(data), "data": data.stage_inputs("files"), "objects": Path(data.objects_file)}


#: Each stage's entry point: its library code is what this function reaches (`runs.closure`: the functions of the
#: study layer it names and the import closure of every module they import), derived from the source, never listed.
CODE = {
    "tokenizers": "study.stages:tokenizers",
    "tokens": "study.stages:tokens",
    "pretrain": "study.stages:pretrained",
    "classify": "study.stages:_classifier_stage",
    "leakage": "study.leakage:variant_files",
    "anomaly_tokens": "study.held_out:signal_tokens",
    "anomaly": "study.anomaly:scores",
}
#: The hashing helpers: they say what a stage is, not what it computes (not part of any stage's code).
IDENTITY_HELPERS = (
    "study.stages:code",
    "study.stages:identity",
    "study.stages:_data_inputs",
    "study.stages:card_hashes",
    "study.stages:token_file_hashes",
    "study.stages:backbone_weights",
    "study.stages:_backbone_identity",
)


def code(stage: str, lib_dir: Path | None = None) -> str:
    """sha256 of the library code a stage's output depends on (cached while no library file changes); `lib_dir`:
    another copy of treasure_lib (tests edit one)."""
    from ..runs.closure import LIB_DIR, code_hash

    return code_hash(CODE[stage], stop=[*CODE.values(), *IDENTITY_HELPERS], lib_dir=lib_dir or LIB_DIR)


def tokenizers(run) -> Path:
    """Tokenizer cards (artifacts/tokenizers/<name>/card)."""
    params = run_params(run)

    def build(out: Path) -> None:
        from ..tokenizers.train import train_tokenizers

        p = params.replace(tokenizer={"output_dir": str(out)})
        with torch_threads(threads_per_job(params.classify)):  # every stage: its numbers never depend on the mode
            _fit(
                "train-tokenizer", p.tokenizer.train, lambda: train_tokenizers(p.study, p.data, p.tokenizer), p.to_dict
            )
        record_fit_rows(p.data, out / FIT_ROWS)

    return run.stage(
        "tokenizers",
        {
            **_data_inputs(params.data),
            "tokenizer": params.tokenizer.stage_inputs(),
            "seed": params["study"]["seed"],
            "code": code("tokenizers"),
        },
        content=card_hashes,
    )(build)


FIT_ROWS = "fit_rows.npz"


def record_fit_rows(data: DataParams, path: Path) -> None:
    """The identities of the H5 rows the tokenizer fit streams (its train split): the split check reads them."""
    import numpy as np

    from .. import splits
    from ..io.reader import H5Stream

    stream = H5Stream.from_data(data, select_split=splits.TRAIN)
    found = [splits.fingerprints_of_batch(b) for b in stream]
    np.savez(path, train=np.concatenate(found) if found else np.zeros(0, np.uint64))


def tokens(run) -> Path:
    """Token (and raw-feature) Parquet of every input file (artifacts/tokens)."""
    params = run_params(run)
    cards = tokenizers(run)

    def build(out: Path) -> None:
        from ..tokenizers.export import export

        p = params.replace(export={"output_dir": str(out), "overwrite": True})
        with torch_threads(threads_per_job(params.classify)):
            results = export(p.study, p.data, p.tokenizer, p.export, p.sequence, p.selection, progress=True)
        rows = sum(r.get("rows", 0) for r in results)
        seconds = sum(r.get("seconds", 0.0) for r in results)
        (out / "export.json").write_text(json.dumps({"rows": rows, "seconds": seconds}))

    inputs = {
        **_data_inputs(params.data),
        "cards": identity(cards),
        "export": params.export.stage_inputs(),
        "sequence": params.sequence.to_dict(),
        "code": code("tokens"),
        "selection": params.selection.to_dict() if params.export.derived else None,
    }  # the derived columns'
    return run.stage("tokens", inputs, content=token_file_hashes)(build)


def card_training_metrics(cards: Path) -> dict:
    """`tokenizer.<card>.train_seconds` and `.best_epoch` from what each card recorded of its own training."""
    out = {}
    for path in sorted(Path(cards).glob("*/card/card.json")):
        training = json.loads(path.read_text()).get("training", {})
        card = path.parent.parent.name
        for key in ("train_seconds", "best_epoch", "epochs_run", "converged"):
            if isinstance(training.get(key), (int, float)):  # (bool is an int: converged 1.0 or 0.0)
                out[f"tokenizer.{card}.{key}"] = float(training[key])
    return out


def pretrained(run, objective: str = "masked", seed: int | None = None) -> Path:
    """A pretrained backbone (artifacts/pretrain), its metrics logged to the run. `objective` masked (chapter 05's)
    or next_token, `seed` a pretraining seed (None: `study.seed`): other backbones of the same tokens are
    `artifacts/pretrain-<objective>[-s<seed>]`, their metrics under `pretrain.<objective>.seed_<seed>`."""
    stage, build, variant = _pretrain_stage(run, objective, seed)
    path = stage(build)
    numbers = json.loads((path / "metrics.json").read_text())
    if variant is not None:
        numbers = {f"pretrain.{variant}." + k[len("pretrain.") :]: v for k, v in numbers.items()}
    run.log_metrics(numbers)
    return path


def pretrain_variant(run, objective: str, seed: int | None) -> tuple[dict, str | None]:
    """(pretrain-section changes, metrics infix) of a backbone: chapter 05's masked backbone at `study.seed` is the
    run's `pretrain` section itself (no changes, metrics under `pretrain.*`)."""
    seed = None if seed is None or int(seed) == int(run.params.study.seed) else int(seed)
    if objective == "masked" and seed is None:
        return {}, None
    s = int(run.params.study.seed) if seed is None else seed
    return {"objective": objective, "seed": seed}, f"{objective}.seed_{s}"


def _pretrain_stage(run, objective: str = "masked", seed: int | None = None):
    """(stage, build function, metrics infix or None) of one pretrained backbone."""
    changes, variant = pretrain_variant(run, objective, seed)
    params = run_params(run).replace(pretrain=changes) if changes else run_params(run)
    token_dir = tokens(run)

    def build(out: Path) -> None:
        from ..training import pretrain

        p = params.replace(pretrain={"output_dir": str(out), "train": {"resume": False}})
        out.mkdir(parents=True, exist_ok=True)
        # every backbone as the classifiers (one thread per parallel job), alone, beside each other or beside the
        # other study: the same numbers either way
        with torch_threads(threads_per_job(params.classify)):
            numbers = _fit(
                "pretrain",
                p.pretrain.train,
                lambda: pretrain(
                    study=p.study,
                    model=p.model,
                    pretrain=p.pretrain,
                    classify=p.classify,
                    tokens=Path(p.export.output_dir),
                ),
                p.to_dict,
                out / "metrics.json",
            )
        (out / "metrics.json").write_text(json.dumps(numbers, indent=1))

    probe = params["pretrain"]["probe_task"] or params["classify"]["task"]  # the probe's labels
    name = "pretrain" if variant is None else f"pretrain-{objective}" + (f"-s{seed}" if changes.get("seed") else "")
    stage = run.stage(
        name,
        {
            "tokens": identity(token_dir),
            "pretrain": params.pretrain.stage_inputs(),
            "model": {k: v for k, v in params["model"].items() if k != "pooling"},  # the heads'
            "seed": params["study"]["seed"],
            "code": code("pretrain"),
            "probe_task": {probe: params["classify"]["tasks"].get(probe)},
        },
        content=backbone_weights,
    )
    return stage, build, variant


def pretrained_many(run, backbones: list[tuple[str, int | None]]) -> dict[tuple[str, int | None], Path]:
    """Several backbones (objective, seed), the missing ones pretrained side by side in worker processes as the
    classifiers are (`classify.jobs`, one thread each on a CPU); returns each one's folder."""
    side_by_side(run, "pretraining backbones", pending_backbones(run, backbones))
    return {b: pretrained(run, *b) for b in backbones}


def pending_backbones(run, backbones: list[tuple[str, int | None]]) -> list[tuple]:
    """`workers.side_by_side` jobs of the backbones (objective, seed) not yet built (their token files built here)."""
    tokens(run)  # upstream built here, once
    return [(_pretrain_in_worker, b) for b in backbones if not _pretrain_stage(run, *b)[0].done]


def _pretrain_in_worker(job: tuple) -> bool:
    from ..runs.folder import Run

    run_dir, params, (objective, seed) = job
    stage, build, _ = _pretrain_stage(Run(run_dir, params), objective, seed)
    stage(build)
    return True


def _classifier_stage(
    run,
    name: str | None = None,
    token_dir: Path | None = None,
    seed: int | None = None,
    log_as: str | None = None,
    backbone: Path | None = None,
    classify: Mapping | None = None,
):
    """(stage, build function, params, metrics prefix the model writes) of one classifier; `classify`: its variant
    (keys of the classify section). `token_dir` and `backbone` given: upstream stages the caller has built (a worker
    process never builds them itself)."""
    variant = {**(classify or {}), **({"seed": int(seed)} if seed is not None else {})}
    params = run_params(run, variant)
    if token_dir is not None:
        params = params.replace(export={"output_dir": str(token_dir)})
    c = params.classify
    token_dir = Path(token_dir) if token_dir is not None else tokens(run)
    classify_inputs = c.stage_inputs("tasks")
    classify_inputs["task_definition"] = c["tasks"].get(c["task"])  # this task's, not every task's
    inputs = {
        "tokens": identity(token_dir),
        "model": params.model.to_dict(),
        "seed": params.study.seed,
        "classify": classify_inputs,
        "code": code("classify"),
    }
    if c["mode"] == "scratch":
        backbone = None
    elif backbone is None:
        backbone = pretrained(run, c.backbone_objective) / "checkpoints" / "best.ckpt"
    if backbone is not None:
        inputs["backbone"] = _backbone_identity(backbone)
    from ..training import metrics_prefix, variant_name

    def build(out: Path) -> None:
        from ..training import classify

        located = {"output_dir": str(out), "train": {"resume": False}}
        p = params.replace(classify={**located, **({"backbone": str(backbone)} if backbone is not None else {})})
        out.mkdir(parents=True, exist_ok=True)
        with torch_threads(threads_per_job(params.classify)):  # same thread count alone or in parallel: same numbers
            numbers = _fit(
                "classify",
                p.classify.train,
                lambda: classify(study=p.study, model=p.model, classify=p.classify, tokens=Path(p.export.output_dir)),
                p.to_dict,
                out / "metrics.json",
            )
        (out / "metrics.json").write_text(json.dumps(numbers, indent=1))

    label = name or f"{c['task']}-{variant_name(c)}-{round(100 * c['label_fraction'])}"
    if seed is not None:
        label += f"-s{int(seed)}"
    return run.stage(f"classify-{label}", inputs), build, params, metrics_prefix(c)


def classifier(
    run,
    name: str | None = None,
    token_dir: Path | None = None,
    seed: int | None = None,
    log_as: str | None = None,
    classify: Mapping | None = None,
    backbone: Path | None = None,
) -> dict:
    """Train and evaluate one classifier (`classify`: its variant, keys of the classify section, as in run_params)
    on the run's token files, or on rewritten copies in `token_dir` (the leakage rows); returns and logs its metrics.

    `seed`: one of several training seeds (`classify.seeds`): its numbers log under `<prefix>.seed_<seed>`, so the
    seeds of one model never overwrite each other. `log_as`: another prefix for its numbers (a leakage row logs
    under `leakage.<task>.<row>`, never over the classifier whose keys it would share). `backbone`: the pretrained
    checkpoint the caller has built (None: the run's, built here when the variant fine-tunes)."""
    stage, build, params, prefix = _classifier_stage(run, name, token_dir, seed, backbone=backbone, classify=classify)
    path = stage(build)
    numbers = evaluated(path, params.classify, params.study.seed)
    target = log_as or (f"{prefix}.seed_{int(seed)}" if seed is not None else prefix)
    numbers = {target + k[len(prefix) :] if k.startswith(prefix + ".") else k: v for k, v in numbers.items()}
    run.log_metrics(numbers)
    return numbers


def classifiers(run, jobs: list[dict]) -> list[dict]:
    """Several classifiers (each a dict of `classifier` arguments), the missing ones trained side by side
    (`workers.side_by_side`); returns each one's numbers."""
    jobs = _located(run, jobs)
    side_by_side(run, "training classifiers", _pending(run, jobs))
    return [classifier(run, **j) for j in jobs]


def pending_classifiers(run, jobs: list[dict]) -> list[tuple]:
    """`workers.side_by_side` jobs of the classifiers (dicts of `classifier` arguments) not yet trained. Upstream
    stages (token files, the pretrained backbone) are built first, here, so no two processes build them."""
    return _pending(run, _located(run, jobs))


def _located(run, jobs: list[dict]) -> list[dict]:
    token_dir = tokens(run) if any(j.get("token_dir") is None for j in jobs) else None
    return [{"token_dir": token_dir, **j, "backbone": j.get("backbone") or _backbone_of(run, j)} for j in jobs]


def _pending(run, jobs: list[dict]) -> list[tuple]:
    return [(_build_in_worker, j) for j in jobs if not _classifier_stage(run, **j)[0].done]


def _backbone_of(run, job: Mapping) -> Path | None:
    """The pretrained checkpoint a classifier job starts from (built here, once, before any worker starts)."""
    c = run_params(run, job.get("classify")).classify
    if c.mode == "scratch":
        return None
    return pretrained(run, c.backbone_objective) / "checkpoints" / "best.ckpt"


def evaluated(path: Path, classify: ClassifyParams, seed: int) -> dict:
    """A classifier stage's numbers, its test-set evaluation redone from the predictions it saved with this classify
    section's evaluation keys (role "evaluation" in the schema: f_c, f_tau, pT bins), which are not part of the
    stage's identity: a trained model is never retrained for them, and its numbers always follow them. `seed`: the
    bootstrap's (`study.seed`)."""
    import numpy as np

    from .. import metric_keys
    from ..datamodules.tasks import Task
    from ..training import evaluate, metrics_prefix

    numbers = json.loads((Path(path) / "metrics.json").read_text())
    found = sorted(Path(path).rglob("predictions.npz"))
    if not found:
        return numbers
    with np.load(found[0]) as z:
        rows = {k: z[k] for k in z.files}
    probs = rows.pop("probs")
    prefix = metrics_prefix(classify)
    fresh = metric_keys.prefixed(prefix, evaluate(Task.from_params(classify), rows, probs, classify, seed))
    kept = {k: v for k, v in numbers.items() if not k.startswith(f"{prefix}.pt_bin_")}  # bins of other edges
    return {**kept, **fresh}


def _build_in_worker(job: tuple) -> bool:
    """A worker process: build one classifier stage of the run folder (its metrics are logged by the parent)."""
    from ..runs.folder import Run

    run_dir, params, kwargs = job
    stage, build, _, _ = _classifier_stage(Run(run_dir, params), **kwargs)
    stage(build)
    return True


def predictions(run, name: str) -> dict:
    """The test-split predictions a classifier stage saved (probs, label, weight, jet_pt, ...)."""
    import numpy as np

    found = sorted((run.artifacts / f"classify-{name}").rglob("predictions.npz"))
    if not found:
        raise ConfigError(f"no predictions for classifier '{name}' in {run.artifacts}; train it first")
    with np.load(found[0]) as z:
        return {k: z[k] for k in z.files}


def card_hashes(folder: Path) -> dict:
    """What a tokenizer stage built, for the stages built from it: each card's hash (weights, config, scaler and
    vocabulary; not its training time or the folder it was written in)."""
    from ..tokenizers.card import card_hash

    return {p.parent.parent.name: card_hash(p.parent) for p in sorted(Path(folder).glob("*/card/card.json"))}


def token_file_hashes(folder: Path) -> dict:
    """What a token stage built: its Parquet files' names and sha256 (not export.json's timings nor the npz copies,
    which no stage reads)."""
    from ..hashing import file_sha256

    return {p.name: file_sha256(p) for p in sorted(Path(folder).glob("*.parquet"))}


def backbone_weights(folder: Path) -> dict:
    """What a pretraining stage built: the best checkpoint's weights and epoch (not the paths and timings its
    Lightning checkpoint also records)."""
    import torch

    from ..hashing import parts_sha256

    saved = torch.load(Path(folder) / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    weights = ((k, t.detach().cpu().contiguous().numpy().tobytes()) for k, t in sorted(saved["state_dict"].items()))
    return {"weights": parts_sha256(weights), "epoch": int(saved.get("epoch", -1))}


def _backbone_identity(backbone: Path):
    """A pretrained checkpoint inside a pretraining stage stands for that stage's content; any other for its bytes."""
    folder = Path(backbone).parents[1]
    if folder.with_name(f"{folder.name}.stage.json").is_file():
        return identity(folder)
    return Path(backbone)


def identity(folder: Path) -> dict:
    """What a stage built from `folder` depends on: the content digest its stage recorded when it built it, else
    its Parquet files' names and content hashes. Never its location, so runs share what they agree on; a
    rebuilt upstream that came out different (another GPU, a deleted shared entry) changes it."""
    folder = Path(folder)
    record = folder.with_name(f"{folder.name}.stage.json")
    built = json.loads(record.read_text()) if record.is_file() else {}
    if built.get("content_sha256"):
        return {"stage": folder.name, "content_sha256": built["content_sha256"]}
    from ..runs.provenance import file_checksums

    files = sorted(folder.glob("*.parquet"))
    sums = file_checksums(files)
    return {p.name: sums[str(p)] for p in files}
