"""The generalisation protocol of the seed material: train on one background, test on others.

Events: the tokenizer is fitted once on mixed events; the classifier learns signal vs background A
(qqZZ -> 4l inside the H -> 4l signal region) and is tested, after the four-lepton preselection and with
cross-section weights, on signal vs A and on signal vs each other background, with the same tokens; the
change in AUC says how much it learned "signal" rather than "not A". Jets: flavour is
learned on ttbar jets and tested on the high-pT Z' sample, overall and in bins of jet pT.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..datamodules import TokenFiles, read_split
from ..datamodules import tasks as T
from ..datamodules.tasks import Task
from ..errors import InputFileError
from ..formatting import fmt, signed
from ..metrics import paired
from ..models import SequenceClassifier
from ..training import predict
from . import names, seeds, stages, wording


def _model(run, name: str) -> SequenceClassifier:
    found = sorted((run.artifacts / f"classify-{name}").rglob("best.ckpt"))
    if not found:
        raise FileNotFoundError(f"classifier '{name}' has no best checkpoint in {run.artifacts}")
    return SequenceClassifier.load_from_checkpoint(found[0], map_location="cpu", weights_only=True)


PRESELECTION = "pass_h4l_preselection"  # the documented H -> 4l preselection (treasure_lib.higgs4l.derived_columns)
MIN_BACKGROUND_EVENTS = 10  # test events a background needs before its AUC is quoted


def events(run, task_name: str | None = None) -> dict:
    """Chapter 06's first-seed classifier of the task (H vs ZZ* in the signal region) applied, after the
    preselection, to the signal against each background of the test split, with cross-section weights.

    Rows: the signal region's test rows (what the classifier was trained for), then, after the preselection, the
    signal against every sample, each with its AUC (weighted), Hanley-McNeil uncertainty and the numbers of test
    events and their cross section [fb]; a background with fewer than `MIN_BACKGROUND_EVENTS` test events gets no AUC.
    """
    params = stages.run_params(run)
    task = Task.from_params(params.classify, task_name or params["classify"]["task"])
    seed = params["classify"]["seeds"][0]
    recorded = stages.classifier(run, seed=seed, classify={"task": task.name, "mode": "scratch", "inputs": "tokens"})
    model = _model(run, seeds.stage_name(task.name, "tokens", 1.0, seed))  # chapter 06's first-seed classifier
    signal = [s for s, c in task.classes.items() if c == 1]
    trained_on = [s for s, c in task.classes.items() if c == 0]
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    if PRESELECTION not in files.columns:
        raise InputFileError(
            f"{files.paths[0]}: the generalisation protocol needs column '{PRESELECTION}'; export the "
            "token files with export.derived: [h4l]"
        )
    rows = read_split(files, None, "test", extra=["process", PRESELECTION, *task.require])
    rows = T.restrict(task, rows, files.set, str(files.paths[0]))  # what the model was trained to read
    process = rows["process"].astype(str)
    xsec = Task(name=f"{task.name}-test", class_names=task.class_names, weights="cross_section")
    weight_fb = T.sample_weights(xsec, rows, str(files.paths[0].parent)) * 1e3  # pb -> fb
    in_region = T.required(task, rows, str(files.paths[0].parent))
    keep = in_region | rows[PRESELECTION]
    probs = np.full(len(process), np.nan)
    if keep.any():
        chosen = {k: v[keep] for k, v in rows.items()}
        probs[keep] = predict(model, chosen, params["classify"]["train"]["batch_size"])[:, 1]
    table, n_signal = after_preselection(task, process, in_region, rows[PRESELECTION], probs, weight_fb)
    out = generalisation_metrics(table, "_".join(trained_on))
    prefix = f"classify.{task.name}.tokens.seed_{seed}"
    converged = recorded.get(f"{prefix}.converged") == 1.0
    out[f"generalisation.{'_'.join(trained_on)}_to_preselection.converged"] = 1.0 if converged else 0.0
    run.log_metrics(out)
    health = {k[len(prefix) + 1 :]: v for k, v in recorded.items() if k.startswith(prefix + ".")}
    return {
        "table": table,
        "metrics": out,
        "converged": converged,
        "health": health,
        "task": task.name,
        "trained_on": trained_on,
        "signal": signal,
        "n_signal": n_signal,
    }


def after_preselection(task: Task, process, in_region, preselected, probs, weight_fb) -> tuple[list[dict], dict]:
    """The protocol's table from per-row arrays of the test split: the signal vs each background of the task's
    class 0 in its own region (the reference), then vs every background after the preselection; and the signal's
    test events in each."""
    process = np.asarray(process).astype(str)
    signal = [s for s, c in task.classes.items() if c == 1]
    trained_on = [s for s, c in task.classes.items() if c == 0]
    is_signal = np.isin(process, signal)
    table = [_row(b, "signal region", is_signal, process == b, in_region, probs, weight_fb, True) for b in trained_on]
    for background in sorted(set(process) - set(signal)):
        table.append(
            _row(
                background,
                "preselection",
                is_signal,
                process == background,
                preselected,
                probs,
                weight_fb,
                background in trained_on,
            )
        )
    reference = next((r["auc"] for r in table if r["region"] == "signal region"), float("nan"))
    for row in table:
        row["auc_change"] = row["auc"] - reference
    n_signal = {
        "signal region": int((is_signal & in_region).sum()),
        "preselection": int((is_signal & preselected).sum()),
    }
    return table, n_signal


def generalisation_metrics(table, label: str) -> dict[str, float]:
    """`generalisation.<trained on>_to_<background>.{n_background,background_fb,auc,auc_err,auc_change}` after the
    preselection (the AUC keys only where an AUC is quoted)."""
    out = {}
    for row in table:
        if row["region"] != "preselection":
            continue
        key = f"generalisation.{label}_to_{row['background']}"
        out.update({f"{key}.n_background": float(row["n_background"]), f"{key}.background_fb": row["background_fb"]})
        if np.isfinite(row["auc"]):
            out.update({f"{key}.{k}": row[k] for k in ("auc", "auc_err", "auc_change")})
    return out


def _row(background, region, is_signal, is_background, selected, probs, weight_fb, trained_on) -> dict:
    """AUC of signal vs one background among the selected test rows (weighted), with the background's numbers."""
    sig, bkg = is_signal & selected, is_background & selected
    row = {
        "background": background,
        "region": region,
        "trained_on": bool(trained_on),
        "n_background": int(bkg.sum()),
        "background_fb": float(weight_fb[bkg].sum()),
        "auc": float("nan"),
        "auc_err": float("nan"),
    }
    if bkg.sum() >= MIN_BACKGROUND_EVENTS and sig.sum() >= MIN_BACKGROUND_EVENTS:
        sel = sig | bkg
        y, p, w = sig[sel].astype(np.int64), probs[sel], weight_fb[sel]
        row.update(auc=metrics.auc(y, p, w), auc_err=metrics.auc_uncertainty(y, p, w))
    return row


