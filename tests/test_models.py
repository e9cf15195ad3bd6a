"""The sequence backbone, masked-token pretraining and classifiers on synthetic token batches (CPU, seeded)."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from treasure_lib.errors import ConfigError, InputFileError
from treasure_lib.models import (
    BackboneConfig,
    MaskedTokenModel,
    SequenceBackbone,
    SequenceClassifier,
    count_parameters,
    mask_flat,
    mask_objects,
    pool,
    range_lookup,
    raw_config_matching,
)
from treasure_lib.models.classifier import catch_up
from treasure_lib.models.masking import IGNORE
from treasure_lib.models.pretrain import probe_auc
from treasure_lib.vocabulary import CLS, EMPTY, MASK, PAD, SEP, Vocabulary

Q, SLOTS, K, WIDTH = 3, 12, 16, 4  # track levels, track slots, codes per level, grouped width (event has 4 bins)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _vocab():
    v = Vocabulary()
    v.add("event", 1, levels=WIDTH, size=8, kind="binned")
    v.add("tracks", 2, levels=Q, size=K)
    return v


VOCAB = _vocab()
LOOKUP = range_lookup(VOCAB.ranges, VOCAB.size)
TYPE_NAMES = {"1": "event", "2": "tracks"}


def _batch(n=64, seed=0, signal=None):
    """Grouped layout: [CLS] [event: 4 bins] tracks (3 levels + EMPTY) [SEP] PAD...;
    signal rows have level-0 track codes < 4."""
    g = np.random.default_rng(seed)
    L_ = 1 + 1 + SLOTS + 1
    tokens = np.zeros((n, L_, WIDTH), np.int64)  # PAD everywhere to start
    types = np.zeros((n, L_), np.int64)
    mask = np.zeros((n, L_), bool)
    label = g.integers(0, 2, n) if signal is None else np.full(n, signal)
    ev, tr = VOCAB.offsets("event"), VOCAB.offsets("tracks")
    for r in range(n):
        tokens[r, 0] = [CLS] + [EMPTY] * (WIDTH - 1)
        tokens[r, 1] = ev + g.integers(0, 8, WIDTH)
        types[r, 1] = 1
        k = g.integers(3, SLOTS + 1)
        low = np.where(label[r] == 1, g.integers(0, 4, k), g.integers(4, K, k))
        tokens[r, 2 : 2 + k, :Q] = np.stack([low, g.integers(0, K, k), g.integers(0, K, k)], -1) + tr
        tokens[r, 2 : 2 + k, Q:] = EMPTY
        types[r, 2 : 2 + k] = 2
        tokens[r, 2 + k] = [SEP] + [EMPTY] * (WIDTH - 1)
        mask[r, : 3 + k] = True
    return {
        "tokens": torch.from_numpy(tokens),
        "type_ids": torch.from_numpy(types),
        "mask": torch.from_numpy(mask),
        "label": torch.from_numpy(label),
        "weight": torch.ones(n),
    }


def _flatten(batch):
    """The flat layout of a grouped batch: each object's real codes as consecutive positions, Q = 1."""
    rows = []
    for tok, typ, m in zip(batch["tokens"].tolist(), batch["type_ids"].tolist(), batch["mask"].tolist()):
        rows.append([(t, ty) for pos, ty, valid in zip(tok, typ, m) if valid for t in pos if t != EMPTY])
    length = max(len(r) for r in rows)
    tokens = torch.zeros(len(rows), length, 1, dtype=torch.long)
    types = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        tokens[i, : len(r), 0] = torch.tensor([t for t, _ in r])
        types[i, : len(r)] = torch.tensor([ty for _, ty in r])
    return {**batch, "tokens": tokens, "type_ids": types, "mask": tokens[..., 0] != PAD}


def _cfg(**kw):
    base = {
        "vocab_size": VOCAB.size,
        "n_types": 3,
        "max_len": SLOTS + 3,
        "levels": WIDTH,
        "d_model": 32,
        "n_layers": 2,
        "n_heads": 4,
        "d_ff": 64,
        "dropout": 0.1,
    }
    return BackboneConfig(**{**base, **kw})


