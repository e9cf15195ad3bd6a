"""The sequence backbone, masked-token pretraining and classifiers on synthetic token batches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from treasure_lib.errors import ConfigError
from treasure_lib.models import (BackboneConfig, MaskedTokenModel, SequenceBackbone, SequenceClassifier, count_parameters,
                                 mask_flat, mask_objects, range_lookup, raw_config_matching)
from treasure_lib.models.masking import IGNORE
from treasure_lib.vocabulary import CLS, EMPTY, MASK, PAD, SEP, Vocabulary

Q, SLOTS, K = 3, 12, 16


def _vocab():
    v = Vocabulary()
    v.add("event", 1, levels=4, size=8, kind="binned")
    v.add("tracks", 2, levels=Q, size=K)
    return v


VOCAB = _vocab()


def _batch(n=64, seed=0, signal=None):
    """[CLS] [event: 4 bins] tracks... [SEP] padding. Signal events use track codes < 4 at level 0."""
    g = np.random.default_rng(seed)
    L = 1 + 1 + SLOTS + 1
    width = 4
    tokens = np.zeros((n, L, width), np.int64)
    types = np.zeros((n, L), np.int64)
    mask = np.zeros((n, L), bool)
    label = g.integers(0, 2, n) if signal is None else np.full(n, signal)
    ev, tr = VOCAB.offsets("event"), VOCAB.offsets("tracks")
    for r in range(n):
        tokens[r, 0] = [CLS] + [EMPTY] * (width - 1)
        tokens[r, 1] = ev + g.integers(0, 8, 4)
        types[r, 1] = 1
        k = g.integers(3, SLOTS + 1)
        low = np.where(label[r] == 1, g.integers(0, 4, k), g.integers(4, K, k))
        codes = np.stack([low, g.integers(0, K, k), g.integers(0, K, k)], -1) + tr
        tokens[r, 2:2 + k, :Q] = codes
        tokens[r, 2:2 + k, Q:] = EMPTY
        types[r, 2:2 + k] = 2
        tokens[r, 2 + k] = [SEP] + [EMPTY] * (width - 1)
        mask[r, :3 + k] = True
    return {"tokens": torch.from_numpy(tokens), "type_ids": torch.from_numpy(types), "mask": torch.from_numpy(mask),
            "label": torch.from_numpy(label), "weight": torch.ones(n)}


def _cfg(**kw):
    base = dict(vocab_size=VOCAB.size, n_types=3, max_len=SLOTS + 3, levels=4, d_model=32, n_layers=2, n_heads=4, d_ff=64,
                dropout=0.1)
    base.update(kw)
    return BackboneConfig(**base)


def test_bert_masking_statistics_match_the_configured_rates():
    batch = {"tokens": _batch(n=4000, seed=1)["tokens"][..., :1]}  # flat: one id per position, Q = 1
    lookup = range_lookup(VOCAB.ranges, VOCAB.size)
    inputs, targets = mask_flat(batch["tokens"], lookup, torch.Generator().manual_seed(0))
    codes = batch["tokens"] >= 5
    selected = targets != IGNORE
    assert not (selected & ~codes).any(), "CLS, SEP, PAD, EMPTY are never selected"
    rate = selected.sum() / codes.sum()
    assert abs(float(rate) - 0.15) < 3 * np.sqrt(0.15 * 0.85 / float(codes.sum()))
    sel_in, sel_orig = inputs[selected], batch["tokens"][selected]
    masked = (sel_in == MASK).float().mean()
    kept = (sel_in == sel_orig).float().mean()
    n = float(selected.sum())
    assert abs(float(masked) - 0.8) < 4 * np.sqrt(0.16 / n) and abs(float(kept) - 0.1 - 0.1 / K) < 0.03
    start, size, _ = lookup
    swapped = (sel_in != MASK) & (sel_in != sel_orig)
    assert ((sel_in[swapped] >= start[sel_orig[swapped]]) & (sel_in[swapped] < start[sel_orig[swapped]] + size[sel_orig[swapped]])).all(), \
        "random replacements stay in the original token's range"
    assert torch.equal(inputs[~selected], batch["tokens"][~selected])


def test_whole_object_masking_selects_objects_and_never_empty_levels():
    batch = _batch(n=3000, seed=2)
    inputs, targets = mask_objects(batch["tokens"], batch["mask"], range_lookup(VOCAB.ranges, VOCAB.size),
                                   torch.Generator().manual_seed(0))
    picked = (targets != IGNORE).any(-1)
    objects = batch["mask"] & (batch["tokens"][..., 0] >= 5)
    assert abs(float(picked.sum() / objects.sum()) - 0.15) < 0.01
    whole = (targets != IGNORE) == (picked[..., None] & (batch["tokens"] >= 5))
    assert whole.all(), "all real levels of a picked object are targets, EMPTY never"
    assert (inputs[batch["tokens"] == EMPTY] == EMPTY).all()


def test_padding_does_not_change_valid_outputs_and_pad_and_empty_embed_to_zero():
    torch.manual_seed(0)
    model = SequenceBackbone(_cfg(max_len=40)).eval()
    batch = _batch(n=8)
    longer = {k: v.clone() for k, v in batch.items()}
    pad = 10
    longer["tokens"] = torch.cat([batch["tokens"], torch.zeros(8, pad, 4, dtype=torch.long)], 1)
    longer["type_ids"] = torch.cat([batch["type_ids"], torch.zeros(8, pad, dtype=torch.long)], 1)
    longer["mask"] = torch.cat([batch["mask"], torch.zeros(8, pad, dtype=torch.bool)], 1)
    a, b = model(batch), model(longer)
    torch.testing.assert_close(a[batch["mask"]], b[:, :a.shape[1]][batch["mask"]])
    emb = model.embed(torch.tensor([[[PAD, EMPTY, EMPTY, PAD]]]))
    assert torch.equal(emb, torch.zeros_like(emb))


def _train(module, batches, steps, opt=None):
    opt = opt or torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    module.train()
    for step in range(steps):
        batch = batches[step % len(batches)]
        loss = module.training_step(batch, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_tiny_model_learns_an_easy_task_and_pretraining_loss_falls():
    from treasure_lib import metrics

    torch.manual_seed(0)
    batches = [_batch(n=64, seed=s) for s in range(8)]
    pre = MaskedTokenModel(_cfg().to_dict(), VOCAB.ranges, "h", {"1": "event", "2": "tracks"}, warmup_steps=1)
    pre.log_dict = pre.log = lambda *a, **k: None
    losses = _train(pre, batches, 80)
    assert np.mean(losses[-10:]) < 0.85 * np.mean(losses[:10]), "masked-token loss falls"
    clf = SequenceClassifier(_cfg().to_dict(), 2, ["bkg", "sig"], "h")
    clf.log = lambda *a, **k: None
    _train(clf, batches, 60)
    test = _batch(n=400, seed=99)
    probs = clf.predict_proba(test)[:, 1].numpy()
    assert metrics.auc(test["label"].numpy(), probs) > 0.95


def _pretrained_checkpoint(tmp_path):
    import lightning as L

    model = MaskedTokenModel(_cfg().to_dict(), VOCAB.ranges, "vocab-a", {})
    trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, enable_checkpointing=False)
    trainer.strategy.connect(model)
    path = tmp_path / "pre.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_frozen_backbone_weights_and_dropout_do_not_change_during_finetuning(tmp_path):
    path = _pretrained_checkpoint(tmp_path)
    clf = SequenceClassifier(_cfg(dropout=0.5).to_dict(), 2, ["b", "s"], "vocab-a", mode="frozen")
    clf.load_backbone(path)
    clf.log = lambda *a, **k: None
    before = {k: v.clone() for k, v in clf.backbone.state_dict().items()}
    head_before = clf.head[0].weight.clone()
    clf.train()
    assert not clf.backbone.training and clf.head.training, "frozen: backbone in eval mode (dropout off)"
    batch = _batch(n=16)
    a, b = clf.backbone(batch), clf.backbone(batch)
    torch.testing.assert_close(a, b, msg="dropout is inactive in a frozen backbone")
    _train(clf, [batch], 5)
    for k, v in clf.backbone.state_dict().items():
        assert torch.equal(v, before[k]), f"frozen backbone weight {k} changed"
    assert not torch.equal(clf.head[0].weight, head_before), "the head trains"


def test_backbone_loading_is_strict(tmp_path):
    path = _pretrained_checkpoint(tmp_path)
    ckpt = torch.load(path, weights_only=True)
    del ckpt["state_dict"]["backbone.blocks.1.mlp.0.weight"]
    torch.save(ckpt, tmp_path / "missing.ckpt")
    clf = SequenceClassifier(_cfg().to_dict(), 2, ["b", "s"], "vocab-a", mode="finetune")
    with pytest.raises(ConfigError, match=r"missing.ckpt.*missing \['blocks.1.mlp.0.weight'\]"):
        clf.load_backbone(tmp_path / "missing.ckpt")
    other = SequenceClassifier(_cfg().to_dict(), 2, ["b", "s"], "vocab-b", mode="finetune")
    with pytest.raises(ConfigError, match="pretrained on another vocabulary"):
        other.load_backbone(path)
    bigger = SequenceClassifier(_cfg(n_layers=3).to_dict(), 2, ["b", "s"], "vocab-a", mode="finetune")
    with pytest.raises(ConfigError, match=r"missing \['blocks.2"):
        bigger.load_backbone(path)


def test_raw_feature_model_is_parameter_matched_to_the_token_model():
    token = _cfg(vocab_size=5000, d_model=64, d_ff=128)
    raw = raw_config_matching(token, feature_dim=30)
    n_tok, n_raw = count_parameters(SequenceBackbone(token)), count_parameters(SequenceBackbone(raw))
    assert abs(n_raw / n_tok - 1) < 0.03, (n_tok, n_raw)
    feats = {"features": torch.randn(4, 10, 30), "type_ids": torch.ones(4, 10, dtype=torch.long),
             "mask": torch.ones(4, 10, dtype=torch.bool)}
    assert SequenceBackbone(raw)(feats).shape == (4, 10, 64)


def test_group_attention_switch_changes_the_output():
    batch = _batch(n=4)
    torch.manual_seed(0)
    plain = SequenceBackbone(_cfg(dropout=0.0)).eval()
    torch.manual_seed(0)
    grouped = SequenceBackbone(_cfg(dropout=0.0, group_attention=True, group_attention_groups=4)).eval()
    assert grouped.group is not None and plain.group is None
    out = grouped(batch)
    assert out.shape == plain(batch).shape and not torch.allclose(out, plain(batch))


def test_validation_mask_is_the_same_every_epoch():
    model = MaskedTokenModel(_cfg().to_dict(), VOCAB.ranges, "h", {})
    batch = _batch(n=32)
    seen = []
    for _ in range(2):
        g = torch.Generator().manual_seed(model.hparams.seed * 7919 + 0)
        seen.append(model._corrupt(batch, g)[1])
    assert (seen[0] != -100).any()
    assert torch.equal(seen[0], seen[1])
