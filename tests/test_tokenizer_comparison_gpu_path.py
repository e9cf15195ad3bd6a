"""benchmarks/gpu_path.py runs on a CPU with tiny sizes, so that the GPU measurement is a rerun of tested code:
the export path (bf16 only where its indices agree with fp32, reader workers, the npz written), pretraining of two
backbones and tokenizer training, with the numbers in its JSON."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from .conftest import ROOT


@pytest.fixture()
def gpu_path(monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_path as module

    yield module
    sys.modules.pop("gpu_path", None)


def test_gpu_path_script_runs_on_a_cpu_and_writes_every_number(gpu_path, tmp_path):
    result = gpu_path.main(["--tiny", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "gpu_path.json").read_text())
    assert saved["export"]["jets"] == 96 and saved["device"] == "cpu" and saved["tiny"] is True
    e = result["export"]
    assert e["end_to_end"]["jets"] == 96, "every jet of every file went through the reader, the forward and the npz"
    assert e["end_to_end"]["workers"] == 1 and e["end_to_end"]["pinned_memory"] is False
    assert 0.0 <= e["bf16_track_agreement"] <= 1.0
    assert e["precision"] == ("bf16" if e["bf16_track_agreement"] >= gpu_path.AGREEMENT else "fp32")
    for value in (
        e["end_to_end"]["jets_per_s"],
        e["bare_forward_jets_per_s"]["fp32"],
        e["bare_forward_jets_per_s"]["bf16"],
        e["peer_residualvq_forward_jets_per_s"],
    ):
        assert np.isfinite(value) and value > 0
    p = result["pretraining"]
    assert p["large"]["parameters"] > p["default"]["parameters"] and p["default"]["d_model"] == 32
    assert all(v["tokens_per_s"] > 0 and v["peak_memory_mb"] > 0 for v in p.values())
    assert result["tokenizer_training"]["steps_per_s"] > 0
    assert result["tokenizer_training"]["objects_per_step"] == 240, "256 tracks per step rounded to whole jets of 40"


def test_bf16_index_forward_keeps_padding_and_mostly_the_fp32_codes(gpu_path):
    """The bf16 path changes only the encoder's precision (the search stays fp32): padded tracks stay -1 and most
    tracks keep their fp32 codes; the script's agreement check decides whether the rest is tolerable."""
    from treasure_lib.tokenizers.vqvae import ObjectVQVAE, VQVAEConfig

    torch.manual_seed(0)
    net = {"kind": "transformer", "width": 16, "depth": 1, "heads": 2}
    model = ObjectVQVAE(
        VQVAEConfig(n_continuous=3, encoder=net, decoder=net, latent_dim=4, codebook_size=16, num_quantizers=2)
    ).eval()
    cont, mask = torch.randn(20, 6, 3), torch.rand(20, 6) < 0.8
    cat = torch.zeros(20, 6, 0, dtype=torch.long)
    fp32 = gpu_path.index_forward(model, cont, cat, mask, bf16=False)
    bf16 = gpu_path.index_forward(model, cont, cat, mask, bf16=True)
    assert (fp32[~mask] == -1).all() and (bf16[~mask] == -1).all()
    assert (fp32[mask] == bf16[mask]).all(-1).float().mean() > 0.8