def _pad(batch, extra):
    """The same rows with `extra` more padded positions at the end."""
    n = len(batch["label"])
    return {
        **batch,
        "tokens": torch.cat([batch["tokens"], torch.full((n, extra, batch["tokens"].shape[2]), PAD)], 1),
        "type_ids": torch.cat([batch["type_ids"], torch.zeros(n, extra, dtype=torch.long)], 1),
        "mask": torch.cat([batch["mask"], torch.zeros(n, extra, dtype=torch.bool)], 1),
    }


def _trainer(epochs=1, **kw):
    return L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        enable_progress_bar=False,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **kw,
    )


def _loader(batches):
    return torch.utils.data.DataLoader(batches, batch_size=None)


def _sigma(p, n):
    return np.sqrt(p * (1 - p) / n)


# ---------------------------------------------------------------------------------------------- masking


@pytest.mark.parametrize("rate,p_mask,p_random", [(0.15, 0.8, 0.1), (0.3, 0.5, 0.3)])
def test_bert_masking_statistics_match_the_configured_rates(rate, p_mask, p_random):
    tokens = _flatten(_batch(n=1500, seed=1))["tokens"]
    inputs, targets = mask_flat(tokens, LOOKUP, torch.Generator().manual_seed(0), rate, p_mask, p_random)
    codes = tokens >= 5
    selected = targets != IGNORE
    assert not (selected & ~codes).any(), "PAD, CLS, SEP (and MASK, EMPTY) are never selected"
    assert torch.equal(inputs[~selected], tokens[~selected]) and torch.equal(targets[selected], tokens[selected])
    n_codes, n = float(codes.sum()), float(selected.sum())
    assert abs(n / n_codes - rate) < 4 * _sigma(rate, n_codes)
    orig, new = tokens[selected], inputs[selected]
    start, size, _ = LOOKUP
    replaced = (new != MASK) & (new != orig)
    assert (
        (new[replaced] >= start[orig[replaced]]) & (new[replaced] < start[orig[replaced]] + size[orig[replaced]])
    ).all(), "a random replacement stays in the original id's range (same collection and level)"
    p_stay = 1 - p_mask - p_random + p_random / size[orig].float().mean()  # a random draw may hit the original id
    for observed, expected in (
        ((new == MASK).float().mean(), p_mask),
        ((new == orig).float().mean(), p_stay),
        (replaced.float().mean(), 1 - p_mask - float(p_stay)),
    ):
        assert abs(float(observed) - float(expected)) < 4 * _sigma(float(expected), n)


def test_whole_object_masking_corrupts_whole_objects_and_never_empty_levels():
    batch = _batch(n=3000, seed=2)
    tokens = batch["tokens"]
    inputs, targets = mask_objects(tokens, batch["mask"], LOOKUP, torch.Generator().manual_seed(0))
    picked = (targets != IGNORE).any(-1)
    objects = batch["type_ids"] > 0
    assert not (picked & ~objects).any(), "CLS, SEP and padding are never picked"
    n_obj, n = float(objects.sum()), float(picked.sum())
    assert abs(n / n_obj - 0.15) < 4 * _sigma(0.15, n_obj)
    assert torch.equal(targets != IGNORE, picked[..., None] & (tokens >= 5)), (
        "all real levels of a picked object, EMPTY never"
    )
    assert (inputs[tokens == EMPTY] == EMPTY).all() and torch.equal(inputs[~picked], tokens[~picked])
    real = tokens >= 5
    all_masked = ((inputs == MASK) | ~real).all(-1) & picked
    some_masked = ((inputs == MASK) & real).any(-1) & picked
    assert torch.equal(all_masked, some_masked), "one 80/10/10 choice per object: MASK on all its levels or none"
    assert abs(float(all_masked.sum()) / n - 0.8) < 4 * _sigma(0.8, n)
    start, size, _ = LOOKUP
    swapped = picked[..., None] & real & (inputs != MASK)
    assert (
        (inputs[swapped] >= start[tokens[swapped]]) & (inputs[swapped] < start[tokens[swapped]] + size[tokens[swapped]])
    ).all()


