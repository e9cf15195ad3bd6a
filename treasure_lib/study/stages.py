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


def tokenizers(run) -> Path:
    """Tokenizer cards (artifacts/tokenizers/<name>/card)."""
    params = run_params(run)
    stage = run.stage("tokenizers", {**_data_inputs(params), "tokenizer": params["tokenizer"]})
    if not stage.done:
        from ..tokenizers.train import train_tokenizers

        with stage.build() as out:
            p = copy.deepcopy(params)
            p["tokenizer"]["output_dir"] = str(out)
            train_tokenizers(p)
    return stage.path


def tokens(run) -> Path:
    """Token (and raw-feature) Parquet of every input file (artifacts/tokens)."""
    params = run_params(run)
    cards = tokenizers(run)
    inputs = {**_data_inputs(params), "cards": cards, "export": {k: v for k, v in params["export"].items()
                                                                 if k not in ("output_dir", "cards_dir")},
              "sequence": params["sequence"]}
    stage = run.stage("tokens", inputs)
    if not stage.done:
        from ..tokenizers.export import export

        with stage.build() as out:
            p = copy.deepcopy(params)
            p["export"]["output_dir"] = str(out)
            p["export"]["overwrite"] = True
            results = export(p, progress=True)
            rows = sum(r.get("rows", 0) for r in results)
            seconds = sum(r.get("seconds", 0.0) for r in results)
            (out / "export.json").write_text(json.dumps({"rows": rows, "seconds": seconds}))
    return stage.path


def pretrained(run) -> Path:
    """The masked-token pretrained backbone (artifacts/pretrain), its metrics logged to the run."""
    params = run_params(run)
    token_dir = tokens(run)
    stage = run.stage("pretrain", {"tokens": _listing(token_dir), "model": params["model"],
                                   "pretrain": {k: v for k, v in params["pretrain"].items() if k != "output_dir"},
                                   "seed": params["study"]["seed"]})
    if not stage.done:
        from ..training import pretrain

        with stage.build() as out:
            p = copy.deepcopy(params)
            p["pretrain"]["output_dir"] = str(out)
            p["pretrain"]["train"]["resume"] = False
            numbers = pretrain(p)
            (out / "metrics.json").write_text(json.dumps(numbers, indent=1))
    run.log_metrics(json.loads((stage.path / "metrics.json").read_text()))
    return stage.path


def classifier(run, name: str | None = None, token_dir: Path | None = None, **overrides) -> dict:
    """Train and evaluate one classifier (`overrides` as in run_params) on the run's token files, or on rewritten
    copies in `token_dir` (the leakage rows); returns and logs its metrics."""
    params = run_params(run, **overrides)
    c = params["classify"]
    if token_dir is not None:
        params["export"]["output_dir"] = str(token_dir)
    token_dir = Path(token_dir) if token_dir is not None else tokens(run)
    inputs = {"tokens": _listing(token_dir), "model": params["model"], "seed": params["study"]["seed"],
              "classify": {k: v for k, v in c.items() if k not in ("output_dir", "backbone")}}
    if c["mode"] != "scratch":
        inputs["backbone"] = pretrained(run) / "checkpoints" / "best.ckpt"
    from ..training import variant_name

    label = name or f"{c['task']}-{variant_name(params)}-{round(100 * c['label_fraction'])}"
    stage = run.stage(f"classify-{label}", inputs)
    if not stage.done:
        from ..training import classify

        with stage.build() as out:
            p = copy.deepcopy(params)
            p["classify"]["output_dir"] = str(out)
            p["classify"]["train"]["resume"] = False
            if c["mode"] != "scratch":
                p["classify"]["backbone"] = str(pretrained(run) / "checkpoints" / "best.ckpt")
            numbers = classify(p)
            (out / "metrics.json").write_text(json.dumps(numbers, indent=1))
    numbers = json.loads((stage.path / "metrics.json").read_text())
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


def _listing(folder: Path) -> dict:
    """A token folder's identity: its Parquet files' names and sizes (content-hashing GBs of tokens is not worth it)."""
    return {p.name: p.stat().st_size for p in sorted(Path(folder).glob("*.parquet"))}
