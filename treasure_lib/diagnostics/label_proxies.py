"""Label proxies: no model input may stand in for the label (chapter 04's data checks, beside the leakage table).

A column that names the sample a row came from (its file, process, cross section, event-number range) lets a
classifier separate processes without any physics. Two checks guard the inputs: `check_no_label_proxy` refuses
bookkeeping columns by name (`LABEL_PROXIES`, truth columns), and `proxy_scores` measures how much of which sample
a row came from each input explains beyond its label; an input at `PROXY_THRESHOLD` or above acts as a proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..errors import LeakageError

LABEL_PROXIES = {
    "source_file": "the input file names the sample",
    "process": "sample metadata names the process",
    "dsid": "sample metadata names the process",
    "event_index": "the row position in a file orders samples",
    "event_number": "event numbers are per-sample ranges",
    "eventNumber": "event numbers are per-sample ranges",
    "label": "it is the target",
    "weight": "MC weights differ per sample",
    "split": "the split assignment is bookkeeping, not physics",
    "sum_of_weights": "sample normalisation names the sample",
    "n_events_generated": "sample normalisation names the sample",
    "cross_section_pb": "sample metadata names the process",
    "filter_efficiency": "sample metadata names the process",
    "k_factor": "sample metadata names the process",
}


def check_no_label_proxy(input_columns: Iterable[str], truth_columns: Iterable[str] = ()) -> list[str]:
    """Raise LeakageError if a model input column can stand in for the label: the sample bookkeeping
    of `LABEL_PROXIES` (source_file, process, dsid, event_index, event_number, label, weight, ...),
    any column whose name contains "truth" (case-insensitive, e.g. HadronConeExclTruthLabelID), or a
    name in `truth_columns`. Returns the checked column names."""
    columns = [str(c) for c in input_columns]
    truth = set(truth_columns)
    bad = []
    for c in columns:
        if c in LABEL_PROXIES:
            bad.append(f"'{c}' ({LABEL_PROXIES[c]})")
        elif "truth" in c.lower() or c in truth:
            bad.append(f"'{c}' (a truth column)")
    if bad:
        raise LeakageError(f"model inputs include label proxies: {', '.join(bad)}; remove them from the input columns")
    return columns


PROXY_THRESHOLD = 0.9  # an input that explains this much of which sample a row came from, beyond its label, is a proxy
_PROXY_BINS = 20


def _discrete(values: np.ndarray, bins: int = _PROXY_BINS) -> np.ndarray:
    """Integer cells of one input: its categories when it has few distinct values, else quantile bins."""
    v = np.asarray(values)
    uniq, inverse = np.unique(v, return_inverse=True)
    if uniq.size <= 4 * bins or v.dtype.kind in "iubUSO":
        return inverse.reshape(-1)
    edges = np.unique(np.quantile(v.astype(np.float64), np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, v.astype(np.float64), side="right")


def _heldout_entropy(cells: np.ndarray, target: np.ndarray, train: np.ndarray, n_target: int) -> float:
    """Cross entropy [nats] on the held-out rows of p(target | cell) estimated on the training rows (add-one
    smoothing), so a fine-grained input cannot look predictive by memorising a few rows per cell."""
    n_cells = int(cells.max(initial=0)) + 1
    counts = np.bincount(cells[train] * n_target + target[train], minlength=n_cells * n_target).reshape(
        n_cells, n_target
    )
    probs = (counts + 1.0) / (counts.sum(1, keepdims=True) + n_target)
    test = ~train
    return float(-np.mean(np.log(probs[cells[test], target[test]]))) if test.any() else float("nan")


def proxy_scores(inputs: Mapping[str, np.ndarray], sample, label, seed: int = 0) -> dict[str, float]:
    """How much of which sample a row came from each model input explains *beyond its label*, in [0, 1].

    score = 1 - H(sample | input, label) / H(sample | label), both measured on held-out halves of the rows
    (a plug-in estimate on the same rows would reward inputs with many distinct values). A physics variable
    that differs between processes scores well below 1 (its distributions overlap); a bookkeeping column
    that names the sample (a file id, a cross section, an event-number range) scores close to 1.
    `inputs` {name: [n] values}; `sample` and `label` [n]. Inputs are binned (`_PROXY_BINS` quantiles) unless
    they are categories."""
    sample_codes = np.unique(np.asarray(sample).astype(str), return_inverse=True)[1].reshape(-1)
    label_codes = np.unique(np.asarray(label), return_inverse=True)[1].reshape(-1)
    n_s = int(sample_codes.max(initial=0)) + 1
    if n_s < 2:
        return {name: 0.0 for name in inputs}
    train = np.random.default_rng(seed).random(sample_codes.size) < 0.5
    base = _heldout_entropy(label_codes, sample_codes, train, n_s)
    out = {}
    for name, values in inputs.items():
        values = np.asarray(values)
        if values.shape != sample_codes.shape:
            raise LeakageError(f"input {name!r}: {values.shape} values for {sample_codes.size} rows")
        cells = _discrete(values) * (int(label_codes.max(initial=0)) + 1) + label_codes
        cond = _heldout_entropy(np.unique(cells, return_inverse=True)[1].reshape(-1), sample_codes, train, n_s)
        out[name] = float(np.clip(1.0 - cond / base, 0.0, 1.0)) if base > 0 else 0.0
    return out