def test_masking_is_a_pure_function_of_the_generator_and_rejects_bad_rates():
    batch = _batch(n=32)
    a = mask_objects(batch["tokens"], batch["mask"], LOOKUP, torch.Generator().manual_seed(5))
    b = mask_objects(batch["tokens"], batch["mask"], LOOKUP, torch.Generator().manual_seed(5))
    c = mask_objects(batch["tokens"], batch["mask"], LOOKUP, torch.Generator().manual_seed(6))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    with pytest.raises(ValueError, match="p_mask \\+ p_random <= 1"):
        mask_flat(batch["tokens"], LOOKUP, torch.Generator(), p_mask=0.8, p_random=0.3)


# ---------------------------------------------------------------------------------------------- backbone


@pytest.mark.parametrize("group_attention", [False, True])
def test_padding_never_changes_the_outputs_of_real_positions(group_attention):
    torch.manual_seed(0)
    model = SequenceBackbone(_cfg(max_len=40, group_attention=group_attention)).eval()
    batch = _batch(n=8)
    a, b = model(batch), model(_pad(batch, 10))
    torch.testing.assert_close(a[batch["mask"]], b[:, : a.shape[1]][batch["mask"]])
    assert torch.isfinite(b).all(), "padded queries attend to the real keys of their row: no NaN"
    empty = {k: v[:1] for k, v in _pad(batch, 0).items()}
    empty["mask"] = torch.zeros_like(empty["mask"])
    assert torch.isfinite(model(empty)).all(), "even a row with no real position stays finite"


def test_pad_and_empty_embed_to_exactly_zero():
    model = SequenceBackbone(_cfg())
    emb = model.embed(torch.tensor([[[PAD, EMPTY, EMPTY, PAD], [CLS, EMPTY, EMPTY, EMPTY]]]))
    assert torch.equal(emb[0, 0], torch.zeros(32)), "a padded position embeds to zero"
    assert torch.equal(emb[0, 1], model.embed.table.weight[CLS]), "EMPTY levels add nothing to CLS"


def test_cls_pooling_sees_the_whole_sequence_and_mean_pooling_ignores_padding():
    torch.manual_seed(0)
    model = SequenceBackbone(_cfg(max_len=30)).eval()
    batch = _batch(n=4)
    changed = {**batch, "tokens": batch["tokens"].clone()}
    first = int(VOCAB.offsets("tracks")[0])
    changed["tokens"][:, 3, 0] = first + (batch["tokens"][:, 3, 0] - first + 1) % K  # another code for the 2nd track
    cls, cls_changed = pool(model(batch), batch["mask"], "cls"), pool(model(changed), batch["mask"], "cls")
    assert (cls - cls_changed).abs().amax(-1).min() > 1e-4, "CLS attends to the objects"
    longer = _pad(batch, 12)
    torch.testing.assert_close(pool(model(longer), longer["mask"], "mean"), pool(model(batch), batch["mask"], "mean"))


def test_group_attention_switch_changes_the_output_and_keeps_shapes():
    batch = _batch(n=4)
    torch.manual_seed(0)
    plain = SequenceBackbone(_cfg(dropout=0.0)).eval()
    torch.manual_seed(0)
    grouped = SequenceBackbone(_cfg(dropout=0.0, group_attention=True, group_attention_groups=4)).eval()
    assert grouped.group is not None and plain.group is None
    assert count_parameters(grouped) == count_parameters(plain) + 3 * 8 * 8 + 3 * 8 + 2 * 32
    out = grouped(batch)
    assert out.shape == plain(batch).shape and not torch.allclose(out, plain(batch))
    with pytest.raises(ValueError, match="not divisible into 5 groups"):
        SequenceBackbone(_cfg(group_attention=True, group_attention_groups=5))


