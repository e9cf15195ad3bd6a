"""The expensive steps of a study as reusable run stages: data, tokenizer cards, token files, backbone, classifiers.

Each step writes under the run's `artifacts/` and is rebuilt only when its inputs change (the
runs layer's `Stage`: params sections, input file contents, upstream artifacts). A chapter reads
like a sentence: `cards = stages.tokenizers(run)`, `tokens = stages.tokens(run)`.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Mapping

from .. import config
from ..errors import ConfigError


def run_params(run, **sections) -> dict:
    """The run's params with every output under its folder (so scan points and the default run never mix),
    plus dotted overrides given as keyword arguments (`classify__mode="finetune"`)."""
    params = copy.deepcopy(run.params)
    art = run.artifacts
    params["tokenizer"]["output_dir"] = str(art / "tokenizers")
    params["export"]["output_dir"] = str(art / "tokens")
    params["export"]["cards_dir"] = str(art / "tokenizers")
    params["pretrain"]["output_dir"] = str(art / "pretrain")
    params["classify"]["output_dir"] = str(art / "classify")
    for key, value in sections.items():
        config.set_dotted(params, key.split("__"), value)
    return config.validate(params)


def data_files(params: Mapping) -> list[Path]:
    from ..io.h5 import expand_files

    return expand_files(params["data"]["files"])


def ensure_data(run) -> list[Path]:
    """The study's input files; the default samples are generated when none exist yet."""
    from ..errors import InputFileError

    try:
        return data_files(run.params)
    except InputFileError:
        from ..generate import generate

        print("no input files yet: generating the default samples (treasure generate) ...")
        generate(run.params, progress=True)
        return data_files(run.params)


def _data_inputs(params: Mapping) -> dict:
    return {"files": data_files(params), "data": {k: v for k, v in params["data"].items() if k != "files"}}


def _without(section: Mapping, *keys: str) -> dict:
    """A params section minus the keys that only say where outputs go (they never change what is built)."""
    return {k: v for k, v in section.items() if k not in keys}


def _fit(command: str, params: Mapping, train: Mapping, here, metrics_out: Path | None = None):
    """Train here, or, when the params ask for several devices, as one process per device under torchrun."""
    from .. import distributed

    n = distributed.world_size(train)
    if n <= 1 or distributed.launched():
        return here()
    if train["num_nodes"] > 1:
        raise ConfigError(f"{command}: num_nodes = {train['num_nodes']} needs one process per device on every node; "
                          f"submit `srun treasure {command} --params ...` (README, 'Scans and scale-out') instead of "
                          f"running it from a chapter")
    distributed.run_distributed([command], params, n, metrics_out)
    return json.loads(metrics_out.read_text()) if metrics_out is not None else None


def tokenizers(run) -> Path:
    """Tokenizer cards (artifacts/tokenizers/<name>/card)."""
    params = run_params(run)

    def build(out: Path) -> None:
        from ..tokenizers.train import train_tokenizers

        p = copy.deepcopy(params)
        p["tokenizer"]["output_dir"] = str(out)
        _fit("train-tokenizer", p, p["tokenizer"]["train"], lambda: train_tokenizers(p))

    return run.stage("tokenizers", {**_data_inputs(params), "tokenizer": _without(params["tokenizer"], "output_dir"),
                                    "seed": params["study"]["seed"]})(build)


def tokens(run) -> Path:
    """Token (and raw-feature) Parquet of every input file (artifacts/tokens)."""
    params = run_params(run)
    cards = tokenizers(run)

    def build(out: Path) -> None:
        from ..tokenizers.export import export

        p = copy.deepcopy(params)
        p["export"]["output_dir"] = str(out)
        p["export"]["cards_dir"] = str(cards)
        p["export"]["overwrite"] = True
        results = export(p, progress=True)
        rows = sum(r.get("rows", 0) for r in results)
        seconds = sum(r.get("seconds", 0.0) for r in results)
        (out / "export.json").write_text(json.dumps({"rows": rows, "seconds": seconds}))

    inputs = {**_data_inputs(params), "cards": identity(cards),
              "export": _without(params["export"], "output_dir", "cards_dir"), "sequence": params["sequence"]}
    return run.stage("tokens", inputs)(build)


