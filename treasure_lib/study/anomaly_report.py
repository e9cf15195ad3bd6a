"""Chapter 08's report: how well each score separates each held-out signal from the standard model, beside the
supervised upper bound, with a control for multiplicity (and jet pT), what each pretraining objective buys in
labels, and how close the next-token backbone's generated jets or events come to the test split.

Every score is judged on the same rows (the standard-model test rows against one signal's), in one paired
bootstrap over rows and seeds (`metrics.paired`), so that a difference between two scores carries the error of
the difference. Efficiencies are per row of the samples as generated (no cross-section weights): the standard-model
efficiency is that of the mixture the study reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..anomaly import anomaly_statistics, matched_weights
from ..formatting import fmt, seed_mean
from ..metrics import paired
from . import anomaly, generated, held_out, names, objectives, seeds, stages, wording, workers
from .report import ChapterReport

UNSUPERVISED = anomaly.SCORES
AXIS = {  # what each score's axis shows
    "masked": "Masked-token pseudo-likelihood, -log p [nats]",
    "masked_per_object": "Masked-token pseudo-likelihood per object, -log p [nats]",
    "next_token": "Next-token likelihood, -log p [nats]",
    "next_token_per_object": "Next-token likelihood per object, -log p [nats]",
    "reconstruction": "Tokenizer reconstruction error (MSE of scaled features)",
    "autoencoder": "Autoencoder reconstruction error (MSE of scaled features)",
}
TRIVIAL = ("objects", "jet_pt")  # scores that need no model, beside the others in every table
STATS = ("auc", "eff_at_1pc", "eff_at_0p1pc")


def supervised_task(signal: str, standard_model: list[str], sm_fraction: float) -> dict:
    """The supervised upper bound's task: the signal against every standard-model sample (a fixed `sm_fraction` of
    each one's rows), classes balanced."""
    return {
        "classes": {"standard_model": list(standard_model), "signal": [signal]},
        "others": "drop",
        "weights": "none",
        "balance": True,
        **({"sample_fractions": {s: sm_fraction for s in standard_model}} if sm_fraction < 1 else {}),
    }


def supervised_jobs(run, token_dir, signals: list[str], standard_model: list[str]) -> list[dict]:
    """`stages.classifiers` jobs of the supervised references: per signal, per seed of `anomaly.seeds`, a token
    classifier from scratch of the study's model size, trained with the signal's labels."""
    params = run.params
    return [
        dict(
            token_dir=token_dir,
            seed=int(s),
            name=f"anomaly_{signal}-tokens-100",
            classify={
                "task": f"anomaly_{signal}",
                "tasks": {
                    f"anomaly_{signal}": supervised_task(signal, standard_model, params.anomaly.supervised_sm_fraction)
                },
                "mode": "scratch",
                "inputs": "tokens",
                "label_fraction": 1.0,
            },
        )
        for signal in signals
        for s in params.anomaly.seeds
    ]


def train_models(run) -> None:
    """Everything chapter 08 trains, in two side-by-side rounds that keep the cores busy: first what reads nothing
    of the chapter (the backbones beyond chapter 05's, the supervised references), then what reads those
    backbones (the score stages, the classifiers fine-tuned from the next-token backbone); each round longest
    first. Stages already built are skipped; the numbers are those of building them one at a time."""
    params = stages.run_params(run)
    token_dir = held_out.signal_tokens(run)
    signals = held_out.signals(params.anomaly, params.data, params.generate, params.study.kind)
    sm = held_out.standard_model(params.data, params.generate, params.study.kind)
    first = stages.pending_backbones(run, anomaly.wanted_backbones(run))
    first += stages.pending_classifiers(run, supervised_jobs(run, token_dir, signals, sm))
    workers.side_by_side(run, "training the backbones and the supervised references", first)
    second = anomaly.pending_scores(run) + stages.pending_classifiers(run, objectives.label_efficiency_jobs(run))
    workers.side_by_side(run, "scoring the held-out samples and fine-tuning", second)


