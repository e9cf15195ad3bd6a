"""Next-token pretraining: causal attention, the sequence likelihood, learning, sampling, fine-tuning (CPU, seeded)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from treasure_lib import metric_keys
from treasure_lib.config import section_from
from treasure_lib.errors import ConfigError
from treasure_lib.models import (
    BackboneConfig,
    MaskedTokenModel,
    NextTokenModel,
    SequenceBackbone,
    SequenceClassifier,
    sequence_nll,
)
from treasure_lib.models.generation import sample, slots_of
from treasure_lib.sequences import Group, Layout, Sequences, TokenizerSet
from treasure_lib.training import classify, pretrain
from treasure_lib.vocabulary import CLS, EMPTY, PAD, SEP, Vocabulary

from .test_datamodules import token_files as exported  # noqa: F401  (the module fixture)
from .test_models import _loader, _trainer
from .test_training import _params

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# event: a binned scalar of 2 levels x 4 bins (type 1); tracks: 3 levels x 8 codes (type 2); type 3 has no tokens
VOCAB = Vocabulary()
VOCAB.add("event", 1, levels=2, size=4, kind="binned")
VOCAB.add("tracks", 2, levels=3, size=8)
TYPE_NAMES = {"0": "special", "1": "event", "2": "tracks"}
EV, TR = VOCAB.offsets("event"), VOCAB.offsets("tracks")


def _cfg(**kw) -> dict:
    base = dict(vocab_size=VOCAB.size, n_types=4, max_len=10, levels=3, d_model=32, n_layers=2, n_heads=4, d_ff=64)
    return {**base, "dropout": 0.0, **kw}


def _batch(n: int, seed: int, length: int = 10, copy: bool = False, gaps: bool = False) -> dict:
    """Grouped rows `[CLS] [event] tracks.. [SEP] PAD..`: 1-4 tracks (two with `copy`, the second repeating the first's
    codes); `gaps` leaves a padded position between the event and the tracks of odd rows (fixed slots)."""
    g = np.random.default_rng(seed)
    tokens = np.zeros((n, length, 3), np.int64)
    types = np.zeros((n, length), np.int64)
    for r in range(n):
        tokens[r, 0] = [CLS, EMPTY, EMPTY]
        tokens[r, 1] = [*(EV + g.integers(0, 4, 2)), EMPTY]
        types[r, 1] = 1
        k = 2 if copy else 1 + r % 4
        first = 3 if gaps and r % 2 else 2
        codes = TR + g.integers(0, 8, (k, 3))
        if copy:
            codes[1] = codes[0]
        tokens[r, first : first + k], types[r, first : first + k] = codes, 2
        tokens[r, first + k] = [SEP, EMPTY, EMPTY]
    return {
        "tokens": torch.from_numpy(tokens),
        "type_ids": torch.from_numpy(types),
        "mask": torch.from_numpy(tokens[..., 0] != PAD),
        "label": torch.from_numpy(g.integers(0, 2, n)),
        "weight": torch.ones(n),
    }


def _flat(batch: dict) -> dict:
    """The flat layout of a grouped batch: each real level one position, Q = 1."""
    rows = [
        [(t, ty) for pos, ty, ok in zip(tok, typ, m) if ok for t in pos if t != EMPTY]
        for tok, typ, m in zip(batch["tokens"].tolist(), batch["type_ids"].tolist(), batch["mask"].tolist())
    ]
    tokens = torch.zeros(len(rows), max(map(len, rows)), 1, dtype=torch.long)
    types = torch.zeros(tokens.shape[:2], dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r), 0], types[i, : len(r)] = torch.tensor([t for t, _ in r]), torch.tensor([y for _, y in r])
    return {**batch, "tokens": tokens, "type_ids": types, "mask": tokens[..., 0] != PAD}


def _model(seed: int = 0, spread: float = 0.0, **cfg) -> NextTokenModel:
    """A tiny next-token model; `spread` > 0 redraws every weight with that standard deviation, so its heads prefer
    some answers strongly (a freshly initialised model is almost uniform and hides mistakes in the bookkeeping)."""
    torch.manual_seed(seed)
    model = NextTokenModel(_cfg(**cfg), VOCAB.ranges, "vocab-a", TYPE_NAMES, warmup_steps=1)
    if spread:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, spread)
    return model.eval()


# ---------------------------------------------------------------------------------------------- causal attention


def test_causal_attention_hides_every_later_position():
    batch = _batch(6, seed=1)
    changed = {**batch, "tokens": batch["tokens"].clone()}
    changed["tokens"][:, 3, 0] = TR[0] + (batch["tokens"][:, 3, 0] - TR[0] + 1) % 8  # another code at position 3
    for causal in (True, False):
        torch.manual_seed(0)
        model = SequenceBackbone(BackboneConfig(**_cfg(causal=causal))).eval()
        before, after = model(batch), model(changed)
        earlier = (before[:, :3] - after[:, :3]).abs().amax()
        if causal:
            assert earlier == 0, "positions 0-2 never see position 3"
            assert (before[:, 3:] - after[:, 3:]).abs().amax() > 1e-3, "position 3 and later do"
        else:
            assert earlier > 1e-3, "a bidirectional backbone's earlier positions see the change"
        assert torch.isfinite(model({k: v[:, :2] for k, v in batch.items() if v.dim() > 1})).all()


# What the backbone computed before `causal` existed (commit f3d5fee), seed 0, on `_reference_batch`: a projection of
# each real position's hidden state. Attention without `causal` must stay this function.
REFERENCE = [
    5.03302, 0.68266, -0.51302, 1.84742, 5.13876, -1.21481, -2.31352, 5.0833, 0.81699, 3.74914, 2.16966, 4.54253,
    -0.05479, -1.00835, 1.55243, 3.98784, -0.18202, -1.89969, 0.13664, -4.52463, -1.73162, 1.18985, 4.53295,
    -0.96411, 0.16204, 0.83348, 4.63998, -1.58495, 4.66384, 4.24261, 0.17435,
]  # fmt: skip


def _reference_batch() -> dict:
    g = np.random.default_rng(0)
    n, length = 6, 8
    tokens = np.zeros((n, length, 3), np.int64)
    types = np.zeros((n, length), np.int64)
    for r in range(n):
        k = 1 + r % 4
        tokens[r, 0] = [CLS, EMPTY, EMPTY]
        tokens[r, 1], types[r, 1] = [*(EV + g.integers(0, 4, 2)), EMPTY], 1
        tokens[r, 2 : 2 + k], types[r, 2 : 2 + k] = TR + g.integers(0, 8, (k, 3)), 2
        tokens[r, 2 + k] = [SEP, EMPTY, EMPTY]
    tokens = torch.from_numpy(tokens)
    return {"tokens": tokens, "type_ids": torch.from_numpy(types), "mask": tokens[..., 0] != PAD}


def test_a_bidirectional_backbone_computes_what_it_did_before_causal_existed():
    batch = _reference_batch()
    torch.manual_seed(0)
    cfg = BackboneConfig(
        vocab_size=VOCAB.size, n_types=3, max_len=8, levels=3, d_model=16, n_layers=2, n_heads=2, d_ff=32
    )
    assert cfg.causal is False
    with torch.no_grad():
        hidden = SequenceBackbone(cfg).eval()(batch)[batch["mask"]]
    projection = (hidden * torch.linspace(-1, 1, 16)).sum(-1)
    np.testing.assert_allclose(projection.numpy(), REFERENCE, atol=2e-5)


# ---------------------------------------------------------------------------------------------- likelihood


@torch.no_grad()
def _loop_nll(model: NextTokenModel, batch: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-row likelihood position by position, level by level, from the model's own heads (float64)."""
    hidden = model.backbone(batch).double()
    table = model.backbone.embed.table.weight.double()
    type_table = model.backbone.type_embed.weight.double()
    tokens, types, mask = batch["tokens"], batch["type_ids"], batch["mask"]
    head = lambda layer, x: F.linear(x, layer.weight.double(), layer.bias.double())  # noqa: E731
    total, codes_only, terms = [], [], []
    for b in range(len(mask)):
        real = [i for i in range(mask.shape[1]) if mask[b, i]]
        nll = code_nll = 0.0
        count = 0
        for i, j in zip(real, real[1:] + [None]):
            target = model.end if j is None else int(types[b, j])
            nll -= float(torch.log_softmax(head(model.type_head, hidden[b, i]), -1)[target])
            count += 1
            if j is None:
                continue
            context = hidden[b, i] + type_table[types[b, j]]
            for q in range(tokens.shape[2]):
                token = int(tokens[b, j, q])
                if token >= 5:
                    (r,) = [r for r in VOCAB.ranges if r["start"] <= token < r["start"] + r["size"]]
                    norm, linear, _ = model.level_mlps[q]
                    z = F.layer_norm(context, context.shape, norm.weight.double(), norm.bias.double(), norm.eps)
                    logits = head(model.code_heads[q], F.gelu(head(linear, z)))[r["start"] : r["start"] + r["size"]]
                    term = -float(torch.log_softmax(logits, -1)[token - r["start"]])
                    nll, code_nll, count = nll + term, code_nll + term, count + 1
                if token not in (PAD, EMPTY):
                    context = context + table[token]
        total.append(nll), codes_only.append(code_nll), terms.append(count)
    return np.array(total), np.array(codes_only), np.array(terms)