def card_training_metrics(cards: Path) -> dict:
    """`tokenizer.<card>.train_seconds` and `.best_epoch` from what each card recorded of its own training."""
    out = {}
    for path in sorted(Path(cards).glob("*/card/card.json")):
        training = json.loads(path.read_text()).get("training", {})
        card = path.parent.parent.name
        for key in ("train_seconds", "best_epoch"):
            if isinstance(training.get(key), (int, float)):
                out[f"tokenizer.{card}.{key}"] = float(training[key])
    return out


def pretrained(run) -> Path:
    """The masked-token pretrained backbone (artifacts/pretrain), its metrics logged to the run."""
    params = run_params(run)
    token_dir = tokens(run)

    def build(out: Path) -> None:
        from ..training import pretrain

        p = copy.deepcopy(params)
        p["pretrain"]["output_dir"] = str(out)
        p["pretrain"]["train"]["resume"] = False
        out.mkdir(parents=True, exist_ok=True)
        numbers = _fit("pretrain", p, p["pretrain"]["train"], lambda: pretrain(p), out / "metrics.json")
        (out / "metrics.json").write_text(json.dumps(numbers, indent=1))

    path = run.stage("pretrain", {"tokens": identity(token_dir), "model": params["model"],
                                  "pretrain": _without(params["pretrain"], "output_dir"),
                                  "seed": params["study"]["seed"]})(build)
    run.log_metrics(json.loads((path / "metrics.json").read_text()))
    return path


def classifier(run, name: str | None = None, token_dir: Path | None = None, **overrides) -> dict:
    """Train and evaluate one classifier (`overrides` as in run_params) on the run's token files, or on rewritten
    copies in `token_dir` (the leakage rows); returns and logs its metrics."""
    params = run_params(run, **overrides)
    c = params["classify"]
    if token_dir is not None:
        params["export"]["output_dir"] = str(token_dir)
    token_dir = Path(token_dir) if token_dir is not None else tokens(run)
    inputs = {"tokens": identity(token_dir), "model": params["model"], "seed": params["study"]["seed"],
              "classify": _without(c, "output_dir", "backbone")}
    backbone = pretrained(run) / "checkpoints" / "best.ckpt" if c["mode"] != "scratch" else None
    if backbone is not None:
        inputs["backbone"] = backbone
    from ..training import variant_name

    def build(out: Path) -> None:
        from ..training import classify

        p = copy.deepcopy(params)
        p["classify"]["output_dir"] = str(out)
        p["classify"]["train"]["resume"] = False
        if backbone is not None:
            p["classify"]["backbone"] = str(backbone)
        out.mkdir(parents=True, exist_ok=True)
        numbers = _fit("classify", p, p["classify"]["train"], lambda: classify(p), out / "metrics.json")
        (out / "metrics.json").write_text(json.dumps(numbers, indent=1))

    label = name or f"{c['task']}-{variant_name(params)}-{round(100 * c['label_fraction'])}"
    path = run.stage(f"classify-{label}", inputs)(build)
    numbers = json.loads((path / "metrics.json").read_text())
    run.log_metrics(numbers)
    return numbers


def predictions(run, name: str) -> dict:
    """The test-split predictions a classifier stage saved (probs, label, weight, jet_pt, ...)."""
    import numpy as np

    found = sorted((run.artifacts / f"classify-{name}").rglob("predictions.npz"))
    if not found:
        raise ConfigError(f"no predictions for classifier '{name}' in {run.artifacts}; train it first")
    with np.load(found[0]) as z:
        return {k: z[k] for k in z.files}


def identity(folder: Path) -> dict:
    """What a stage built from `folder` depends on: the inputs hash of the stage that made it (its record beside
    it), else its Parquet files' names and content hashes. Never its location, so runs share what they agree on."""
    folder = Path(folder)
    record = folder.with_name(f"{folder.name}.stage.json")
    if record.is_file():
        return {"stage": folder.name, "inputs_sha256": json.loads(record.read_text())["inputs_sha256"]}
    from ..runs.provenance import file_checksums

    files = sorted(folder.glob("*.parquet"))
    sums = file_checksums(files)
    return {p.name: sums[str(p)] for p in files}