def events_table(gen: dict) -> list[dict]:
    """Display rows: the signal region first, then every background after the preselection, by AUC."""
    rows = sorted(gen["table"], key=lambda r: (r["region"] != "signal region", -np.nan_to_num(r["auc"], nan=-1.0)))
    return [
        {
            "tested against": names.sample(r["background"]) + (" (trained on)" if r["trained_on"] else ""),
            "events": r["region"],
            "AUC": fmt(r["auc"], r["auc_err"]),
            "change": fmt(r["auc_change"]) if np.isfinite(r["auc"]) else "—",
            "background test events": r["n_background"],
            "background σ × ε [fb]": fmt(r["background_fb"]),
        }
        for r in rows
    ]


def events_sentence(gen: dict) -> str:
    """The generalisation verdict of the signal-region classifier after the preselection."""
    trained = " + ".join(names.sample(s) for s in gen["trained_on"])
    if not gen["converged"]:
        return (
            f"The classifier trained against {trained} did not finish learning "
            f"({wording.health_phrase(gen['health'])}): its numbers below carry no verdict."
        )
    table = gen["table"]
    ref = next((r for r in table if r["region"] == "signal region"), None)
    if ref is None or not np.isfinite(ref["auc"]):
        return (
            f"Too few test events in the signal region ({gen['n_signal']['signal region']} signal) to quote the "
            "classifier's AUC there: nothing to compare with."
        )
    text = (
        f"Trained against {trained} in the signal region (AUC {fmt(ref['auc'], ref['auc_err'])} on its "
        f"{gen['n_signal']['signal region']} signal and {ref['n_background']} background test events), after the "
        f"preselection ({gen['n_signal']['preselection']} signal test events) the classifier separates the signal "
        "from: "
    )
    quoted = [r for r in table if r["region"] == "preselection" and np.isfinite(r["auc"])]
    text += (
        "; ".join(
            f"{names.sample(r['background'])} with AUC {fmt(r['auc'], r['auc_err'])} "
            f"({signed(r['auc_change'])}, {r['n_background']} events, {fmt(r['background_fb'])} fb)"
            for r in quoted
        )
        or "no background"
    )
    text += "."
    below = [names.sample(r["background"]) for r in quoted if r["auc"] + r["auc_err"] < 0.5]
    if below:
        text += (
            f" Below 0.5 ({', '.join(below)}), it ranks that background as more signal-like than the signal: it "
            "learned what separates the signal from ZZ*, not what the signal looks like."
        )
    thin = [r for r in table if r["region"] == "preselection" and not np.isfinite(r["auc"])]
    if thin:
        text += (
            f" Fewer than {MIN_BACKGROUND_EVENTS} test events pass the preselection for "
            + ", ".join(f"{names.sample(r['background'])} ({r['n_background']})" for r in thin)
            + ": at this sample size the four-lepton preselection leaves nothing of them to test against, so "
            "their AUC is not quoted (their cross section after it is bounded in chapter 01)."
        )
    return text