@pytest.mark.parametrize("d_model,feature_dim", [(64, 30), (128, 20), (96, 40)])
def test_raw_feature_model_is_parameter_matched_to_the_token_model(d_model, feature_dim):
    token = _cfg(vocab_size=5000, d_model=d_model, d_ff=2 * d_model, n_heads=4, max_len=64)
    raw = raw_config_matching(token, feature_dim=feature_dim)
    n_tok, n_raw = count_parameters(SequenceBackbone(token)), count_parameters(SequenceBackbone(raw))
    assert abs(n_raw / n_tok - 1) < 0.02, (n_tok, n_raw)
    torch.manual_seed(0)
    model = SequenceBackbone(raw).eval()
    feats = {
        "features": torch.randn(4, 10, feature_dim),
        "type_ids": torch.ones(4, 10, dtype=torch.long),
        "mask": torch.ones(4, 10, dtype=torch.bool),
    }
    out = model(feats)
    feats["features"][1] += 1.0
    assert torch.allclose(out[0], model(feats)[0]) and not torch.allclose(out[1], model(feats)[1]), (
        "rows are independent"
    )


# ---------------------------------------------------------------------------------------------- pretraining


def _train(module, batches, steps, lr=3e-3):
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=lr)
    losses = []
    module.train()
    for step in range(steps):
        loss = module.training_step(batches[step % len(batches)], step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_tiny_model_learns_an_easy_task_and_pretraining_loss_falls():
    from treasure_lib import metrics

    torch.manual_seed(0)
    batches = [_batch(n=64, seed=s) for s in range(8)]
    pre = MaskedTokenModel(_cfg().to_dict(), VOCAB.ranges, "h", TYPE_NAMES, warmup_steps=1)
    pre.log_dict = pre.log = lambda *a, **k: None
    losses = _train(pre, batches, 80)
    assert np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10]), "masked-token loss falls"
    assert torch.equal(pre.backbone.embed.table.weight[PAD], torch.zeros(32)), "PAD's row is never trained"
    clf = SequenceClassifier(_cfg().to_dict(), 2, ["bkg", "sig"], "h")
    clf.log = lambda *a, **k: None
    _train(clf, batches, 60)
    test = _batch(n=400, seed=99)
    probs = clf.predict_proba(test)
    torch.testing.assert_close(probs.sum(-1), torch.ones(400))
    assert metrics.auc(test["label"].numpy(), probs[:, 1].numpy()) > 0.95


class _Recording(MaskedTokenModel):
    """Keeps every validation target tensor, per epoch."""

    def on_validation_epoch_start(self):
        super().on_validation_epoch_start()
        self.seen = getattr(self, "seen", []) + [[]]

    def validation_step(self, batch, batch_idx):
        self.seen[-1].append(self._corrupt(batch, self.validation_generator(batch["tokens"].device, batch_idx))[1])
        return super().validation_step(batch, batch_idx)


@pytest.mark.parametrize("layout", ["grouped", "flat"])
def test_validation_mask_is_identical_every_epoch_and_metrics_are_logged(layout):
    convert = _flatten if layout == "flat" else (lambda b: b)
    train = [convert(_batch(n=32, seed=s)) for s in range(3)]
    val = [convert(_batch(n=32, seed=100 + s)) for s in range(2)]
    length = max(b["tokens"].shape[1] for b in train + val)
    train = [_pad(b, length - b["tokens"].shape[1]) for b in train]  # one length for every batch
    val = [_pad(b, length - b["tokens"].shape[1]) for b in val]
    cfg = _cfg(levels=train[0]["tokens"].shape[2], max_len=length)
    torch.manual_seed(0)
    model = _Recording(cfg.to_dict(), VOCAB.ranges, "h", TYPE_NAMES, warmup_steps=2)
    trainer = _trainer(epochs=2)
    trainer.fit(model, _loader(train), _loader(val))
    first, second = model.seen
    assert len(first) == 2 and all(torch.equal(a, b) for a, b in zip(first, second)), "same validation mask every epoch"
    assert not torch.equal(first[0], first[1]), "each validation batch has its own mask"
    m = {k: float(v) for k, v in trainer.callback_metrics.items()}
    expected = {
        "val/loss",
        "val/masked_accuracy",
        "val/masked_accuracy/level_1",
        "val/masked_accuracy/level_2",
        "val/masked_accuracy/level_3",
        "val/masked_accuracy/level_4",
        "val/masked_accuracy/event",
        "val/masked_accuracy/tracks",
        "val/probe_auc",
    }
    assert expected <= set(m), sorted(m)
    assert all(0 <= m[k] <= 1 for k in expected - {"val/loss"}) and m["val/loss"] > 0
    assert model.hparams.ranges == VOCAB.ranges and model.hparams.vocabulary_hash == "h"


