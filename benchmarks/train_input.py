"""Training input throughput: classifier steps/s fed by the streaming token dataset vs the same batches in memory.

The streaming path reads token Parquet blocks interleaved across files, mixes them in the
shuffle buffer, selects the split and builds labels and weights while the model trains; the
reference replays exactly the batches it produced, already in memory. Target: ratio >= 0.9.
Uses the token files of a run (default: the jets study's, `make book` or `treasure run` first).

    python benchmarks/train_input.py [--tokens runs/jets/default/artifacts/tokens] [--steps 150]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json  # noqa: E402

from treasure_lib import config  # noqa: E402
from treasure_lib.datamodules import TokenFiles, TokenStream  # noqa: E402
from treasure_lib.datamodules.tasks import Task  # noqa: E402
from treasure_lib.models import SequenceClassifier  # noqa: E402
from treasure_lib.training import backbone_config  # noqa: E402


def steps(model, batches, opt) -> float:
    model.train()
    t0 = time.perf_counter()
    n = 0
    for batch in batches:
        loss, _ = model._loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params/default.yaml")
    ap.add_argument("--tokens", default="runs/jets/default/artifacts/tokens")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    params = config.load([args.params])
    files = TokenFiles(sorted(Path(args.tokens).glob("*.tokens.parquet")))
    task = Task.from_params(params.classify)
    cfg = backbone_config(params.model, files)
    t = params["classify"]["train"]
    stream = TokenStream(
        files,
        task,
        "train",
        t["batch_size"],
        shuffle=True,
        seed=1,
        buffer_rows=t["buffer_rows"],
        block_rows=t["block_rows"],
        max_batches=args.steps,
    )
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=0)
    torch.manual_seed(0)
    results = []
    for _ in range(args.repeats):  # alternate, so machine noise hits both alike
        model = SequenceClassifier(cfg.to_dict(), task.n_classes, list(task.class_names), files.vocabulary_hash)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        recorded = []

        def streaming(recorded=recorded):
            for batch in loader:
                recorded.append(batch)
                yield batch

        stream_rate = steps(model, streaming(), opt)
        model = SequenceClassifier(cfg.to_dict(), task.n_classes, list(task.class_names), files.vocabulary_hash)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        memory_rate = steps(model, recorded, opt)
        results.append(
            {
                "streaming_steps_per_s": stream_rate,
                "in_memory_steps_per_s": memory_rate,
                "ratio": stream_rate / memory_rate,
                "batches": len(recorded),
            }
        )
        print(
            f"streaming {stream_rate:6.2f} steps/s   in memory {memory_rate:6.2f} steps/s   "
            f"ratio {stream_rate / memory_rate:.3f} (target >= 0.9)   batch {t['batch_size']}, {len(recorded)} steps"
        )
    best = max(results, key=lambda r: r["ratio"])
    out = write_json(
        "train_input",
        {
            "runs": results,
            "median_ratio": sorted(r["ratio"] for r in results)[len(results) // 2],
            "model": cfg.to_dict(),
            "best": best,
        },
    )
    print(f"-> {out}")
    print(json.dumps({"median_ratio": round(sorted(r["ratio"] for r in results)[len(results) // 2], 3)}))


if __name__ == "__main__":
    main()
