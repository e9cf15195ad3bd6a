"""Chapter 03, codebook health: are the codes used, how evenly, and do tokens survive decode -> encode.

`report(run)` encodes held-out (test) objects with every codebook card, logs the codebook numbers
(`diagnostics.codebook_health`, `reencode_agreement`) to the run's metrics.json and returns a
`ChapterReport`: the per-level table, the arrays of the usage, spectrum and dead-code figures, and
paragraphs worded by the small pure functions below (tested on synthetic numbers).

A codebook's use is judged against what an even use would show with as many objects: N objects spread
evenly over K codes leave K (1 - 1/K)^N codes unused, so rare collections with few held-out objects are
not called unhealthy for the codes their sample cannot reach; only unused codes well beyond that
expectation are blamed on the codebook. A codebook with fewer than `THIN_OBJECTS_PER_CODE` held-out objects per
code is not judged at all: its used fraction, perplexity and dead codes say more about the sample than the codebook.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import diagnostics
from ..diagnostics import reconstruction as reco
from ..formatting import fmt
from ..io.reader import read_split_rows
from . import stages
from .history import read_history
from .report import ChapterReport
from .tokenization import HELD_OUT_ROWS, tokenizer_key

CHANCE_P = 0.00135  # unused codes an even use leaves less often than this (one-sided 3 sigma) are not chance
IDENTITY = 0.99  # decode -> encode returning 99% of the tokens is called the identity
REPLACED_COLUMN = "train/replaced_level_{q}"  # the tokenizer's logged share of a codebook re-drawn per step
HISTORY_IN_SENTENCE = 6  # codebooks named in the dead-code sentence
THIN_OBJECTS_PER_CODE = 20  # held-out objects per code below which a codebook's use is not judged


# ------------------------------------------------------------------------ metric keys (metric_keys.py documents them)


def codebook_key(card: str, quantity: str, level: str | None = None) -> str:
    """`codebook.<card>[.<level>].<quantity>`, level as `level_<q>`."""
    return f"codebook.{card}.{level + '.' if level else ''}{quantity}"


def codebook_metrics(card: str, health: Mapping, reencode: float, bits: float) -> dict[str, float]:
    """The documented codebook numbers of one card."""
    return diagnostics.scalar_summary(health, codebook_key(card, "")) | {
        codebook_key(card, "reencode_fraction"): reencode,
        tokenizer_key(card, "bits_per_object"): bits,
    }


# ---------------------------------------------------------------------------- pure functions of numbers


def uniform_utilization(n_objects: int, codebook_size: int) -> float:
    """Fraction of K codes an even use reaches with N objects: 1 - (1 - 1/K)^N (the expected share of codes hit)."""
    if codebook_size < 1:
        return float("nan")
    return float(1.0 - (1.0 - 1.0 / codebook_size) ** max(int(n_objects), 0))


def expected_unused(n_objects: int, codebook_size: int) -> float:
    """Codes an even use leaves unused with N objects: K (1 - 1/K)^N."""
    return codebook_size * (1.0 - uniform_utilization(n_objects, codebook_size))


def unused_by_chance(unused: int, n_objects: int, codebook_size: int, p_min: float = CHANCE_P) -> bool:
    """Whether an even use leaves at least this many codes unused with probability >= `p_min` (the count of unused
    codes taken as Poisson with the even-use expectation: one dead code among 8 used by 825 objects is not chance)."""
    from scipy.stats import poisson

    if unused <= 0:
        return True
    return float(poisson.sf(unused - 1, expected_unused(n_objects, codebook_size))) >= p_min


def level_rows(card: str, health: Mapping[str, Mapping], level_fraction: Sequence[float] = ()) -> list[dict]:
    """Machine rows, one per level: collection, level (1 = first), objects, K, used codes, utilization, the even-use
    utilization, dead codes, perplexity, normalised entropy and the share of codes unchanged by decode -> encode."""
    rows = []
    for j, (level, h) in enumerate(health.items()):
        rows.append(
            {
                "collection": card,
                "level": int(level.split("_")[-1]),
                "objects": h["n_objects"],
                "codebook_size": h["codebook_size"],
                "used_codes": h["used_codes"],
                "utilization": h["utilization"],
                "uniform_utilization": uniform_utilization(h["n_objects"], h["codebook_size"]),
                "dead_codes": h["dead_codes"],
                "perplexity": h["perplexity"],
                "normalized_entropy": h["normalized_entropy"],
                "reencode": float(level_fraction[j]) if j < len(level_fraction) else float("nan"),
            }
        )
    return rows


def too_thin(row: Mapping, per_code: float = THIN_OBJECTS_PER_CODE) -> bool:
    """Whether a level has too few held-out objects per code to judge how its codebook is used."""
    return row["objects"] < per_code * row["codebook_size"]


def thin_sentence(rows: Sequence[Mapping], per_code: float = THIN_OBJECTS_PER_CODE) -> str:
    """The collections too thin to judge (first level's numbers), and what it would take to judge them."""
    thin = {}
    for r in rows:
        if too_thin(r, per_code) and r["collection"] not in thin:
            thin[r["collection"]] = r
    if not thin:
        return ""
    parts = [
        f"{c} ({r['objects']} held-out objects for {r['codebook_size']} codes, "
        f"{fmt(r['objects'] / r['codebook_size'])} per code)"
        for c, r in thin.items()
    ]
    return (
        f"Too thin to judge: {', '.join(parts)}. With fewer than {per_code:g} held-out objects per code the "
        "used fraction, perplexity and dead codes of these codebooks measure the sample more than the codebook; "
        "they are left out of the verdict above (more events, or a smaller codebook, would make them judgeable)."
    )


def table(rows: Sequence[Mapping]) -> list[dict]:
    """Display rows of the codebook table."""
    return [
        {
            "Collection": r["collection"],
            "Level": r["level"],
            "Held-out objects": r["objects"],
            "Codes K": r["codebook_size"],
            "Objects per code": r["objects"] / max(r["codebook_size"], 1),
            "Used codes": r["used_codes"],
            "Used fraction": r["utilization"],
            "Even use would reach": r["uniform_utilization"],
            "Dead codes": r["dead_codes"],
            "Perplexity [codes]": r["perplexity"],
            "Normalised entropy": r["normalized_entropy"],
            "Same code after decode → encode": r["reencode"],
        }
        for r in rows
    ]


def least_used_codebook(rows: Sequence[Mapping]) -> Mapping | None:
    """The level with the smallest used fraction (ties: the least even use, by normalised entropy); None for no rows."""
    if not rows:
        return None
    return min(rows, key=lambda r: (r["utilization"], np.nan_to_num(r["normalized_entropy"], nan=2.0)))


def _percent(fraction: float) -> str:
    return f"{fmt(100 * fraction)}%"


def least_used_sentence(row: Mapping | None) -> str:
    """How the least used codebook uses its codes, against an even use with as many held-out objects."""
    if row is None:
        return "No card has a codebook to judge (binned quantities only)."
    where = f"{row['collection']} level {row['level']}"
    spread = (
        f"perplexity {fmt(row['perplexity'])} of {row['codebook_size']} codes, normalised entropy "
        f"{fmt(row['normalized_entropy'])}"
    )
    if row["utilization"] >= 1:
        return f"Every code of every codebook appears on held-out objects; the least even use is {where} ({spread})."
    text = (
        f"The least used codebook is {where}: {_percent(row['utilization'])} of its {row['codebook_size']} codes "
        f"appear on {row['objects']} held-out objects, where an even use would reach "
        f"{_percent(row['uniform_utilization'])} ({spread})"
    )
    unused = row["codebook_size"] - row["used_codes"]
    if not unused_by_chance(unused, row["objects"], row["codebook_size"]):
        expected = expected_unused(row["objects"], row["codebook_size"])
        counted = f"{unused} code is" if unused == 1 else f"{unused} codes are"
        return text + (
            f": {counted} unused where an even use would leave {fmt(expected)}, so the codebook has more "
            "codes than these objects need, or codes that collapsed onto others."
        )
    if row["objects"] < row["codebook_size"]:
        return (
            text + ": fewer held-out objects than codes, so the unused codes say more about the sample than "
            "the codebook."
        )
    return text + ": the unused codes are about what an even use leaves with this many objects."


def reencode_sentence(fractions: Mapping[str, float], identity: float = IDENTITY) -> str:
    """Decode -> encode agreement per card (share of objects whose every level comes back)."""
    if not fractions:
        return ""
    shares = ", ".join(f"{_percent(f)} of {c}" for c, f in fractions.items())
    text = f"Decode → encode returns the same tokens (every level) for {shares} objects"
    if all(f >= identity for f in fractions.values() if np.isfinite(f)):
        return text + ": decoding then encoding is the identity on held-out objects."
    return text + (
        ": for the others the decoded features land on a neighbouring code when encoded again, so decoding "
        "is not the exact inverse of encoding."
    )


def replacement_history(histories: Mapping[str, Mapping[str, tuple]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'<card> level <q>': (epochs, share of the codebook re-drawn per step)} from `read_history` per card."""
    out = {}
    for card, history in histories.items():
        q = 1
        while REPLACED_COLUMN.format(q=q) in history:
            out[f"{card} level {q}"] = history[REPLACED_COLUMN.format(q=q)]
            q += 1
    return out


def dead_code_sentence(history: Mapping[str, tuple], dead_code_fraction: float) -> str:
    """How much of each codebook the dead-code replacement re-drew per step, first vs last epoch of training."""
    if not history:
        return ""
    first = max(float(v[1][0]) for v in history.values() if len(v[1]))
    last = {k: float(v[1][-1]) for k, v in history.items() if len(v[1])}
    text = (
        "A code is re-drawn from the batch's objects when its running count falls below "
        f"{100 * dead_code_fraction:g}% of a uniform share (`tokenizer.dead_code_fraction`), "
        "so rare collections are not churned. "
    )
    if max(last.values()) == 0 and first == 0:
        return text + "No code was replaced in the first or the last epoch: every code kept its share throughout."
    if max(last.values()) == 0:
        return text + (
            f"No code was replaced in the last epoch (the first replaced up to {_percent(first)} of a "
            "codebook per step): every code kept its share by the end of training."
        )
    named = list(last.items())[:HISTORY_IN_SENTENCE]
    return text + (
        f"In the last epoch up to {_percent(max(last.values()))} of a codebook was still replaced per step "
        f"(first epoch: {_percent(first)}): codes were still being re-drawn when training stopped. Last "
        "epoch: " + ", ".join(f"{k} {_percent(v)}" for k, v in named) + "."
    )


# ---------------------------------------------------------------------------- the chapter's report


def report(run) -> ChapterReport:
    """Everything chapter 03 shows, with the codebook metrics logged to the run."""
    from ..sequences import TokenizerSet

    params = stages.run_params(run)
    cards = stages.tokenizers(run)
    tokens = TokenizerSet.from_params(params.study, params.data, params.tokenizer, params.export, params.sequence)
    held = read_split_rows(params.data, "test", max_rows=HELD_OUT_ROWS)
    rep = ChapterReport()
    health, reencode, rows = {}, {}, []
    for card, tok in tokens.tokenizers.items():
        bits = reco.bits_per_object(tok)
        if tok.kind == "binning":  # no codebook to judge, but its tokens carry bits too
            rep.metrics[tokenizer_key(card, "bits_per_object")] = bits
            continue
        feats, mask = tokens.card_inputs(held, card)
        if not mask.any():
            continue
        indices = tok.encode(feats, mask)
        health[card] = diagnostics.codebook_health(indices, tok.codebook_size)
        agreement = diagnostics.reencode_agreement(tok.encode, tok.decode, indices)
        reencode[card] = agreement["fraction"]
        rep.metrics.update(codebook_metrics(card, health[card], reencode[card], bits))
        rows += level_rows(card, health[card], agreement["level_fraction"])
    rep.tables["codebooks"] = table(rows)
    rep.captions["codebooks"] = (
        "Per collection and quantizer level, on held-out objects: the codes used, against the "
        "share an even use would reach with as many objects (below "
        f"{THIN_OBJECTS_PER_CODE} held-out objects per code a codebook is not judged); perplexity = exp(entropy), the "
        "number of equally used codes with the same entropy; the share of objects whose "
        "level code comes back after decode → encode."
    )
    judged = [r for r in rows if not too_thin(r)]
    rep.text["usage"] = " ".join(
        t
        for t in (
            least_used_sentence(least_used_codebook(judged))
            if judged or not rows
            else "No codebook has enough held-out objects per code to judge its use.",
            thin_sentence(rows),
            reencode_sentence(reencode),
        )
        if t
    )
    if health:
        rep.figures["usage"] = {"usage": health, "name": "codebook_usage"}
        rep.figures["frequency"] = {"freq": health, "name": "token_frequency"}
    history = replacement_history({card: read_history(cards / card) for card in health})
    if history:
        rep.figures["dead_codes"] = {
            "history": history,
            "ylabel": "Codes replaced per step (fraction of K)",
            "logy": False,
            "name": "dead_code_replacement",
        }
        rep.text["dead_codes"] = dead_code_sentence(history, params["tokenizer"]["dead_code_fraction"])
    run.log_metrics(rep.metrics)
    return rep
