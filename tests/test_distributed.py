"""DDP on CPU: batches dealt to ranks, and real two-process (gloo) training of a tokenizer and the backbone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from treasure_lib import config, distributed, metric_keys
from treasure_lib.tokenizers.training_data import CollectionSets

from .test_datamodules import token_files  # noqa: F401  (the module fixture)
from .test_sequences import _params as _event_params
from .test_sequences import _toy_files


def _parts(n_rows=50, objects_per_row=3, seed=0):
    g = np.random.default_rng(seed)
    for start in range(0, n_rows, 10):
        rows = np.arange(start, min(start + 10, n_rows))
        yield {
            "cont": g.normal(size=(len(rows), objects_per_row, 2)).astype(np.float32),
            "cat": np.zeros((len(rows), objects_per_row, 0), np.int64),
            "mask": np.ones((len(rows), objects_per_row), bool),
            "file": np.zeros(len(rows), np.int32),
            "event_number": rows,
        }


def _rows_of(batches):
    return [tuple(b["event_number"]) if "event_number" in b else tuple(b["cont"][:, 0, 0]) for b in batches]


def test_tokenizer_batches_are_dealt_to_ranks_disjoint_in_equal_numbers():
    sets = lambda rank, world: CollectionSets(None, "tracks", None, 12, shuffle=False, rank=rank, world_size=world)  # noqa: E731
    alone = [b["cont"] for b in sets(0, 1)._batches(_parts())]
    ranks = [[b["cont"] for b in sets(r, 3)._batches(_parts())] for r in range(3)]
    assert len(alone) == 13 and [len(r) for r in ranks] == [4, 4, 4], "an incomplete last round is dropped"
    for r, batches in enumerate(ranks):
        for k, b in enumerate(batches):
            assert np.array_equal(b, alone[3 * k + r]), "rank r takes batch r of every round: disjoint shares"
    capped = CollectionSets(None, "tracks", None, 12, shuffle=False, max_batches=2, rank=1, world_size=3)
    assert len(list(capped._batches(_parts()))) == 2, "limit_train_batches counts this rank's batches"


def test_tallies_of_every_rank_merge_into_one():
    a = {"correct": {"all": 3, "level_1": 1}, "total": {"all": 10, "level_1": 4}, "probs": [np.ones(2)], "n": [10]}
    b = {"correct": {"all": 5, "tracks": 2}, "total": {"all": 10, "tracks": 3}, "probs": [np.zeros(3)], "n": [10]}
    m = distributed.merge_tallies([a, b])
    assert m["correct"] == {"all": 8, "level_1": 1, "tracks": 2} and m["total"]["all"] == 20
    assert [len(p) for p in m["probs"]] == [2, 3] and m["n"] == [10, 10]
    assert distributed.gather(None, a) == [a], "one process: nothing to gather"


def test_device_counts_from_params():
    assert distributed.world_size({"devices": 2, "num_nodes": 3}) == 6
    assert distributed.device_count({"devices": [0, 3]}) == 2
    if not torch.cuda.is_available():
        assert distributed.device_count({"devices": "auto", "accelerator": "auto"}) == 1


def _torchrun(args, params, tmp_path, nproc=2):
    path = tmp_path / f"params-{args[0]}.yaml"
    config.dump(params, path)
    done = subprocess.run(distributed.torchrun_command(args, path, nproc), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _tokenizer_params(tmp_path):
    files = _toy_files(tmp_path / "data", n=600)
    return _event_params(
        tmp_path,
        files,
        "tokenizer.collections=[electrons, muons]",
        "tokenizer.codebook_size=16",
        "tokenizer.per_collection={}",
        "tokenizer.latent_dim=8",
        "tokenizer.width=32",
        "tokenizer.scaler_sample_objects=5000",
        "tokenizer.train.batch_objects=64",
        "tokenizer.train.max_epochs=2",
        "tokenizer.train.progress_bar=false",
        "tokenizer.train.accelerator=cpu",
        "tokenizer.train.cache_rows=0",
    )


@pytest.mark.slow
def test_tokenizers_train_on_two_cpu_processes_with_summed_codebook_statistics(tmp_path):
    base = _tokenizer_params(tmp_path)
    single = base.replace(tokenizer={"output_dir": str(tmp_path / "single")})
    _torchrun(["train-tokenizer"], single, tmp_path, nproc=1)
    ddp = base.replace(tokenizer={"output_dir": str(tmp_path / "ddp"), "train": {"devices": 2, "strategy": "ddp"}})
    done = _torchrun(["train-tokenizer"], ddp, tmp_path)  # a step whose statistics differ between ranks raises
    assert done.stdout.count("electrons ") == 1 and done.stdout.count("muons ") == 1, (
        "only the main process reports (and writes) the cards, one per collection"
    )
    for collection in ("electrons", "muons"):
        steps = {}
        for name in ("single", "ddp"):
            card = json.loads((tmp_path / name / collection / "card" / "card.json").read_text())
            assert np.isfinite(card["metrics"]["val/loss"])
            last = torch.load(tmp_path / name / collection / "checkpoints" / "last.ckpt", weights_only=True)
            steps[name] = last["global_step"]
        assert steps["ddp"] == steps["single"] // 2, f"{collection}: each rank takes half of the batches: {steps}"


@pytest.mark.slow
def test_unsynchronised_codebook_statistics_are_caught(tmp_path):
    """Without summing the EMA statistics over ranks each rank's codebook would learn from its own share only."""
    ddp = _tokenizer_params(tmp_path).replace(
        tokenizer={
            "output_dir": str(tmp_path / "ddp"),
            "collections": ["electrons"],
            "train": {"devices": 2, "strategy": "ddp"},
        }
    )
    path = tmp_path / "params.yaml"
    config.dump(ddp, path)
    wrapper = tmp_path / "no_sync.py"
    wrapper.write_text(
        "import sys\nfrom treasure_lib.tokenizers import codebooks\n"
        "codebooks.distribute = lambda quantizer, on: None\n"
        "from treasure_lib.cli import main\nsys.exit(main())\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node=2",
            str(wrapper),
            "train-tokenizer",
            "--params",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0 and "statistics differ between DDP ranks" in done.stdout + done.stderr


@pytest.mark.slow
def test_pretraining_and_a_classifier_on_two_cpu_processes(token_files, tmp_path):  # noqa: F811
    from .test_training import _params

    ddp = {"train": {"devices": 2, "strategy": "ddp", "accelerator": "cpu", "limit_train_batches": None}}
    p = _params(token_files, tmp_path).replace(pretrain=ddp, classify=ddp)
    config.dump(p, tmp_path / "params.yaml")
    distributed.run_distributed(["pretrain"], tmp_path / "params.yaml", 2, tmp_path / "pretrain.json")
    numbers = json.loads((tmp_path / "pretrain.json").read_text())
    metric_keys.check(numbers)
    assert 0 <= numbers["pretrain.masked_accuracy"] <= 1 and np.isfinite(numbers["pretrain.loss"])
    assert sorted(p.name for p in (tmp_path / "pretrain" / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    p = p.replace(classify={"mode": "finetune", "backbone": str(tmp_path / "pretrain" / "checkpoints" / "best.ckpt")})
    config.dump(p, tmp_path / "params.yaml")
    distributed.run_distributed(["classify"], tmp_path / "params.yaml", 2, tmp_path / "classify.json")
    tuned = json.loads((tmp_path / "classify.json").read_text())
    assert 0.0 <= tuned["classify.t.tokens_finetuned.auc"] <= 1.0
    assert len(list((tmp_path / "classify").rglob("predictions.npz"))) == 1