def supervised_scores(run, token_dir, signals: list[str], standard_model: list[str], rows: Mapping) -> dict:
    """Per signal, per seed of `anomaly.seeds`: the supervised classifier (tokens, from scratch, the study's model
    size) trained with the signal's labels, evaluated on the scored rows (its P(signal) as the score)."""
    from ..models import SequenceClassifier
    from ..training import predict

    params = run.params
    jobs = supervised_jobs(run, token_dir, signals, standard_model)
    names_ = [(signal, int(s)) for signal in signals for s in params.anomaly.seeds]
    recorded = stages.classifiers(run, jobs)
    out: dict = {}
    for (signal, s), numbers in zip(names_, recorded):
        found = sorted((run.artifacts / f"classify-anomaly_{signal}-tokens-100-s{s}").rglob("best.ckpt"))
        model = SequenceClassifier.load_from_checkpoint(found[0], map_location="cpu", weights_only=True)
        probs = predict(model, rows, params.classify.train.batch_size)
        entry = out.setdefault(signal, {"scores": [], "converged": []})
        entry["scores"].append(probs[:, 1].astype(np.float64))
        entry["converged"].append(seeds._recorded(numbers, "converged") == 1.0)
    return out


def _selection(arrays: Mapping, signal: str, min_pt_gev: float | None) -> np.ndarray:
    sel = np.isin(arrays["sample"], ["standard_model", signal])
    if min_pt_gev:
        sel &= arrays["jet_pt"] / 1e3 > min_pt_gev
    return sel


def predictions(arrays: Mapping, supervised: Mapping, signal: str, sel: np.ndarray, seed_list) -> dict:
    """{score: [per-seed scores of the selected rows]}: one entry for the deterministic tokenizer and for the trivial
    scores (the number of objects, the jet pT)."""
    out = {
        name: [arrays[name][sel]] if name == "reconstruction" else [arrays[f"{name}/seed_{s}"][sel] for s in seed_list]
        for name in UNSUPERVISED
    }
    out["supervised"] = [s[sel] for s in supervised[signal]["scores"]]
    for name in TRIVIAL:  # what no model is needed for: how a score compares with counting or with jet pT
        if name in arrays:
            out[name] = [arrays[name][sel].astype(np.float64)]
    return out


def separation(arrays: Mapping, supervised: Mapping, signal: str, a, n_boot: int, seed: int) -> dict:
    """One signal: the paired bootstrap of every score, and the same with the standard model reweighted to the
    signal's multiplicity (and jet pT) as controls."""
    sel = _selection(arrays, signal, a.min_jet_pt_gev.get(signal))
    y = (arrays["sample"][sel] == signal).astype(np.int64)
    preds = predictions(arrays, supervised, signal, sel, a.seeds)
    out = {"rows": {"signal": int(y.sum()), "standard_model": int((y == 0).sum())}}
    objects = arrays["objects"][sel]
    out["mean_objects"] = (float(objects[y == 0].mean()), float(objects[y == 1].mean()))
    out["boot"] = paired.paired_bootstrap(anomaly_statistics, y, None, preds, n_boot=n_boot, seed=seed)
    controls = {"objects": arrays["objects"][sel].astype(np.float64)}
    if "jet_pt" in arrays:
        controls["jet_pt"] = arrays["jet_pt"][sel] / 1e3
    out["controls"] = {}
    for name, values in controls.items():
        matched = matched_weights(values[y == 0], values[y == 1], _bins(name, values[y == 1]))
        w = np.zeros(len(y))
        w[y == 0] = matched.sm_weights
        w[y == 1] = matched.sig_weights
        dropped = matched.dropped_fraction
        rows = w > 0
        boot = paired.paired_bootstrap(
            anomaly_statistics,
            y[rows],
            w[rows],
            {k: [p[rows] for p in v] for k, v in preds.items()},
            n_boot=n_boot,
            seed=seed,
        )
        out["controls"][name] = {"boot": boot, "dropped": dropped}
    return out