def jets(run, train_task: str = "flavour_ttbar", test_samples=("ttbar", "Zprime_qq")) -> dict:
    """Flavour learned on ttbar jets only (converged, its training health recorded), evaluated on each test
    sample overall and in jet-pT bins, by light- and c-jet rejection at 77% b-efficiency (the macro AUC is not
    comparable between samples with and without tau jets)."""
    params = stages.run_params(run)
    task = Task.from_params(params.classify, train_task)
    seed = params["classify"]["seeds"][0]
    recorded = stages.classifier(
        run, name=train_task, seed=seed, classify={"task": task.name, "mode": "scratch", "inputs": "tokens"}
    )
    model = _model(run, f"{train_task}-s{seed}")
    files = TokenFiles(sorted(stages.tokens(run).glob("*.tokens.parquet")))
    source = "_".join(task.samples) or "all"
    stat_fn = seeds.statistic(task, params.classify)
    out, results = {}, {}
    for sample in test_samples:
        test_task = Task(
            name=f"{task.name}-{sample}", class_names=task.class_names, column=task.column, samples=(sample,)
        )
        rows = read_split(files, test_task, "test", extra=["jet_pt", "process"])
        if not len(rows["label"]):
            continue
        probs = predict(model, rows, params["classify"]["train"]["batch_size"])
        counts = {f"n_{name}": int((rows["label"] == i).sum()) for i, name in enumerate(task.class_names)}
        try:
            boot = paired.paired_bootstrap(
                stat_fn,
                rows["label"],
                rows["weight"],
                {"model": [probs]},
                n_boot=params["classify"]["n_boot"],
                seed=params["study"]["seed"],
            )
        except metrics.MetricInputError as err:  # a test sample without b, c or light jets: nothing to quote
            results[sample] = {"error": str(err), "counts": counts, "rows": len(rows["label"])}
            continue
        summary = boot.summary("model")
        bins = seeds.binned(
            stat_fn,
            rows["label"],
            rows["weight"],
            [probs],
            rows["jet_pt"] / 1e3,
            params["classify"]["pt_bins_gev"],
            "light_rejection_at_77",
            min_jets=MIN_JETS_PER_BIN,
        )
        results[sample] = {"summary": summary, "counts": counts, "rows": len(rows["label"]), "bins": bins}
        key = f"generalisation.{source}_to_{sample}"
        for stat in ("light_rejection_at_77", "c_rejection_at_77", "auc_b"):
            out[f"{key}.{stat}"] = float(summary[stat])
            out[f"{key}.{stat}_err"] = float(summary[f"{stat}_err"])
        out.update({f"{key}.{k}": float(v) for k, v in counts.items()})
        for b in bins:
            if np.isfinite(b["value"]):
                out[f"{key}.pt_bin_{b['low']:g}_{b['high']:g}.light_rejection_at_77"] = float(b["value"])
                out[f"{key}.pt_bin_{b['low']:g}_{b['high']:g}.light_rejection_at_77_err"] = float(b["err"])
    prefix = f"classify.{task.name}.tokens.seed_{seed}"
    converged = recorded.get(f"{prefix}.converged") == 1.0
    for sample in results:
        out[f"generalisation.{source}_to_{sample}.converged"] = 1.0 if converged else 0.0
    run.log_metrics(out)
    health = {k[len(prefix) + 1 :]: v for k, v in recorded.items() if k.startswith(prefix + ".")}
    return {"results": results, "metrics": out, "converged": converged, "health": health, "source": source}


