"""The generalisation protocol of the seed material: train on one background, test on others.

Events: the tokenizer is fitted once on mixed events; the classifier learns signal vs background A
(qqZZ -> 4l) and is tested on signal vs A and on signal vs each other background, with the same
tokens; the change in AUC says how much it learned "signal" rather than "not A". Jets: flavour is
learned on ttbar jets and tested on the high-pT Z' sample, overall and in bins of jet pT.
"""
from __future__ import annotations

import numpy as np

from .. import metrics
from ..datamodules import TokenFiles, read_split
from ..datamodules.tasks import Task
from ..models import SequenceClassifier
from ..training import evaluate, predict
from . import stages


def _model(run, name: str) -> SequenceClassifier:
    found = sorted((run.artifacts / f"classify-{name}").rglob("best.ckpt"))
    if not found:
        raise FileNotFoundError(f"classifier '{name}' has no best checkpoint in {run.artifacts}")
    return SequenceClassifier.load_from_checkpoint(found[0], map_location="cpu", weights_only=True)


def events(run, task_name: str = "h_vs_qqzz") -> dict:
    """AUC of a signal vs background-A classifier on signal vs every background of the test split."""
    params = stages.run_params(run)
    task = Task.from_params(params, task_name)
    stages.classifier(run, classify__task=task.name, classify__mode="scratch", classify__inputs="tokens")
    model = _model(run, f"{task.name}-tokens-100")  # the chapter-06 classifier itself, not a retrained copy
    signal = [s for s, c in task.classes.items() if c == 1]
    trained_on = [s for s, c in task.classes.items() if c == 0]
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    rows = read_split(files, None, "test", extra=["process"])
    rows["label"] = np.isin(rows["process"].astype(str), signal).astype(np.int64)
    probs = predict(model, rows, params["classify"]["train"]["batch_size"])[:, 1]
    out, table = {}, []
    reference = None
    for background in sorted(set(rows["process"].astype(str)) - set(signal)):
        sel = np.isin(rows["process"].astype(str), signal + [background])
        y = rows["label"][sel]
        if len(np.unique(y)) < 2:
            continue
        auc, err = metrics.auc(y, probs[sel]), metrics.auc_uncertainty(y, probs[sel])
        table.append({"background": background, "trained_on": background in trained_on, "auc": auc, "auc_err": err,
                      "n_background": int((y == 0).sum())})
        if background in trained_on:
            reference = auc
    label = "_".join(trained_on)
    for row in table:
        row["auc_change"] = row["auc"] - reference if reference is not None else float("nan")
        key = f"generalisation.{label}_to_{row['background']}"
        out.update({f"{key}.auc": row["auc"], f"{key}.auc_err": row["auc_err"], f"{key}.auc_change": row["auc_change"]})
    run.log_metrics(out)
    return {"table": table, "metrics": out, "probs": probs, "rows": {"process": rows["process"], "label": rows["label"]}}


def jets(run, train_task: str = "flavour_ttbar", test_samples=("ttbar", "Zprime_qq")) -> dict:
    """Flavour learned on ttbar jets, evaluated on each test sample overall and in jet-pT bins."""
    params = stages.run_params(run)
    task = Task.from_params(params, train_task)
    stages.classifier(run, name=train_task, classify__task=task.name, classify__mode="scratch", classify__inputs="tokens")
    model = _model(run, train_task)
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    source = "_".join(task.samples) or "all"
    out, results = {}, {}
    for sample in test_samples:
        test_task = Task(name=f"{task.name}-{sample}", class_names=task.class_names, column=task.column,
                         samples=(sample,))
        rows = read_split(files, test_task, "test", extra=["jet_pt", "process"])
        if not len(rows["label"]):
            continue
        probs = predict(model, rows, params["classify"]["train"]["batch_size"])
        summary = evaluate(task, rows, probs, params)
        results[sample] = {"summary": summary, "rows": len(rows["label"]), "jet_pt_gev": rows["jet_pt"] / 1e3,
                           "label": rows["label"], "probs": probs}
        out.update({f"generalisation.{source}_to_{sample}.{k}": float(v) for k, v in summary.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool)})
    run.log_metrics(out)
    return {"results": results, "metrics": out}
