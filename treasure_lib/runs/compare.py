"""Two runs' metrics, key by key: what a change that must not move a result (a refactor, a new library release, a
faster data path) is checked with.

    python -m treasure_lib.runs.compare runs/jets/default/metrics.json /elsewhere/runs/jets/default/metrics.json

Exit status 0 when every number is identical (timings aside: how fast is not what), 1 otherwise, with one line per
key that differs, is missing or is new.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from pathlib import Path

#: Keys that measure how fast, never what: wall and training seconds, throughput.
TIMING = re.compile(r"(^|\.)(seconds|train_seconds|rows_per_s)$")


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def differences(before: Mapping, after: Mapping, ignore: re.Pattern = TIMING) -> list[str]:
    """One line per key whose value differs (bit for bit: 0.1 and 0.1000000001 differ), is only in `before` or
    only in `after`; keys matching `ignore` are skipped."""
    out = []
    for key in sorted(set(before) | set(after)):
        if ignore.search(key):
            continue
        if key not in after:
            out.append(f"{key}: only before ({before[key]!r})")
        elif key not in before:
            out.append(f"{key}: only after ({after[key]!r})")
        elif not _same(before[key], after[key]):
            out.append(f"{key}: {before[key]!r} -> {after[key]!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m treasure_lib.runs.compare BEFORE/metrics.json AFTER/metrics.json", file=sys.stderr)
        return 2
    before, after = (json.loads(Path(a).read_text()) for a in args)
    found = differences(before, after)
    compared = len([k for k in set(before) | set(after) if not TIMING.search(k)])
    for line in found:
        print(line)
    print(f"{compared} keys compared (timings aside): {len(found)} differ")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
