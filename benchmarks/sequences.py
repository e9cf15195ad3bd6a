"""Sequence assembly throughput: the vectorised `TokenizerSet.assemble` vs a per-event Python loop.

Same input for both (the events study's layout: event info, electrons, muons, taus, photons, jets,
tracks and MET with realistic multiplicities), for the grouped and the flat layout; the loop's output
is checked equal to the vectorised one before timing; each is timed warm, best of a few repeats.
Target: vectorised >= 50x the loop.

    python benchmarks/sequences.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

from treasure_lib.sequences import Group, Layout, TokenizerSet  # noqa: E402
from treasure_lib.vocabulary import CLS, EMPTY, PAD, SEP, Vocabulary  # noqa: E402

# (name, slots, levels, codebook size, mean multiplicity, scalar)
EVENTS = [
    ("event", 1, 4, 16, 1, True),
    ("electrons", 4, 3, 64, 0.5, False),
    ("muons", 4, 3, 64, 0.5, False),
    ("taus", 3, 3, 32, 0.1, False),
    ("photons", 3, 3, 64, 0.8, False),
    ("jets", 10, 3, 256, 3.9, False),
    ("tracks", 50, 3, 256, 46.0, False),
    ("met", 1, 3, 16, 1, True),
]


def build(layout: str) -> TokenizerSet:
    vocab, groups = Vocabulary(), []
    for type_id, (name, slots, levels, size, _, scalar) in enumerate(EVENTS, start=1):
        vocab.add(name, type_id, levels, size, "binned" if scalar else "vq")
        groups.append(Group(name, name, type_id, slots, levels, scalar))
    return TokenizerSet(vocab, groups, Layout(layout, "compact", True, True))


def local_indices(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, slots, levels, size, mean, scalar in EVENTS:
        count = np.ones(n, int) if scalar else np.minimum(rng.poisson(mean, n), slots)
        idx = rng.integers(0, size, (n, slots, levels)).astype(np.int32)  # what TokenizerSet.encode returns
        idx[np.arange(slots)[None, :] >= count[:, None]] = -1
        out[name] = idx
    return out


def loop_assemble(ts: TokenizerSet, local: dict[str, np.ndarray]):
    """The straightforward way: one Python loop per event (and per object)."""
    grouped = ts.layout.tokens == "grouped"
    n, L, Q = len(local["event"]), ts.length, ts.levels
    tokens = np.full((n, L, Q) if grouped else (n, L), PAD, np.int32)
    types = np.zeros((n, L), np.int32)
    mask = np.zeros((n, L), bool)
    offsets = {g.name: ts.vocabulary.offsets(g.card) for g in ts.groups}
    for r in range(n):
        row_tokens, row_types = [[CLS] + [EMPTY] * (Q - 1) if grouped else CLS], [0]
        for g in ts.groups:
            for obj in local[g.name][r]:
                if obj[0] < 0:
                    continue
                ids = [int(i) + int(o) for i, o in zip(obj, offsets[g.name])]
                if grouped:
                    row_tokens.append(ids + [EMPTY] * (Q - g.levels))
                    row_types.append(g.type_id)
                else:
                    row_tokens.extend(ids)
                    row_types.extend([g.type_id] * g.levels)
            if not g.scalar:
                row_tokens.append([SEP] + [EMPTY] * (Q - 1) if grouped else SEP)
                row_types.append(0)
        k = len(row_tokens)
        tokens[r, :k] = row_tokens
        types[r, :k] = row_types
        mask[r, :k] = True
    return tokens, types, mask


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    local = local_indices(args.events)
    results = {}
    for layout in ("grouped", "flat"):
        ts = build(layout)
        seq = ts.assemble(local)  # warm-up: first-touch page faults of the output arrays
        vec_s = min(_timed(ts.assemble, local) for _ in range(7))
        small = {k: v[:2000] for k, v in local.items()}  # the loop is timed on a slice and scaled
        tokens, types, mask = loop_assemble(ts, small)
        loop_s = min(_timed(loop_assemble, ts, small) for _ in range(3)) * args.events / 2000
        ref = ts.assemble(small)
        assert (
            np.array_equal(tokens, ref.tokens)
            and np.array_equal(types, ref.type_ids)
            and np.array_equal(mask, ref.mask)
        ), f"{layout}: the loop and the vectorised assembly disagree"
        results[layout] = {
            "events": args.events,
            "length": ts.length,
            "vectorised_events_per_s": args.events / vec_s,
            "loop_events_per_s": args.events / loop_s,
            "speedup": loop_s / vec_s,
            "valid_positions_per_event": float(seq.mask.sum(1).mean()),
        }
        r = results[layout]
        print(
            f"{layout:<8} L={ts.length:<4} vectorised {r['vectorised_events_per_s']:10.0f} events/s   "
            f"per-event loop {r['loop_events_per_s']:8.0f} events/s   speedup {r['speedup']:6.1f}x (target >= 50)"
        )
    out = write_json("sequences", {"runs": results})
    print(f"-> {out}")
    print(json.dumps({k: round(v["speedup"], 1) for k, v in results.items()}))


if __name__ == "__main__":
    main()
