"""The masked pseudo-likelihood anomaly score on a tiny random MaskedTokenModel: the vectorised computation equals an
explicit loop over (row, object) scored by the training loss itself, and a row's score does not depend on its
neighbours in a chunk."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from treasure_lib.anomaly import masked_pseudo_nll
from treasure_lib.errors import InputFileError
from treasure_lib.models import BackboneConfig, MaskedTokenModel
from treasure_lib.models.masking import IGNORE
from treasure_lib.vocabulary import CLS, EMPTY, MASK, N_SPECIAL, PAD, SEP, Vocabulary

Q, SLOTS, K, BINS = 3, 6, 16, 8  # track levels, track slots, codes per track level, codes per event bin
WIDTH = 4  # grouped width: the event object has 4 binned levels, tracks 3 (+ EMPTY)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _vocab():
    v = Vocabulary()
    v.add("event", 1, levels=WIDTH, size=BINS, kind="binned")
    v.add("tracks", 2, levels=Q, size=K)
    return v


VOCAB = _vocab()


def _rows(n=7, seed=0):
    """[CLS] [event] tracks [SEP] PAD...: a different number of tracks per row, so rows pad differently."""
    g = np.random.default_rng(seed)
    length = SLOTS + 3
    tokens = np.full((n, length, WIDTH), PAD, np.int64)
    types = np.zeros((n, length), np.int64)
    mask = np.zeros((n, length), bool)
    ev, tr = VOCAB.offsets("event"), VOCAB.offsets("tracks")
    for r in range(n):
        k = int(g.integers(1, SLOTS + 1))
        tokens[r, 0] = [CLS] + [EMPTY] * (WIDTH - 1)
        tokens[r, 1] = ev + g.integers(0, BINS, WIDTH)
        tokens[r, 2 : 2 + k, :Q] = tr + g.integers(0, K, (k, Q))
        tokens[r, 2 : 2 + k, Q:] = EMPTY
        tokens[r, 2 + k] = [SEP] + [EMPTY] * (WIDTH - 1)
        types[r, 1], types[r, 2 : 2 + k] = 1, 2
        mask[r, : 3 + k] = True
    return {"tokens": tokens, "type_ids": types, "mask": mask}


def _model(levels=WIDTH, max_len=SLOTS + 3, seed=0):
    torch.manual_seed(seed)
    cfg = BackboneConfig(
        vocab_size=VOCAB.size, n_types=3, max_len=max_len, levels=levels, d_model=16, n_layers=1, n_heads=2, d_ff=32
    )
    model = MaskedTokenModel(cfg.to_dict(), VOCAB.ranges, "h", {"1": "event", "2": "tracks"})
    with torch.no_grad():  # a random model far from uniform, so every term of the score matters
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _loop_nll(model, rows):
    """The reference: one row and one object at a time, masked whole, scored by the training loss
    (`_range_logits` returns the mean over the object's real levels: times their number is the sum)."""
    out = np.zeros(len(rows["mask"]))
    with torch.no_grad():
        for r in range(len(out)):
            tokens = torch.as_tensor(rows["tokens"][r : r + 1])
            batch = {k: torch.as_tensor(rows[k][r : r + 1]) for k in ("type_ids", "mask")}
            for p in range(tokens.shape[1]):
                if not (batch["mask"][0, p] and batch["type_ids"][0, p] > 0 and tokens[0, p, 0] >= N_SPECIAL):
                    continue
                masked = tokens.clone()
                real = tokens[0, p] >= N_SPECIAL
                masked[0, p, real] = MASK
                hidden = model.backbone({**batch, "tokens": masked})[0, p]
                targets = torch.where(real, tokens[0, p], torch.full_like(tokens[0, p], IGNORE))
                loss, _, picked = model._range_logits(hidden[None], targets[None])
                out[r] += float(loss) * int(picked.sum())
    return out


def test_vectorised_pseudo_likelihood_equals_the_training_loss_object_by_object():
    model, rows = _model(), _rows()
    got = masked_pseudo_nll(model, rows, batch_size=4)
    np.testing.assert_allclose(got["nll"], _loop_nll(model, rows), rtol=1e-5, atol=1e-5)
    tracks = (rows["type_ids"] == 2).sum(1)
    np.testing.assert_array_equal(got["objects"], tracks + 1)  # the event object and every track
    np.testing.assert_allclose(got["nll_per_object"], got["nll"] / got["objects"])
    assert got["nll"].dtype == np.float64


def test_a_uniform_model_scores_log_k_per_real_level():
    """Heads that give every id the same logit: each level costs ln(size of its range), EMPTY levels nothing."""
    model, rows = _model(), _rows()
    with torch.no_grad():
        for head in model.heads:
            head.weight.zero_()
            head.bias.zero_()
    tracks = (rows["type_ids"] == 2).sum(1)
    expected = WIDTH * math.log(BINS) + tracks * Q * math.log(K)
    np.testing.assert_allclose(masked_pseudo_nll(model, rows)["nll"], expected, rtol=1e-6)


def test_a_rows_score_does_not_depend_on_its_chunk_or_batch_size():
    model, rows = _model(), _rows(n=9, seed=1)
    alone = np.array([masked_pseudo_nll(model, {k: v[r : r + 1] for k, v in rows.items()})["nll"][0] for r in range(9)])
    for batch_size, max_copies in ((1, 1024), (2, 3), (5, 1), (64, 7), (64, 1024)):
        got = masked_pseudo_nll(model, rows, batch_size=batch_size, max_copies=max_copies)["nll"]
        np.testing.assert_allclose(got, alone, atol=1e-5)
    order = np.random.default_rng(3).permutation(9)
    shuffled = masked_pseudo_nll(model, {k: v[order] for k, v in rows.items()}, batch_size=4)["nll"]
    np.testing.assert_allclose(shuffled, alone[order], atol=1e-5)


def test_scoring_is_deterministic_and_leaves_the_models_mode_alone():
    model, rows = _model(), _rows()
    model.train()  # dropout on: the score must still switch it off
    first = masked_pseudo_nll(model, rows)["nll"]
    assert model.training
    np.testing.assert_array_equal(masked_pseudo_nll(model, rows)["nll"], first)


def test_flat_layout_masks_each_code_position_in_turn():
    """Flat rows (Q = 1): every code is an object position, masked alone as BERT masking does."""
    grouped = _rows(n=4, seed=2)
    flat_rows = []
    for tok, typ, m in zip(grouped["tokens"], grouped["type_ids"], grouped["mask"]):
        flat_rows.append([(t, ty) for pos, ty, valid in zip(tok, typ, m) if valid for t in pos if t != EMPTY])
    length = max(len(r) for r in flat_rows)
    model = _model(levels=1, max_len=length)
    tokens = np.zeros((4, length, 1), np.int64)
    types = np.zeros((4, length), np.int64)
    for i, r in enumerate(flat_rows):
        tokens[i, : len(r), 0] = [t for t, _ in r]
        types[i, : len(r)] = [ty for _, ty in r]
    rows = {"tokens": tokens, "type_ids": types, "mask": tokens[..., 0] != PAD}
    got = masked_pseudo_nll(model, rows, batch_size=3)
    np.testing.assert_allclose(got["nll"], _loop_nll(model, rows), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got["objects"], (tokens[..., 0] >= N_SPECIAL).sum(1))


def test_rows_of_another_layout_or_vocabulary_are_refused():
    model, rows = _model(), _rows()
    with pytest.raises(InputFileError, match=r"expected \[rows, positions, 4\]"):
        masked_pseudo_nll(model, {**rows, "tokens": rows["tokens"][..., :3]})
    with pytest.raises(InputFileError, match="outside the model's vocabulary"):
        masked_pseudo_nll(model, {**rows, "tokens": rows["tokens"] + VOCAB.size})