def test_probe_auc_is_the_weighted_auc_binary_and_macro():
    from sklearn.metrics import roc_auc_score

    g = np.random.default_rng(0)
    y2, w = g.integers(0, 2, 500), g.uniform(0.5, 2, 500)
    p2 = np.clip(0.5 + 0.3 * (y2 - 0.5) + 0.3 * g.normal(size=500), 0, 1)
    probs2 = np.stack([1 - p2, p2], 1)
    assert probe_auc(y2, probs2, w) == pytest.approx(roc_auc_score(y2, p2, sample_weight=w), abs=1e-9)
    y3 = g.integers(0, 3, 600)
    logits = g.normal(size=(600, 3)) + 1.5 * np.eye(3)[y3]
    probs3 = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    w3 = g.uniform(0.5, 2, 600)
    expected = roc_auc_score(y3, probs3, sample_weight=w3, multi_class="ovr", average="macro")
    assert probe_auc(y3, probs3, w3) == pytest.approx(expected, abs=1e-3)
    assert np.isnan(probe_auc(np.zeros(5, int), probs2[:5], w[:5])), "one class only: undefined"
    assert probe_auc(np.r_[y2, -np.ones(50, int)], np.r_[probs2, probs2[:50]], np.r_[w, w[:50]]) == pytest.approx(
        roc_auc_score(y2, p2, sample_weight=w), abs=1e-9
    ), "unlabelled rows (-1) are left out"