@pytest.mark.parametrize("layout", ["grouped", "fixed_slots", "flat"])
def test_sequence_nll_is_the_sum_over_positions_and_levels_of_the_heads_log_probabilities(layout):
    batch = _batch(7, seed=3, gaps=layout == "fixed_slots")
    if layout == "flat":
        batch = _flat(batch)
    cfg = {"levels": 1, "max_len": batch["tokens"].shape[1]} if layout == "flat" else {}
    model = _model(spread=0.3, **cfg)
    got = sequence_nll(model, batch)
    nll, code_nll, terms = _loop_nll(model, batch)
    np.testing.assert_allclose(got["nll"], nll, rtol=1e-5)
    np.testing.assert_allclose(got["code_nll"], code_nll, rtol=1e-5)
    np.testing.assert_array_equal(got["n_terms"], terms)
    assert got["nll"].dtype == np.float64 and (got["code_nll"] < got["nll"]).all()
    objects = (batch["tokens"][..., 0] >= 5).sum(1).numpy()
    np.testing.assert_array_equal(got["n_objects"], objects)
    assert got["nll"].std() > 1.0, "the redrawn heads are far from uniform: the check has teeth"


def test_a_rows_likelihood_does_not_depend_on_the_other_rows_or_on_padding():
    model = _model(spread=0.3, max_len=14)
    batch = _batch(8, seed=4)
    together = sequence_nll(model, batch)["nll"]
    alone = np.concatenate([sequence_nll(model, {k: v[i : i + 1] for k, v in batch.items()})["nll"] for i in range(8)])
    np.testing.assert_allclose(together, alone, rtol=1e-6)
    padded = {
        **batch,
        "tokens": F.pad(batch["tokens"], (0, 0, 0, 4), value=PAD),
        "type_ids": F.pad(batch["type_ids"], (0, 4)),
        "mask": F.pad(batch["mask"], (0, 4)),
    }
    np.testing.assert_allclose(sequence_nll(model, padded)["nll"], together, rtol=1e-6)


