"""Leakage checks: does a classifier read the token content, or only the event's shape?

A token sequence also tells a model how many objects of each type an event has (its shape); a
tagger that counts tracks or jets can separate processes without reading a single code. The
report compares six inputs (`LEAKAGE_ROWS`): multiplicities only, per-type constant tokens
(structure only), tokens shuffled within type across events, fixed slots without SEP / type ids,
the full tokens, and the raw features, then says in words how much of the full-token AUC the
event shape alone explains:

    feats = multiplicity_features(type_ids, mask, n_types=7)
    mult = multiplicity_classifier(feats, label, weight, split, seed=0)
    table = leakage_table({"multiplicity": mult["summary"], "tokens": token_summary, ...})
    print(leakage_verdict(table))

Arrays follow the grouped layout (DESIGN amendments): `tokens` int [n, L, Q], `type_ids` int [n, L]
(0 = special position: CLS, SEP, PAD), `mask` bool [n, L], `label` int [n], `weight` float [n],
`split` [n] (0 train, 1 val, 2 test, or the names). Ids below `N_SPECIAL` are the specials
PAD 0, CLS 1, SEP 2, MASK 3, EMPTY 4. The data checks that guard the inputs themselves live beside
their subjects: no row in two splits across stages (`splits.check_disjoint_splits`), and no label proxy
among a model's input columns (`diagnostics.label_proxies`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from .. import splits
from ..errors import LeakageError
from ..formatting import fmt, signed
from ..vocabulary import N_SPECIAL  # PAD 0, CLS 1, SEP 2, MASK 3, EMPTY 4; codes start here

LEAKAGE_ROWS = (
    ("multiplicity", "Multiplicities only"),
    ("structure", "Structure only (per-type constant tokens)"),
    ("shuffled", "Tokens shuffled within type"),
    ("fixed_slots", "Fixed slots, no SEP / type ids"),
    ("tokens", "Full tokens"),
    ("raw", "Raw features"),
)
SHAPE_ROWS = ("multiplicity", "structure", "shuffled")  # inputs that see the event shape only
# Fraction of the full-token separation explained by shape -> words (first threshold reached).
VERDICT_WORDS = (
    (0.9, "nearly all"),
    (0.6, "most"),
    (0.3, "a substantial part"),
    (0.1, "a small part"),
    (-np.inf, "almost none"),
)


# ---------------------------------------------------------------- event shape as features


def _check_sequences(type_ids, mask, tokens=None) -> tuple[np.ndarray, np.ndarray]:
    type_ids, mask = np.asarray(type_ids), np.asarray(mask, dtype=bool)
    if type_ids.ndim != 2 or type_ids.shape != mask.shape:
        raise LeakageError(f"type_ids and mask must both be [n, L], got {type_ids.shape} and {mask.shape}")
    if tokens is not None and (np.ndim(tokens) != 3 or np.shape(tokens)[:2] != mask.shape):
        raise LeakageError(
            f"tokens must be grouped [n, L, Q] matching mask {mask.shape}, got {np.shape(tokens)} "
            "(flat-layout tokens: regroup them per object first)"
        )
    if type_ids.size and type_ids.min() < 0:
        raise LeakageError(f"type_ids must be >= 0, got {int(type_ids.min())}")
    return type_ids.astype(np.int64, copy=False), mask


def multiplicity_features(type_ids, mask, n_types: int) -> np.ndarray:
    """Per sequence [n, n_types + 1]: the number of valid positions of each type id 1..n_types
    (column j counts type j + 1; type 0, the special CLS / SEP positions, is left out), then the
    sequence length (all valid positions, specials included). In the flat layout a position is one
    code, so a type's count is its multiplicity times its number of levels; with `sequence.type_ids:
    false` every count is 0 and only the length is left."""
    type_ids, mask = _check_sequences(type_ids, mask)
    if type_ids.size and type_ids[mask].max(initial=0) > n_types:
        raise LeakageError(f"type id {int(type_ids[mask].max())} is above n_types={n_types}")
    n = type_ids.shape[0]
    objects = mask & (type_ids > 0)
    rows = np.broadcast_to(np.arange(n)[:, None], type_ids.shape)[objects]
    flat = rows * n_types + type_ids[objects] - 1
    counts = np.bincount(flat, minlength=n * n_types).reshape(n, n_types)
    return np.column_stack([counts, mask.sum(axis=1)]).astype(np.float64)


def multiplicity_classifier(
    features, labels, weights, split, seed: int = 0, *, max_iter: int = 200, n_boot: int = 200
) -> dict:
    """Gradient-boosted trees (scikit-learn HistGradientBoostingClassifier) on `features` of the
    train rows, early-stopped on the val rows when there are any, evaluated on the test rows.

    Training weights are the given weights scaled so each class has the same total (negative weights
    keep their sign); evaluation uses the given weights. Labels 0/1 are a binary task (signal = 1),
    more classes a multi-class one (macro AUC). Returns scores (test rows: [n_test] P(signal), or
    [n_test, C] class probabilities), test_index (their rows), model, and summary: auc, auc_err,
    the rest of `metrics.binary_summary` / `multiclass_summary`, n_train, n_val, n_test, n_iter.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    from .. import metrics

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    w = np.ones(y.size) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    s = splits.codes_of(split).reshape(-1)
    if not (x.ndim == 2 and len(x) == y.size == w.size == s.size):
        raise LeakageError(
            f"features {x.shape}, labels {y.shape}, weights {w.shape}, split {s.shape}: "
            "need [n, F] and three [n] arrays"
        )
    train, val, test = (s == 0), (s == 1), (s == 2)
    if np.unique(y[train]).size < 2 or not test.any():
        raise LeakageError(
            f"need train rows of at least two classes and some test rows, got "
            f"classes {np.unique(y[train]).tolist()} in train and {int(test.sum())} test rows"
        )
    model = HistGradientBoostingClassifier(max_iter=max_iter, early_stopping=bool(val.any()), random_state=seed)
    extra = {}
    if val.any():
        extra = {
            "X_val": x[val],
            "y_val": y[val],
            "sample_weight_val": metrics.normalise_weights(w[val], y[val], balance=True),
        }
    model.fit(x[train], y[train], sample_weight=metrics.normalise_weights(w[train], y[train], balance=True), **extra)
    proba = model.predict_proba(x[test])
    n_classes = max(int(y.max()) + 1, 2)
    probs = np.zeros((proba.shape[0], n_classes))
    probs[:, model.classes_] = proba
    if n_classes == 2:
        scores = probs[:, 1]
        summary = metrics.binary_summary(y[test], scores, w[test], n_boot=n_boot, seed=seed)
    else:
        scores = probs
        summary = metrics.multiclass_summary(y[test], probs, w[test], n_boot=n_boot, seed=seed)
        summary = {"auc": summary["auc_macro"], "auc_err": summary["auc_macro_err"], **summary}
    summary.update(n_train=int(train.sum()), n_val=int(val.sum()), n_test=int(test.sum()), n_iter=int(model.n_iter_))
    return {"scores": scores, "test_index": np.flatnonzero(test), "model": model, "summary": summary}


# ---------------------------------------------------------------- token transforms


def constant_per_type(tokens, type_ids, mask, first_id_of_type: Mapping[int, int | Iterable[int]]) -> np.ndarray:
    """Tokens with every code of an object replaced by a constant of its type: the event keeps its
    shape (positions, multiplicities, type ids) and loses all content.

    `first_id_of_type` {type id: vocabulary id}, one id for all levels, or a list with one per level
    (e.g. the first id of each (collection, level) range). Special ids (PAD, CLS, SEP, MASK, EMPTY,
    i.e. below N_SPECIAL) and masked positions are left as they are. Returns a new array.
    """
    tokens = np.asarray(tokens)
    type_ids, mask = _check_sequences(type_ids, mask, tokens)
    q = tokens.shape[2]
    top = max([int(type_ids.max(initial=0))] + [int(t) for t in first_id_of_type])
    table = np.full((top + 1, q), -1, dtype=np.int64)
    for t, ids in first_id_of_type.items():
        ids = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        if ids.size > q:
            raise LeakageError(f"type {t}: {ids.size} constant ids for {q} levels")
        table[int(t), : ids.size] = ids
        if ids.size == 1:  # one id for every level
            table[int(t), :] = ids[0]
    replace = (mask & (type_ids > 0))[..., None] & (tokens >= N_SPECIAL)
    constant = table[type_ids]
    missing = replace & (constant < 0)
    if missing.any():
        bad = np.unique(np.broadcast_to(type_ids[..., None], missing.shape)[missing])
        raise LeakageError(f"no constant id given for type ids {bad.tolist()} (levels holding codes)")
    return np.where(replace, constant, tokens).astype(tokens.dtype, copy=False)


def shuffle_within_type(tokens, type_ids, mask, rng) -> np.ndarray:
    """Tokens whose objects' code groups [Q] are permuted at random among all objects of the same
    type in the sample: every event keeps its positions, multiplicities and type ids, while its codes
    now come from other events' objects of that type (the per-type multiset of code groups is kept).
    Special positions (type 0) and masked positions stay. `rng` a numpy Generator or a seed.
    """
    tokens = np.asarray(tokens)
    type_ids, mask = _check_sequences(type_ids, mask, tokens)
    rng = np.random.default_rng(rng)
    n, length, q = tokens.shape
    flat = tokens.reshape(n * length, q)
    positions = np.flatnonzero((mask & (type_ids > 0)).ravel())
    types = type_ids.ravel()[positions]
    source = positions[np.lexsort((rng.random(positions.size), types))]  # by type, random within type
    target = positions[np.argsort(types, kind="stable")]  # by type, in place order
    out = flat.copy()
    out[target] = flat[source]
    return out.reshape(tokens.shape)


# ---------------------------------------------------------------- the report


def _auc_of(summary) -> tuple[float, float]:
    if isinstance(summary, Mapping):
        auc = summary.get("auc", summary.get("auc_macro"))
        err = summary.get("auc_err", summary.get("auc_macro_err", float("nan")))
    else:
        auc, err = summary if np.ndim(summary) else (summary, float("nan"))
    if auc is None:
        raise LeakageError(f"a leakage result needs an 'auc' (or 'auc_macro'), got keys {list(summary)}")
    return float(auc), float(err)


def _extra(summary) -> dict:
    """Optional parts of a row's result: converged (bool) and the task's figure of merit (fom, fom_err)."""
    if not isinstance(summary, Mapping):
        return {"converged": None, "at_prior": False, "fom": None, "fom_err": None}
    converged = summary.get("converged")
    return {
        "converged": None if converged is None else bool(converged),
        "at_prior": bool(summary.get("at_prior")),
        "fom": summary.get("fom"),
        "fom_err": summary.get("fom_err"),
    }


def leakage_table(results: Mapping[str, Mapping | tuple | float]) -> list[dict]:
    """The six rows of the leakage report in `LEAKAGE_ROWS` order, missing results kept as empty rows.

    `results` {row key: summary dict with auc and auc_err (or auc_macro, auc_macro_err), optionally
    converged (did the row's model finish learning), at_prior (it finished at the class prior) and fom / fom_err
    (the task's figure of merit, e.g.
    light rejection), or an (auc, err) pair}; keys: multiplicity, structure, shuffled, fixed_slots, tokens, raw.
    Each row: row (1-6), key, name, auc, auc_err (None when missing), auc_text (`formatting.fmt`: "0.9120 ± 0.0040"
    or "—"), fraction_of_full ((auc - 0.5) / (auc_full - 0.5), None without both), converged, fom, fom_err.
    """
    known = dict(LEAKAGE_ROWS)
    unknown = sorted(set(results) - set(known))
    if unknown:
        raise LeakageError(f"unknown leakage rows {unknown}; expected some of {list(known)}")
    values = {k: _auc_of(v) for k, v in results.items() if v is not None}
    full = values.get("tokens", (None, None))[0]
    rows = []
    for i, (key, name) in enumerate(LEAKAGE_ROWS, start=1):
        auc, err = values.get(key, (None, None))
        text = fmt(auc, err)
        fraction = (auc - 0.5) / (full - 0.5) if auc is not None and full is not None and full != 0.5 else None
        extra = _extra(results.get(key) if key in results else None)
        rows.append(
            {
                "row": i,
                "key": key,
                "name": name,
                "auc": auc,
                "auc_err": err,
                "auc_text": text,
                "fraction_of_full": fraction,
                **extra,
            }
        )
    return rows


def _fmt(row: dict) -> str:
    return f"AUC {row['auc_text']}"


def _lower(name: str) -> str:
    """A row name inside a sentence: first letter lower-cased, acronyms (SEP) kept."""
    return name[:1].lower() + name[1:]


def shape_fraction(table: list[dict]) -> float:
    """(AUC_shape - 0.5) / (AUC_full - 0.5) with the best *converged* shape-only row (NaN without one)."""
    rows = {r["key"]: r for r in table if r.get("auc") is not None}
    full = rows.get("tokens")
    shapes = [rows[k] for k in SHAPE_ROWS if k in rows and rows[k].get("converged") is not False]
    if full is None or not shapes or full["auc"] <= 0.5:
        return float("nan")
    return (max(r["auc"] for r in shapes) - 0.5) / (full["auc"] - 0.5)


def leakage_verdict(table: list[dict], fom_name: str | None = None) -> str:
    """A few sentences on how much of the full-token separation the event shape alone explains.

    The shape fraction is f = (AUC_shape - 0.5) / (AUC_full - 0.5) with the best of rows 1-3
    (multiplicities, structure only, shuffled tokens) whose model finished learning; `VERDICT_WORDS`
    turns it into words (>= 0.9 nearly all, >= 0.6 most, >= 0.3 a substantial part, >= 0.1 a small part,
    else almost none). A row whose model did not converge bounds nothing and is named as such. Rows 4
    (fixed slots) and 6 (raw features) add a sentence each when present; with `fom_name` (e.g. "light-jet
    rejection at 77% b-efficiency") and rows carrying `fom`, what the tokens keep of the raw features is
    said in that figure of merit, not in AUC.
    """
    rows = {r["key"]: r for r in table if r.get("auc") is not None}
    full = rows.get("tokens")
    if full is None:
        return "No full-token result (row 5), so the share explained by event shape cannot be judged."
    text = []
    unconverged = [r for r in rows.values() if r.get("converged") is False]
    if unconverged:
        text.append(
            "Did not finish learning, so bounding nothing: "
            + ", ".join(f"{_lower(r['name'])} ({_fmt(r)})" for r in unconverged)
            + "."
        )
    if full.get("converged") is False:
        return " ".join(text + ["The full-token model itself did not finish learning: no leakage verdict."])
    shapes = [rows[k] for k in SHAPE_ROWS if k in rows and rows[k].get("converged") is not False]
    if not shapes:
        return " ".join(
            text + [f"Full tokens reach {_fmt(full)}; no usable event-shape result (rows 1-3) to compare with."]
        )
    best = max(shapes, key=lambda r: r["auc"])
    margin = full["auc"] - 0.5
    full_err = 0.0 if np.isnan(full["auc_err"]) else full["auc_err"]
    if margin <= max(0.01, 2.0 * full_err):
        text.append(
            f"Full tokens barely separate the classes ({_fmt(full)}), so the share explained by event "
            f"shape is not meaningful; the best shape-only input ({_lower(best['name'])}) reaches {_fmt(best)}."
        )
    else:
        f = (best["auc"] - 0.5) / margin
        words = next(w for threshold, w in VERDICT_WORDS if f >= threshold)
        text.append(
            f"Event shape alone ({_lower(best['name'])}, {_fmt(best)}) explains {words} of the full-token "
            f"separation ({_fmt(full)}): (AUC_shape - 0.5) / (AUC_full - 0.5) = {f:.2f}."
        )
        best_err = 0.0 if np.isnan(best["auc_err"]) else best["auc_err"]
        if f > 1.0 and best["auc"] - full["auc"] > 2.0 * float(np.hypot(best_err, full_err)):
            text.append(
                "The shape-only input even beats the full tokens: the token model misses information "
                "that the multiplicities carry."
            )
        elif f > 1.0:
            text.append(
                "The shape-only input matches the full tokens within their uncertainties: the tokens add nothing "
                "measurable to counting objects."
            )
        elif f >= 0.6:
            text.append(
                "The classifier can score this well by counting objects; credit the tokens only for the gain beyond it."
            )
        elif f >= 0.3:
            text.append("Event shape and token content both contribute; the tokens add the rest.")
        else:
            text.append("The separation comes mainly from the token content, not from the multiplicities.")
    below = [r for r in shapes if r["auc"] + 2.0 * (0.0 if np.isnan(r["auc_err"]) else r["auc_err"]) < 0.5]
    if below:
        text.append(
            "Below 0.5 by more than twice its uncertainty: "
            + ", ".join(f"{_lower(r['name'])} ({_fmt(r)})" for r in below)
            + (". These controls" if len(below) > 1 else ". That control")
            + " learned nothing usable and rank some class backwards (a rare class whose output merely follows the "
            "object count); they bound nothing, so the verdict rests on the other rows."
        )
    if "fixed_slots" in rows and rows["fixed_slots"].get("converged") is not False:
        fixed = rows["fixed_slots"]
        text.append(
            f"With fixed slots and no SEP / type ids the tokens reach {_fmt(fixed)} "
            f"({signed(fixed['auc'] - full['auc'])} against the full tokens)."
        )
    raw = rows.get("raw")
    if raw is not None and raw.get("converged") is not False and raw["auc"] != 0.5:
        if fom_name and full.get("fom") and raw.get("fom"):
            kept = full["fom"] / raw["fom"]
            text.append(
                f"Raw features reach {_fmt(raw)}; in {fom_name} the tokens keep {kept:.0%} of the raw "
                f"features' ({fmt(full['fom'], full.get('fom_err'))} against {fmt(raw['fom'], raw.get('fom_err'))})"
                + (
                    ": above 100%, tokens cannot hold more than the features they encode, so the raw-feature "
                    "model is undertrained or the difference is noise."
                    if kept > 1
                    else "."
                )
            )
        else:
            kept = (full["auc"] - 0.5) / (raw["auc"] - 0.5)
            text.append(
                f"Raw features reach {_fmt(raw)}; the tokens keep {kept:.0%} of their separation above 0.5"
                + (
                    " (above 100%: tokens cannot hold more than the features they encode, so the raw-feature "
                    "model is undertrained or the difference is noise)."
                    if kept > 1
                    else "."
                )
            )
    return " ".join(text)