# ---------------------------------------------------------------------------------------------- classifiers


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A pretraining checkpoint written by a real (short) Trainer fit: optimiser and loop state included."""
    torch.manual_seed(0)
    model = MaskedTokenModel(_cfg().to_dict(), VOCAB.ranges, "vocab-a", TYPE_NAMES, warmup_steps=1)
    trainer = _trainer(epochs=1, limit_train_batches=3)
    trainer.fit(model, _loader([_batch(n=32, seed=s) for s in range(3)]))
    path = tmp_path_factory.mktemp("pretrain") / "pre.ckpt"
    trainer.save_checkpoint(path)
    return path, {k: v.clone() for k, v in model.backbone.state_dict().items()}


class _ModeSpy(SequenceClassifier):
    def training_step(self, batch, batch_idx):
        self.modes = getattr(self, "modes", []) + [self.backbone.training]
        return super().training_step(batch, batch_idx)


def test_frozen_backbone_weights_outputs_and_dropout_do_not_change_during_finetuning(pretrained):
    path, weights = pretrained
    clf = _ModeSpy(_cfg(dropout=0.5).to_dict(), 2, ["b", "s"], "vocab-a", mode="frozen")
    assert not any(p.requires_grad for p in clf.backbone.parameters()), "frozen from construction"
    clf.load_backbone(path)
    probe = _batch(n=16, seed=7)
    before = clf.backbone(probe).detach()
    head_before = clf.head[0].weight.clone()
    clf.train()  # what a user or a loop may call
    assert not clf.backbone.training and clf.head.training
    dropout_on = SequenceBackbone(_cfg(dropout=0.5)).train()
    assert not torch.equal(dropout_on(probe), dropout_on(probe)), "dropout 0.5 would show"
    _trainer(epochs=2).fit(clf, _loader([_batch(n=32, seed=s) for s in range(3)]), _loader([_batch(n=32, seed=50)]))
    assert clf.modes and not any(clf.modes), "the backbone stays in eval mode (no dropout) at every training step"
    for k, v in clf.backbone.state_dict().items():
        assert torch.equal(v, weights[k]), f"frozen backbone weight {k} changed"
    assert not any(p.requires_grad for p in clf.backbone.parameters())
    torch.testing.assert_close(clf.backbone(probe), before, rtol=0, atol=0)
    assert not torch.equal(clf.head[0].weight, head_before), "the head trains"


def test_finetune_and_slow_modes_train_the_backbone_slow_starts_at_the_factor(pretrained):
    path, weights = pretrained
    lrs = []

    class Lrs(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    for mode in ("finetune", "slow"):
        clf = SequenceClassifier(
            _cfg().to_dict(),
            2,
            ["b", "s"],
            "vocab-a",
            mode=mode,
            warmup_steps=1,
            backbone_lr_factor=0.1,
            catch_up_epochs=2,
        )
        clf.load_backbone(path)
        _trainer(epochs=1, callbacks=[Lrs()]).fit(clf, _loader([_batch(n=32, seed=s) for s in range(3)]))
        assert any(not torch.equal(v, weights[k]) for k, v in clf.backbone.state_dict().items()), (
            f"{mode} trains the backbone"
        )
        head_lr, backbone_lr = lrs[-3]
        assert backbone_lr == pytest.approx(head_lr * (1.0 if mode == "finetune" else 0.1))
    assert catch_up(0, 10, 2, 0.1) == pytest.approx(0.1) and catch_up(10, 10, 2, 0.1) == pytest.approx(0.55)
    assert catch_up(20, 10, 2, 0.1) == 1.0 and catch_up(500, 10, 2, 0.1) == 1.0, "catches up after N epochs"


def test_a_pretrained_mode_never_fits_a_random_backbone():
    clf = SequenceClassifier(_cfg().to_dict(), 2, ["b", "s"], "vocab-a", mode="finetune")
    with pytest.raises(ConfigError, match="mode=finetune needs a pretrained backbone"):
        _trainer().fit(clf, _loader([_batch(n=16)]))


def test_backbone_loading_is_strict_and_names_the_file_and_keys(pretrained, tmp_path):
    path, _ = pretrained
    ckpt = torch.load(path, weights_only=True)

    def variant(name, edit):
        c = {"state_dict": dict(ckpt["state_dict"]), "hyper_parameters": dict(ckpt["hyper_parameters"])}
        edit(c)
        torch.save(c, tmp_path / name)
        return tmp_path / name

    def clf(**kw):
        return SequenceClassifier(_cfg(**kw).to_dict(), 2, ["b", "s"], "vocab-a", mode="finetune")

    missing = variant("missing.ckpt", lambda c: c["state_dict"].pop("backbone.blocks.1.mlp.0.weight"))
    with pytest.raises(ConfigError, match=r"missing.ckpt.*missing \['blocks.1.mlp.0.weight'\]"):
        clf().load_backbone(missing)
    extra = variant("extra.ckpt", lambda c: c["state_dict"].update({"backbone.extra.weight": torch.zeros(2)}))
    with pytest.raises(ConfigError, match=r"extra.ckpt.*unexpected \['extra.weight'\]"):
        clf().load_backbone(extra)
    shape = variant("shape.ckpt", lambda c: c["state_dict"].update({"backbone.ln_out.weight": torch.ones(7)}))
    with pytest.raises(ConfigError, match=r"shape.ckpt.*other shapes \['ln_out.weight'\]"):
        clf().load_backbone(shape)
    with pytest.raises(ConfigError, match=r"pre.ckpt: pretrained on another vocabulary"):
        SequenceClassifier(_cfg().to_dict(), 2, ["b", "s"], "vocab-b", mode="finetune").load_backbone(path)
    other_ranges = [{**r, "start": r["start"] + 1} for r in VOCAB.ranges]
    with pytest.raises(ConfigError, match="other vocabulary id ranges"):
        SequenceClassifier(
            _cfg().to_dict(), 2, ["b", "s"], "vocab-a", mode="finetune", ranges=other_ranges
        ).load_backbone(path)
    with pytest.raises(ConfigError, match=r"another architecture \(n_heads 4 != 2"):
        clf(n_heads=2).load_backbone(path)
    with pytest.raises(ConfigError, match=r"n_layers 2 != 3"):
        clf(n_layers=3).load_backbone(path)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputFileError, match="junk.ckpt: cannot be read as a pretraining checkpoint"):
        clf().load_backbone(tmp_path / "junk.ckpt")
    with pytest.raises(InputFileError, match="none.ckpt: no pretrained checkpoint here"):
        clf().load_backbone(tmp_path / "none.ckpt")
    good = SequenceClassifier(
        _cfg(dropout=0.3).to_dict(), 2, ["b", "s"], "vocab-a", mode="finetune", ranges=VOCAB.ranges
    )
    good.load_backbone(path)  # dropout is a training choice, not architecture
    assert good.backbone_source == str(path)


def test_weighted_loss_ignores_unlabelled_rows_and_follows_the_weights():
    torch.manual_seed(0)
    clf = SequenceClassifier(_cfg(dropout=0.0).to_dict(), 3, ["a", "b", "c"], "h", head_dropout=0.0).eval()
    batch = _batch(n=12, seed=3)
    batch["label"] = torch.tensor([0, 1, 2, -1] * 3)
    batch["weight"] = torch.linspace(0.5, 2.0, 12)
    loss, logits = clf._loss(batch)
    keep = batch["label"] >= 0
    ce = torch.nn.functional.cross_entropy(logits[keep], batch["label"][keep], reduction="none")
    expected = (ce * batch["weight"][keep]).sum() / batch["weight"][keep].sum()
    torch.testing.assert_close(loss, expected)
    was = clf.train().training
    probs = clf.predict_proba(batch)
    assert was and clf.training, "predict_proba restores the training mode"
    torch.testing.assert_close(probs, torch.softmax(logits, -1))  # probabilities: the eval-mode softmax


def test_a_masked_target_is_scored_only_against_its_own_vocabulary_range():
    """The loss of a masked code is the cross entropy among the K ids of its collection and level (the object's type
    is not masked): the same number as the full-vocabulary cross entropy with every other id ruled out."""
    torch.manual_seed(0)
    model = MaskedTokenModel(_cfg().to_dict(), VOCAB.ranges, "h", TYPE_NAMES)
    n, q = 40, WIDTH
    hidden = torch.randn(n, 32)
    ranges = [r for r in VOCAB.ranges if r["level"] < q]
    targets = torch.full((n, q), -100, dtype=torch.long)
    for i in range(n):
        for level in range(q if i % 3 else 1):  # some objects lack the higher levels
            options = [r for r in ranges if r["level"] == level]
            r = options[i % len(options)]
            targets[i, level] = r["start"] + (7 * i + level) % r["size"]
    loss, hits, picked = model._range_logits(hidden, targets)
    losses, correct = [], []
    for i, level in zip(*torch.nonzero(targets != -100, as_tuple=True)):
        full = model.heads[level](hidden[i])
        start, size, _ = (t[targets[i, level]] for t in model.lookup)
        ruled_out = torch.full_like(full, float("-inf"))
        ruled_out[start : start + size] = full[start : start + size]
        losses.append(F.cross_entropy(ruled_out[None], targets[i, level][None]))
        correct.append(bool(ruled_out.argmax() == targets[i, level]))
    assert torch.isclose(loss, torch.stack(losses).mean(), atol=1e-5)
    assert hits[picked].tolist() == correct and picked.sum() == len(losses)