def test_loss_falls_to_the_entropy_of_a_sequence_whose_second_object_copies_the_first():
    """Rows `[CLS] [event: 2 random bins] [track: 3 random codes] [the same track] [SEP]`: every type is certain and
    the copy is predictable, so the best NLL per row is the entropy of the random codes, 2 ln 4 + 3 ln 8 = 9.01 nats,
    against 2 ln 4 + 6 ln 8 + 5 ln 5 = 23.3 for a model that learned nothing."""
    model = _model(seed=0).train()
    batches = [_batch(64, seed=s, copy=True) for s in range(8)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(300):
        loss = model._step(batches[step % len(batches)])[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    held_out = _batch(256, seed=99, copy=True)
    terms = 5 + 2 + 6  # types (END included), event levels, track levels
    uniform = (5 * math.log(5) + 2 * math.log(4) + 6 * math.log(8)) / terms
    assert float(model.eval()._step(held_out)[0]) < 0.6 * uniform
    entropy = 2 * math.log(4) + 3 * math.log(8)
    nll = sequence_nll(model, held_out)["nll"].mean()
    assert entropy - 0.3 < nll < entropy + 0.5, (nll, entropy)


# ---------------------------------------------------------------------------------------------- sampling


def _drawn(model, n=400, seed=0, slots=None, **kw):
    return sample(model, n, generator=torch.Generator().manual_seed(seed), slots=slots, **kw)


def test_samples_keep_each_types_vocabulary_ranges_slots_and_the_exported_layout():
    model = _model(spread=0.5)
    slots = {0: 1, 1: 1, 2: 3}
    out = _drawn(model, slots=slots)
    tokens, types, mask = out["tokens"], out["type_ids"], out["mask"]
    assert tokens.dtype == torch.long and types.dtype == torch.long and mask.dtype == torch.bool
    assert tokens.shape == (400, 10, 3)
    length = mask.sum(1)
    assert torch.equal(mask, torch.arange(10) < length[:, None]), "real positions first, then padding"
    assert (length >= 2).all(), "never END right after CLS"
    assert (length < 10).any() and (length > 3).any(), "rows end at END, at different lengths"
    assert (tokens[~mask] == PAD).all() and (types[~mask] == 0).all(), "after END: PAD, type 0, mask False"
    assert (tokens[:, 0] == torch.tensor([CLS, EMPTY, EMPTY])).all()
    real = mask.clone()
    real[:, 0] = False
    assert set(types[real].tolist()) <= {0, 1, 2}, "type 3 has no vocabulary range: never drawn"
    assert (tokens[real & (types == 0)] == torch.tensor([SEP, EMPTY, EMPTY])).all(), "a type-0 step is a [SEP]"
    for t, (collection, levels) in {1: ("event", 2), 2: ("tracks", 3)}.items():
        at = tokens[real & (types == t)]
        assert len(at) > 0
        for q in range(3):
            if q < levels:
                r = next(r for r in VOCAB.ranges if r["collection"] == collection and r["level"] == q)
                assert ((at[:, q] >= r["start"]) & (at[:, q] < r["start"] + r["size"])).all(), (collection, q)
                assert len(torch.unique(at[:, q])) > 1
            else:
                assert (at[:, q] == EMPTY).all(), "levels above the collection's are EMPTY"
    for t, k in slots.items():
        assert ((real & (types == t)).sum(1) <= k).all(), f"type {t} fills at most {k} positions"
    assert ((real & (types == 2)).sum(1) == 3).any(), "the slot limit binds"


def test_sampling_is_deterministic_given_the_generator_and_refuses_a_flat_layout_model():
    model = _model(spread=0.5)
    a, b, c = _drawn(model, 50, seed=1), _drawn(model, 50, seed=1), _drawn(model, 50, seed=2)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["tokens"], c["tokens"])
    assert _drawn(model, 5, max_len=4)["mask"].shape == (5, 4)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        _drawn(model, 5, temperature=0.0)
    with pytest.raises(ConfigError, match="pretrained on the flat layout"):
        _drawn(_model(levels=1), 5)


def test_sampled_rows_decode_to_physical_features_through_the_tokenizer_set():
    from treasure_lib.io.toy import make_batch

    from .test_sequences import EVENTS, STUDY, _binning_card, _kmeans_card

    data = make_batch({k: EVENTS[k] for k in STUDY}, 300, seed=0)
    cards = {"event": _binning_card(EVENTS["event"], data), "electrons": _kmeans_card(EVENTS["electrons"], data)}
    cards["muons"], cards["met"] = _kmeans_card(EVENTS["muons"], data, seed=1), _binning_card(EVENTS["met"], data)
    order = ["event", "electrons", "muons", "met"]
    vocab = Vocabulary()
    for name in order:
        kind = "binned" if name in ("event", "met") else "kmeans"
        vocab.add(name, EVENTS[name].type_id, cards[name].num_quantizers, cards[name].codebook_size, kind)
    groups = [
        Group(c, c, EVENTS[c].type_id, EVENTS[c].max_objects, cards[c].num_quantizers, EVENTS[c].is_scalar)
        for c in order
    ]
    token_set = TokenizerSet(vocab, groups, Layout(), cards)
    names = {str(v): k for k, v in vocab.type_ids.items()}
    backbone = dict(vocab_size=vocab.size, n_types=max(vocab.type_ids.values()) + 1, max_len=token_set.length)
    backbone.update(levels=token_set.levels, d_model=16, n_layers=1, n_heads=2, d_ff=32)
    torch.manual_seed(0)
    model = NextTokenModel(backbone, vocab.ranges, "v", names)
    slots = slots_of(token_set)
    assert slots == {8: 1, 1: 4, 2: 4, 7: 1, 0: 2}, "collections' max_objects, and one [SEP] per object collection"
    out = _drawn(model, 60, slots=slots)
    rows = Sequences(*(out[k].numpy() for k in ("tokens", "type_ids", "mask")))
    decoded = token_set.decode(rows)
    assert set(decoded) == set(order)
    for name in order:
        features, valid = decoded[name]
        drawn = ((out["type_ids"] == EVENTS[name].type_id) & out["mask"]).sum(1).numpy()
        np.testing.assert_array_equal(valid.sum(1), drawn, err_msg=f"every drawn {name} decodes")
        assert np.isfinite(features[valid]).all()
    electrons, valid = decoded["electrons"]
    assert valid.any() and (electrons[valid][:, 0] > 0).all(), "electron pt decodes to positive MeV"


# ---------------------------------------------------------------------------------------------- checkpoints, tuning


@pytest.fixture(scope="module")
def next_token_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = NextTokenModel(_cfg(dropout=0.1, causal=False), VOCAB.ranges, "vocab-a", TYPE_NAMES, warmup_steps=1)
    trainer = _trainer(epochs=1)
    trainer.fit(
        model, _loader([_batch(32, seed=s) for s in range(3)]), _loader([_batch(32, seed=50 + s) for s in range(2)])
    )
    path = tmp_path_factory.mktemp("next_token") / "pre.ckpt"
    trainer.save_checkpoint(path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return path, metrics, {k: v.clone() for k, v in model.backbone.state_dict().items()}


def test_validation_logs_next_token_accuracies_and_the_checkpoint_says_next_token(next_token_checkpoint):
    path, m, _ = next_token_checkpoint
    expected = {"val/loss", "val/next_accuracy", "val/type_accuracy", "val/probe_auc"}
    expected |= {f"val/next_accuracy/{k}" for k in ("level_1", "level_2", "level_3", "event", "tracks")}
    assert expected <= set(m), sorted(m)
    assert all(0 <= m[k] <= 1 for k in expected - {"val/loss", "val/probe_auc"}) and m["val/loss"] > 0
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    h = ckpt["hyper_parameters"]
    assert h["objective"] == "next_token" and h["backbone"]["causal"] is True, "causal is forced and recorded"
    assert h["ranges"] == VOCAB.ranges and h["vocabulary_hash"] == "vocab-a" and h["type_names"] == TYPE_NAMES
    assert any(k.startswith("backbone.") for k in ckpt["state_dict"])
    assert NextTokenModel.load_from_checkpoint(path, weights_only=True).backbone.cfg.causal
    assert MaskedTokenModel(_cfg(), VOCAB.ranges, "h", TYPE_NAMES).hparams.objective == "masked"
    with pytest.raises(ValueError, match="objective is 'masked'"):
        MaskedTokenModel(_cfg(), VOCAB.ranges, "h", TYPE_NAMES, objective="next_token")


def test_fine_tuning_a_next_token_backbone_keeps_it_causal_and_trains(next_token_checkpoint, tmp_path):
    path, _, weights = next_token_checkpoint
    clf = SequenceClassifier(_cfg(), 2, ["b", "s"], "vocab-a", mode="finetune", pooling="mean")
    assert not clf.backbone.cfg.causal
    clf.load_backbone(path)
    assert clf.backbone.cfg.causal and clf.hparams.backbone["causal"], "causal comes from the checkpoint"
    batch = _batch(4, seed=7)
    changed = {**batch, "tokens": batch["tokens"].clone()}
    changed["tokens"][:, 2, 0] = TR[0] + (batch["tokens"][:, 2, 0] - TR[0] + 1) % 8
    clf.eval()
    torch.testing.assert_close(clf.backbone(changed)[:, :2], clf.backbone(batch)[:, :2], rtol=0, atol=0)
    clf.train()
    trainer = _trainer(epochs=1, limit_train_batches=1)
    trainer.fit(clf, _loader([_batch(32, seed=s) for s in range(2)]))
    assert any(not torch.equal(v, weights[k]) for k, v in clf.backbone.state_dict().items()), "one step trained it"
    trainer.save_checkpoint(tmp_path / "clf.ckpt")
    assert SequenceClassifier.load_from_checkpoint(tmp_path / "clf.ckpt", weights_only=True).backbone.cfg.causal
    with pytest.raises(ConfigError, match="CLS pooling would read a constant; use model.pooling=mean"):
        SequenceClassifier(_cfg(), 2, ["b", "s"], "vocab-a", mode="frozen", pooling="cls").load_backbone(path)
    with pytest.raises(ConfigError, match=r"another architecture \(n_heads 4 != 2"):
        SequenceClassifier(_cfg(n_heads=2), 2, ["b", "s"], "vocab-a", mode="slow", pooling="mean").load_backbone(path)


# ---------------------------------------------------------------------------------------------- params, the run


def test_the_objective_is_masked_or_next_token():
    assert section_from("pretrain", {}).objective == "masked" and section_from("pretrain", {}).seed is None
    with pytest.raises(ConfigError, match="key 'pretrain.objective' must be one of masked, next_token; got 'gpt'"):
        section_from("pretrain", {"objective": "gpt"})


def test_each_objective_learns_at_its_own_rate():
    """The next-token loss reads every position (the masked one 15%): `next_token_lr` is its rate, the masked
    objective keeps `train.lr`, and without it both use `train.lr`."""
    from treasure_lib.training import learning_rate

    both = {"train": {"lr": 1e-3}, "next_token_lr": 3e-3}
    assert learning_rate(section_from("pretrain", {**both, "objective": "next_token"})) == 3e-3
    assert learning_rate(section_from("pretrain", {**both, "objective": "masked"})) == 1e-3
    assert learning_rate(section_from("pretrain", {"train": {"lr": 1e-3}, "objective": "next_token"})) == 1e-3


def test_next_token_pretraining_reports_documented_metrics_and_its_backbone_fine_tunes(exported, tmp_path):  # noqa: F811
    p = _params(exported, tmp_path)
    p = p.replace(pretrain={"objective": "next_token", "seed": 7, "next_token_lr": 2.5e-3}, model={"pooling": "mean"})
    tokens = Path(p.export.output_dir)
    numbers = pretrain(study=p.study, model=p.model, pretrain=p.pretrain, classify=p.classify, tokens=tokens)
    metric_keys.check(numbers)
    assert all(math.isfinite(numbers[k]) for k in ("pretrain.loss", "pretrain.next_accuracy", "pretrain.type_accuracy"))
    assert 0 <= numbers["pretrain.next_accuracy"] <= 1 and "pretrain.probe_auc" in numbers
    assert {"pretrain.next_accuracy.level_1", "pretrain.converged", "pretrain.epochs_run"} <= set(numbers)
    assert not any("masked" in k for k in numbers)
    best = tmp_path / "pretrain" / "checkpoints" / "best.ckpt"
    saved = torch.load(best, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert saved["objective"] == "next_token" and saved["backbone"]["causal"] and saved["seed"] == 7
    assert saved["lr"] == 2.5e-3, "the next-token objective trains at its own rate"
    tuned = classify(
        study=p.study,
        model=p.model,
        classify=p.classify.replace(mode="finetune", backbone=str(best)),
        tokens=tokens,
    )
    assert "classify.t.tokens_finetuned.auc" in tuned