def _bins(control: str, signal_values: np.ndarray) -> np.ndarray | None:
    """Control-variable bins: every multiplicity (None: one bin per value); signal pT quantiles (20 bins)."""
    if control == "objects":
        return None
    edges = np.unique(np.quantile(signal_values, np.linspace(0, 1, 21)))
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def separation_items(signal: str, found: Mapping, seed_list, converged: Mapping[str, bool]) -> dict[str, float]:
    """`anomaly.<signal>.<score>.*`: seed means, errors and spreads, each seed's AUC, the controls, and whether every
    model behind the score finished learning (`converged`: {score: bool})."""
    out = {f"anomaly.{signal}.rows": float(found["rows"]["signal"])}
    out[f"anomaly.{signal}.sm_rows"] = float(found["rows"]["standard_model"])
    boot = found["boot"]
    j = boot.stats.index("auc")
    for score in boot.names:
        for k, v in boot.summary(score).items():
            out[f"anomaly.{signal}.{score}.{k}"] = float(v)
        if score in converged:
            out[f"anomaly.{signal}.{score}.converged"] = 1.0 if converged[score] else 0.0
        values = boot.nominal[score][:, j]
        if len(values) == len(seed_list):
            for s, value in zip(seed_list, values):
                out[f"anomaly.{signal}.{score}.seed_{s}.auc"] = float(value)
        for control, c in found["controls"].items():
            for k, v in c["boot"].summary(score).items():
                out[f"anomaly.{signal}.{score}.{control}_matched.{k}"] = float(v)
    return out


def score_health(run, info: Mapping, supervised: Mapping) -> dict[str, dict[str, bool]]:
    """Per signal and score: did every model behind it finish learning (backbones, autoencoders, classifiers)."""
    m = run.metrics()
    seeds_ = run.params.anomaly.seeds
    backbone = {}
    for objective in anomaly.OBJECTIVES:
        flags = []
        for s in seeds_:
            _, variant = stages.pretrain_variant(run, objective, s)
            flags.append(m.get(("pretrain." if variant is None else f"pretrain.{variant}.") + "converged") == 1.0)
        backbone[objective] = backbone[f"{objective}_per_object"] = all(flags)
    ae = all(bool(v.get("converged")) for v in info.get("autoencoder", {}).values())
    return {
        signal: {**backbone, "autoencoder": ae, "supervised": all(entry["converged"])}
        for signal, entry in supervised.items()
    }


def separation_table(signal: str, found: Mapping) -> list[dict]:
    """Rows: the scores; columns: AUC and efficiencies (seed mean ± bootstrap error, seed spread), the controls."""
    rows = []
    for score in found["boot"].names:
        s = found["boot"].summary(score)
        row = {"score": names.model(score)}
        for stat, title in zip(STATS, ("AUC", "signal eff. at 1% SM eff.", "at 0.1% SM eff.")):
            row[title] = seed_mean(s[stat], s[f"{stat}_err"], s[f"{stat}_seed_std"])
        for control, c in found["controls"].items():
            m = c["boot"].summary(score)
            title = "AUC, SM matched in " + ("number of objects" if control == "objects" else "jet pT")
            row[title] = seed_mean(m["auc"], m["auc_err"], m["auc_seed_std"])
        rows.append(row)
    return rows


def samples_table(arrays: Mapping, info: Mapping, processes: Mapping, signals: list[str]) -> list[dict]:
    """What each scored sample is: its description, test rows scored, objects per row (and jet pT)."""
    rows = []
    for name in ["standard_model", *signals]:
        at = arrays["sample"] == name
        row = {
            "sample": names.sample(name),
            "what it is": processes.get(name, {}).get(
                "description", "the samples the tokenizers and backbones learn from"
            ),
            "test rows scored": int(at.sum()),
            (
                "objects per jet (the jet and its tracks), mean" if "jet_pt" in arrays else "objects per event, mean"
            ): fmt(float(np.mean(arrays["objects"][at]))),
        }
        if "jet_pt" in arrays:
            row["median jet pT [GeV]"] = fmt(float(np.median(arrays["jet_pt"][at])) / 1e3)
        rows.append(row)
    return rows


