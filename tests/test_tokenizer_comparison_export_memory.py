"""The transformer tokenizer's export forward runs in chunks of rows, so its transient memory is bounded by the
chunk, not by the export batch (benchmarks/export.py: peak RSS of a 10x file within 10% of a 1x file)."""

from __future__ import annotations

import torch

from treasure_lib.tokenizers import vqvae
from treasure_lib.tokenizers.vqvae import ObjectVQVAE, VQVAEConfig

TRANSFORMER = {"kind": "transformer", "width": 32, "depth": 1, "heads": 2}


def _model_and_inputs(rows=40, width=12):
    torch.manual_seed(0)
    model = ObjectVQVAE(
        VQVAEConfig(
            n_continuous=4,
            n_categories=(2,),
            encoder=TRANSFORMER,
            decoder=TRANSFORMER,
            latent_dim=8,
            codebook_size=32,
            num_quantizers=3,
        )
    ).eval()
    g = torch.Generator().manual_seed(1)
    cont = torch.randn(rows, width, 4, generator=g)
    cat = torch.randint(0, 2, (rows, width, 1), generator=g)
    mask = torch.rand(rows, width, generator=g) < 0.7
    mask[3] = False  # a row without objects
    return model, cont, cat, mask


def test_row_chunks_hold_whole_sets_up_to_the_object_budget(monkeypatch):
    monkeypatch.setitem(vqvae.INFERENCE_OBJECTS, "cpu", 100)
    chunks = vqvae.row_chunks(torch.ones(25, 40, dtype=torch.bool))
    assert [(c.start, c.stop) for c in chunks] == [
        (0, 2),
        (2, 4),
        (4, 6),
        (6, 8),
        (8, 10),
        (10, 12),
        (12, 14),
        (14, 16),
        (16, 18),
        (18, 20),
        (20, 22),
        (22, 24),
        (24, 26),
    ]
    monkeypatch.setitem(vqvae.INFERENCE_OBJECTS, "cpu", 10)
    assert len(vqvae.row_chunks(torch.ones(3, 40, dtype=torch.bool))) == 3, "a set wider than the budget goes alone"


def test_chunked_transformer_export_forward_gives_the_same_tokens_and_never_sees_a_whole_batch(monkeypatch):
    model, cont, cat, mask = _model_and_inputs()
    whole_indices = model.encode_indices(cont, cat, mask)
    whole_decoded = model.decode_indices(whole_indices, mask)
    seen = []
    model.encoder.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0] * args[0].shape[1]))
    model.decoder.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0] * args[0].shape[1]))
    monkeypatch.setitem(vqvae.INFERENCE_OBJECTS, "cpu", 60)  # 5 rows of 12 objects per forward
    indices = model.encode_indices(cont, cat, mask)
    decoded = model.decode_indices(indices, mask)
    assert max(seen) <= 60 and len(seen) == 2 * 8, f"encoder and decoder in 8 chunks each, {seen}"
    assert torch.equal(indices, whole_indices)
    assert (indices[~mask] == -1).all()
    torch.testing.assert_close(decoded[0][mask], whole_decoded[0][mask], rtol=1e-5, atol=1e-5)
    assert torch.equal(decoded[1][mask], whole_decoded[1][mask])