MIN_JETS_PER_BIN = 50


def _shift_sentence(gen: dict) -> str:
    """How far light rejection moves from the training sample's own test jets to each other sample's: the two test
    sets are disjoint, so the errors add in quadrature; significant by the project's one rule."""
    res, source, key = gen["results"], gen["source"], "light_rejection_at_77"
    mine = res.get(source)
    if not mine or "error" in mine:
        return ""
    own = mine["summary"]
    out = []
    for sample, r in res.items():
        if sample == source or "error" in r:
            continue
        diff = r["summary"][key] - own[key]
        err = float(np.hypot(r["summary"][f"{key}_err"], own[f"{key}_err"]))
        verdict = "a significant change" if paired.significance(diff, err) else "not significant at this sample size"
        z = f"{abs(diff) / err:.1f} σ: " if err > 0 else ""
        out.append(
            f" On {names.sample(sample)} jets light rejection moves by {fmt(diff, err)} against "
            f"{names.sample(source)}'s own test jets ({z}{verdict}; independent test "
            "samples, errors added in quadrature)."
        )
    return "".join(out)


def jets_sentence(gen: dict) -> str:
    """The generalisation verdict for the flavour model trained on one sample."""
    res = gen["results"]
    if not gen["converged"]:
        return (
            f"The flavour model trained on {gen['source']} jets only did not finish learning "
            f"({wording.health_phrase(gen['health'])}): its numbers below carry no verdict."
        )
    parts = []
    for sample, r in res.items():
        if "error" in r:
            parts.append(f"{names.sample(sample)}: no rejection can be quoted ({r['error']})")
            continue
        parts.append(
            f"{names.sample(sample)} test jets ({r['counts'].get('n_b', 0)} b, {r['counts'].get('n_c', 0)} c, "
            f"{r['counts'].get('n_light', 0)} light): light rejection "
            f"{fmt(r['summary']['light_rejection_at_77'], r['summary']['light_rejection_at_77_err'])}, c rejection "
            f"{fmt(r['summary']['c_rejection_at_77'], r['summary']['c_rejection_at_77_err'])}"
        )
    empty = [s for s, r in res.items() if not any(np.isfinite(b["value"]) for b in r.get("bins", []))]
    text = (
        f"Trained on {gen['source']} jets only (converged), at 77% b-efficiency: " + "; ".join(parts) + ". "
        "The b-tagging working point is set on each test sample's own b-jets, so the rejections compare like with "
        "like; the macro AUC is not used (a sample without tau jets averages fewer classes)."
    )
    text += _shift_sentence(gen)
    if empty:
        text += (
            f" No pT bin of {', '.join(names.sample(s) for s in empty)} holds {MIN_JETS_PER_BIN} b-jets and "
            f"{MIN_JETS_PER_BIN} light jets: too few to say where the performance degrades."
        )
    return text
