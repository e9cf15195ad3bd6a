"""The held-out samples beyond the standard model that chapter 08 scores, and their tokens.

A signal (`anomaly.signals`, a block of params/processes.yaml) is generated on demand, never listed in
`data.files` or `generate.samples`: the tokenizer cards and the backbone never saw it. Its files are exported with
the study's own cards into `artifacts/anomaly-tokens`, which also links the standard-model token files, so one
folder holds every row a score or the supervised upper bound reads (the supervised classifier picks its two classes
by sample). Its split is `anomaly.signal_split`: most signal rows go to the test split the scores are judged on.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from ..config import AnomalyParams, DataParams, GenerateParams, StudyParams
from ..errors import ConfigError
from . import stages

CONTENTS = ("tokens", "features", "decoded")


def standard_model(data: DataParams, generate: GenerateParams, kind: str) -> list[str]:
    """The samples of `generate.samples` whose files the study reads (`data.files`): the standard model here."""
    out = Path(generate.output_dir)
    return [
        p
        for p in generate.samples
        if any(fnmatch.fnmatch(str(out / f"{kind}_{p}_000.h5"), pattern) for pattern in data.files)
    ]


def signals(anomaly: AnomalyParams, data: DataParams, generate: GenerateParams, kind: str) -> list[str]:
    """`anomaly.signals`, checked to be held out: no file of theirs is among the study's inputs."""
    out = Path(generate.output_dir)
    read = [p for p in anomaly.signals if any(fnmatch.fnmatch(str(out / f"{kind}_{p}_000.h5"), x) for x in data.files)]
    if read:
        raise ConfigError(
            f"anomaly.signals {read}: data.files reads their files, so the tokenizers and the backbone would learn "
            f"from them; a signal must be held out"
        )
    return list(anomaly.signals)


def signal_files(study: StudyParams, data: DataParams, generate: GenerateParams, anomaly: AnomalyParams) -> list[Path]:
    """The signals' files of the study's layout, generated first where missing (files that exist are kept)."""
    from ..generate import generate as make_samples
    from ..io.h5 import expand_files

    names = signals(anomaly, data, generate, study.kind)
    if not names:
        raise ConfigError("anomaly.signals is empty: chapter 08 needs at least one held-out sample to score")
    g = generate.replace(samples=dict(anomaly.signals))  # both layouts: the other study reads the same events
    make_samples(study, data, g, progress=True, only_missing=True)
    return expand_files([f"{generate.output_dir}/{study.kind}_{p}_*.h5" for p in names])


def export_data(data: DataParams, anomaly: AnomalyParams) -> DataParams:
    """The data section the signals are exported with: their files, `anomaly.signal_split`, and (for labels by
    sample) every signal in the signal class, so the export never meets an unknown sample."""
    split = {**data.split.to_dict(), **anomaly.signal_split.to_dict()}
    label = dict(data.label)
    if label.get("metadata") == "process" and isinstance(label.get("classes"), dict):
        label["classes"] = {**label["classes"], **{s: max(label["classes"].values()) for s in anomaly.signals}}
    return data.replace(split=split, label=label)


def signal_tokens(run) -> Path:
    """`artifacts/anomaly-tokens`: the signals exported with the study's cards, beside links to the standard-model
    token files (one folder, one vocabulary)."""
    params = stages.run_params(run)
    files = signal_files(params.study, params.data, params.generate, params.anomaly)
    cards = stages.tokenizers(run)
    sm_tokens = stages.tokens(run)
    data = export_data(params.data, params.anomaly).replace(files=[str(f) for f in files])

    def build(out: Path) -> None:
        from ..tokenizers.export import export

        p = params.replace(export={"output_dir": str(out), "overwrite": True})
        export(p.study, data, p.tokenizer, p.export, p.sequence, p.selection, progress=True)
        for content in CONTENTS:
            for source in sorted(sm_tokens.glob(f"*.{content}.parquet")):
                link = out / source.name
                if not link.exists():
                    os.symlink(os.path.relpath(source.resolve(), out.resolve()), link)

    inputs = {
        "files": files,
        "data": data.stage_inputs("files"),
        "cards": stages.identity(cards),
        "standard_model": stages.identity(sm_tokens),
        "export": params.export.stage_inputs(),
        "sequence": params.sequence.to_dict(),
        "selection": params.selection.to_dict() if params.export.derived else None,
        "code": stages.code("anomaly_tokens"),
    }
    return run.stage("anomaly-tokens", inputs, content=stages.token_file_hashes)(build)