def score_figures(arrays: Mapping, signals: list[str], first_seed: int) -> dict[str, dict]:
    """`plots.anomaly.score_distributions` arguments per score (the first seed's backbones)."""
    out = {}
    for score in UNSUPERVISED:
        key = score if score == "reconstruction" else f"{score}/seed_{first_seed}"
        values = arrays[key]
        scores = {"SM test": values[arrays["sample"] == "standard_model"]}
        scores.update({names.sample(s): values[arrays["sample"] == s] for s in signals})
        out[f"scores_{score}"] = {
            "scores": scores,
            "xlabel": AXIS[score],
            "name": f"anomaly_scores_{score}",
        }
    return out


def roc_figure(arrays: Mapping, supervised: Mapping, signal: str, a) -> dict:
    """`plots.anomaly.roc_curves` arguments: every score of one signal (first seed), on the rows it is judged on."""
    from ..metrics import roc_points

    sel = _selection(arrays, signal, a.min_jet_pt_gev.get(signal))
    y = arrays["sample"][sel] == signal
    preds = predictions(arrays, supervised, signal, sel, a.seeds)
    curves = {names.first_upper(names.model(k)): roc_points(v[0][~y], v[0][y]) for k, v in preds.items()}
    return {"curves": curves, "name": f"anomaly_roc_{signal}"}


def report(run) -> ChapterReport:
    from ..generate.run import load_processes

    params = stages.run_params(run)
    a = params.anomaly
    train_models(run)
    arrays, info = anomaly.load(run)
    token_dir = held_out.signal_tokens(run)
    signals = held_out.signals(a, params.data, params.generate, params.study.kind)
    sm = held_out.standard_model(params.data, params.generate, params.study.kind)
    rows = anomaly.chosen_test_rows(token_dir, signals, a, params.study.seed)
    supervised = supervised_scores(run, token_dir, signals, sm, rows)
    rep = ChapterReport()
    rep.tables["samples"] = samples_table(arrays, info, load_processes(params.generate.processes_file), signals)
    rep.captions["samples"] = "The samples every score is judged on (test split; the signals are held out)."
    rep.text["samples"] = wording.held_out_sentence(signals, sm, info["rows"])
    rep.figures.update(score_figures(arrays, signals, a.seeds[0]))
    health = score_health(run, info, supervised)
    for signal in signals:
        found = separation(arrays, supervised, signal, a, params.classify.n_boot, params.study.seed)
        rep.metrics.update(separation_items(signal, found, a.seeds, health[signal]))
        rep.tables[f"separation_{signal}"] = separation_table(signal, found)
        rep.captions[f"separation_{signal}"] = (
            f"{names.sample(signal)}: {found['rows']['signal']} signal and {found['rows']['standard_model']} "
            "standard-model test rows"
            + (f" with jet pT > {a.min_jet_pt_gev[signal]:g} GeV" if a.min_jet_pt_gev.get(signal) else "")
            + ". Seed mean ± bootstrap error (seed spread); the tokenizer's error has no seed."
        )
        cut = a.min_jet_pt_gev.get(signal)
        rep.text[f"separation_{signal}"] = wording.anomaly_verdict(
            signal,
            found,
            health[signal],
            "jets" if params.study.kind == "jets" else "events",
            supervised_everywhere=f"jet pT > {cut:g} GeV" if cut else None,
        )
        rep.figures[f"roc_{signal}"] = roc_figure(arrays, supervised, signal, a)
    rep.tables["backbones"], rep.text["backbones"] = objectives.backbone_health(run, info)
    efficiency = objectives.label_efficiency(run)
    rep.text["label_efficiency"] = efficiency["text"]
    rep.figures["label_efficiency"] = efficiency["figure"]
    found = generated.compare(run, arrays, token_dir, a, signals, params.study.seed)
    rep.metrics.update(found["metrics"])
    rep.tables["generated"], rep.text["generated"], rep.figures["generated"] = (
        found["table"],
        found["text"],
        found["figure"],
    )
    rep.captions["generated"] = (
        f"Seed {a.seeds[0]}'s generated rows against the standard-model test rows: W1 distance over the test "
        "standard deviation, and the same distance of an independent standard-model sample of equal size (mean ± "
        "spread over resamples)."
    )
    run.log_metrics(rep.metrics)
    return rep
