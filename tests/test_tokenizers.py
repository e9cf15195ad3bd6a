"""Tokenizer behaviour on controlled inputs: search, masking, dead codes, k-means init, cards, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from treasure_lib.diagnostics.reconstruction import levels_report
from treasure_lib.errors import InputFileError
from treasure_lib.io.toy import make_batch
from treasure_lib.object_collections import Collection
from treasure_lib.preprocessing import CollectionScaler, reservoir_sample
from treasure_lib.tokenizers import codebooks
from treasure_lib.tokenizers.card import BinningTokenizer, VQVAETokenizer, load, save
from treasure_lib.tokenizers.search import nearest, residual_indices
from treasure_lib.tokenizers.vqvae import ObjectVQVAE, VQVAEConfig
from treasure_lib.vocabulary import SPECIAL_TOKENS, Vocabulary, to_global

NET = {"kind": "mlp", "width": 32, "depth": 1, "heads": 2}
TRANSFORMER = {"kind": "transformer", "width": 32, "depth": 1, "heads": 2}


def _model(**kw):
    torch.manual_seed(0)
    base = dict(
        n_continuous=4, n_categories=(2,), encoder=NET, decoder=NET, latent_dim=8, codebook_size=32, num_quantizers=3
    )
    base.update(kw)
    return ObjectVQVAE(VQVAEConfig(**base))


def _inputs(b=64, n=12, seed=0, valid=0.6):
    g = torch.Generator().manual_seed(seed)
    cont = torch.randn(b, n, 4, generator=g)
    cat = torch.randint(0, 2, (b, n, 1), generator=g)
    mask = torch.rand(b, n, generator=g) < valid
    return cont, cat, mask


@pytest.mark.parametrize("cosine", [False, True])
def test_index_only_search_agrees_with_residual_vq_and_faiss(cosine):
    from vector_quantize_pytorch import ResidualVQ

    torch.manual_seed(1)
    rvq = ResidualVQ(dim=16, codebook_size=64, num_quantizers=4, kmeans_init=True, use_cosine_sim=cosine)
    x = torch.randn(1, 5000, 16)
    rvq(x)
    rvq.eval()
    with torch.no_grad():
        _, reference, _ = rvq(x)
    books = [layer._codebook.embed[0] for layer in rvq.layers]
    ours = residual_indices(x[0], books, cosine=cosine)
    via_faiss = residual_indices(x[0], books, cosine=cosine, backend="faiss")
    assert (ours == reference[0]).float().mean() == 1.0
    assert (via_faiss == reference[0]).float().mean() > 0.999  # only exact float ties may differ


def _init(model, cont, cat, mask, objects_per_batch=None):
    """Codebooks initialised from the valid objects' latents, as training does."""
    latents = model.encode_latents(cont, cat, mask)
    codebooks.init_from_sample(
        model.quantizer, latents, iters=5, seed=0, objects_per_batch=objects_per_batch or len(latents)
    )


def test_padded_entries_never_change_codebook_statistics():
    cont, cat, mask = _inputs(valid=0.5)
    garbage = cont.clone()
    garbage[~mask] = 1e3 * torch.randn(int((~mask).sum()), 4)
    states = []
    for c in (cont, garbage):
        model = _model(encoder=TRANSFORMER, decoder=TRANSFORMER)
        _init(model, c, cat, mask)
        model.train()
        for _ in range(3):
            result = model(c, cat, mask)
            codebooks.replace_dead_codes(
                model.quantizer, result["latent"].detach(), 0.5, torch.Generator().manual_seed(0)
            )
        states.append({k: v.clone() for k, v in model.quantizer.state_dict().items()})
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], msg=f"padding changed quantizer buffer {key}")


def test_dead_code_replacement_happens_and_draws_only_valid_objects():
    """Padding sits far away (1e3); a replacement must happen and every re-drawn code must be a valid object's input."""
    cont, cat, mask = _inputs(b=32, n=12, valid=0.5)
    cont[~mask] = 1e3
    model = _model(encoder=TRANSFORMER, decoder=TRANSFORMER, num_quantizers=1, codebook_size=32)
    _init(model, cont, cat, mask)
    book = model.quantizer.layers[0]._codebook
    model.train()
    result = model(cont, cat, mask)
    book.cluster_size.data[0][:8] = 0.0  # eight codes lost all their objects: dead
    before = book.embed[0].clone()
    replaced = codebooks.replace_dead_codes(
        model.quantizer, result["latent"].detach(), 0.1, torch.Generator().manual_seed(1)
    )
    assert replaced[0] >= 8, "the dead codes were replaced"
    changed = (book.embed[0] != before).any(-1)
    assert int(changed.sum()) >= 8
    valid_inputs = model.quantizer.project_in(model.encode_latents(cont, cat, mask))
    padded_inputs = model.quantizer.project_in(model.encode_latent(cont, cat, mask)[~mask])
    distance = lambda code, rows: (rows - code).abs().max(-1).values.min()  # noqa: E731
    for code in book.embed[0][changed]:
        assert distance(code, valid_inputs) < 1e-5, "a re-drawn code is one of the valid objects"
        assert distance(code, padded_inputs) > 1e-3, "a re-drawn code is never a padded entry"


def _rare_object_stream(per_batch=330, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(64, 8, generator=g) * 3

    def batch():
        which = torch.randint(64, (per_batch,), generator=g)
        return centres[which] + 0.5 * torch.randn(per_batch, 8, generator=g)

    return batch


def test_relative_dead_code_rule_spares_healthy_codes_of_rare_objects():
    """330 electrons per batch and K = 256: about one object per code per step. vector-quantize-pytorch's fixed
    threshold (2) replaces most of a healthy codebook every step; the rule relative to a uniform share does not."""
    from vector_quantize_pytorch import ResidualVQ

    torch.manual_seed(0)
    draw = _rare_object_stream()
    sample = torch.cat([draw() for _ in range(16)])  # ~20 K objects for k-means
    fixed = ResidualVQ(
        dim=8, codebook_size=256, num_quantizers=1, kmeans_init=True, threshold_ema_dead_code=2, decay=0.9
    )
    ours = ResidualVQ(
        dim=8, codebook_size=256, num_quantizers=1, kmeans_init=False, threshold_ema_dead_code=0, decay=0.9
    )
    codebooks.init_from_sample(ours, sample, iters=10, seed=0, objects_per_batch=330)
    fixed.train(), ours.train()
    g = torch.Generator().manual_seed(3)
    replaced_fixed, replaced_ours = [], []
    for _ in range(120):
        x = draw()[None]
        book = fixed.layers[0]._codebook
        dead = book.cluster_size[0] * 0.9 + 0.1 * 330 / 256 < 2  # what the library will call dead at this step
        replaced_fixed.append(float(dead.float().mean()))
        fixed(x)
        ours(x)
        replaced_ours.append(codebooks.replace_dead_codes(ours, x[0], 0.05, g)[0] / 256)
    late = slice(60, None)
    assert np.mean(replaced_fixed[late]) > 0.3, (
        f"the fixed threshold should churn the codebook: {np.mean(replaced_fixed[late]):.2f}"
    )
    assert np.mean(replaced_ours[late]) < 0.02, (
        f"replaced fraction per step once trained: {np.mean(replaced_ours[late]):.3f}"
    )


def test_codebooks_initialise_from_a_sample_not_the_first_batch():
    """k-means on ~9 K sampled objects uses (nearly) every code, with EMA counts of one batch's objects."""
    draw = _rare_object_stream()
    sample = torch.cat([draw() for _ in range(7)])  # 2310 objects
    model = ObjectVQVAE(
        VQVAEConfig(n_continuous=8, encoder=NET, decoder=NET, latent_dim=8, codebook_size=256, num_quantizers=2)
    )
    stats = codebooks.init_from_sample(model.quantizer, sample, iters=10, seed=0, objects_per_batch=330)
    assert stats[0]["objects"] == len(sample)
    idx = nearest(sample, model.quantizer.layers[0]._codebook.embed[0])
    assert len(torch.unique(idx)) > 0.9 * 256
    sizes = model.quantizer.layers[0]._codebook.cluster_size[0]
    assert abs(float(sizes.sum()) - 330) < 1e-2, "EMA counts start at one batch's worth of objects"


def test_too_few_training_objects_for_the_codebook_is_a_clear_error():
    from treasure_lib.errors import ConfigError
    from treasure_lib.tokenizers.train import _check_sample_size

    c = Collection(name="taus", layout="per_feature", path="objects/taus", features=("pt",), type_id=3, max_objects=3)
    t = {"codebook_size": 256, "min_objects_per_code": 4, "kind": "vqvae", "quantizer": "rvq"}
    with pytest.raises(
        ConfigError,
        match=r"'taus': 840 training objects are too few for codebook_size 256.*"
        r"tokenizer.per_collection.taus.codebook_size to at most 210",
    ):
        _check_sample_size(c, t, 840)


def test_encode_indices_matches_the_training_forward_and_masks_padding():
    model = _model()
    cont, cat, mask = _inputs(b=256)
    _init(model, cont, cat, mask)
    model.eval()
    with torch.no_grad():
        result = model(cont, cat, mask)
    idx = model.encode_indices(cont, cat, mask)
    assert idx.shape == (256, 12, 3) and idx.dtype == torch.long
    assert (idx[~mask] == -1).all()
    assert (idx[mask] == result["indices"]).all()


def test_residual_fsq_quantizer_encodes_and_decodes():
    model = _model(quantizer="rfsq", fsq_levels=(5, 4, 4), num_quantizers=2)
    cont, cat, mask = _inputs()
    out = model(cont, cat, mask)
    assert out["indices"].shape == (int(mask.sum()), 2) and int(out["indices"].max()) < 80
    idx = model.encode_indices(cont, cat, mask)
    rec, rec_cat = model.decode_indices(idx, mask)
    assert rec.shape == cont.shape and rec_cat.shape == cat.shape


TRACKS = Collection(
    name="tracks",
    layout="compound",
    path="tracks",
    features=("pt", "d0", "z0", "eta", "charge"),
    type_id=2,
    log_features=("pt",),
    categorical=("charge",),
    max_objects=12,
    order_by="pt",
)


def _physical(n=400, seed=0):
    batch = make_batch({"tracks": TRACKS}, n, seed=seed)
    oa = batch["tracks"]
    oa.features[..., 4] = np.where(oa.mask, np.where(oa.features[..., 4] > 0, 1.0, -1.0), 0.0)
    return oa.features, oa.mask


def _vqvae_tokenizer(feats, mask):
    scaler = CollectionScaler.for_collection(TRACKS).fit(feats, mask)
    model = ObjectVQVAE(
        VQVAEConfig(
            n_continuous=4,
            n_categories=(2,),
            encoder=NET,
            decoder=NET,
            latent_dim=8,
            codebook_size=32,
            num_quantizers=3,
        )
    )
    cont, cat = scaler.transform(feats, mask)
    _init(model, torch.from_numpy(cont), torch.from_numpy(cat), torch.from_numpy(mask))
    info = {"name": "tracks", "features": list(TRACKS.features), "type_id": 2, "max_objects": 12}
    return VQVAETokenizer(info, scaler, model)


def test_reloaded_vqvae_card_gives_identical_indices_and_decodes_to_physical_units(tmp_path):
    feats, mask = _physical()
    tok = _vqvae_tokenizer(feats, mask)
    idx = tok.encode(feats, mask)
    path = save(tok, tmp_path / "card", metrics={"val/rec": 0.5}, training={"seed": 1})
    again = load(path)
    np.testing.assert_array_equal(again.encode(feats, mask), idx)
    assert again.card["metrics"]["val/rec"] == 0.5 and again.card["vocabulary"]["num_quantizers"] == 3
    decoded = again.decode(idx)
    assert decoded.shape == feats.shape
    assert set(np.unique(decoded[mask][:, 4])) <= {-1.0, 1.0}, "categorical features decode to their categories"
    assert (decoded[mask][:, 0] > 0).all(), "log-scaled pt decodes positive, in MeV"
    assert again.codebooks().shape == (3, 32, 8)


def test_card_loading_refuses_edited_weights_and_foreign_folders(tmp_path):
    feats, mask = _physical()
    path = save(_vqvae_tokenizer(feats, mask), tmp_path / "card")
    with open(path / "weights.pt", "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(InputFileError, match="checksum differs"):
        load(path)
    with pytest.raises(InputFileError, match="not a tokenizer card"):
        load(tmp_path)


def test_tokenizer_names_a_missing_feature():
    feats, mask = _physical()
    tok = _vqvae_tokenizer(feats, mask)
    with pytest.raises(
        InputFileError, match=r"file\.h5: tokenizer for collection 'tracks' needs feature\(s\) \['d0'\]"
    ):
        tok.check_features(["pt", "z0", "eta", "charge"], "file.h5")


def test_kmeans_baseline_reconstruction_improves_with_levels(tmp_path):
    from treasure_lib.tokenizers.train import train_kmeans

    feats, mask = _physical(n=2000)
    scaler = CollectionScaler.for_collection(TRACKS).fit(feats, mask)
    params = {
        "tokenizer": {"scaler_sample_objects": 100_000, "codebook_size": 16, "num_quantizers": 3, "per_collection": {}}
    }
    sample = reservoir_sample(iter([_batch(feats, mask)]), "tracks", 100_000, 0, categorical=("charge",))
    tok, _ = train_kmeans(params["tokenizer"], TRACKS, scaler, sample, seed=0)
    idx = tok.encode(feats, mask)
    levels = [levels_report(tok, feats, mask, idx)[q]["d0"]["mae"] for q in (1, 2, 3)]
    assert levels[0] > levels[1] > levels[2], "each residual level lowers the physical-unit error"
    again = load(save(tok, tmp_path / "km"))
    np.testing.assert_array_equal(again.encode(feats, mask), idx)


def _batch(feats, mask):
    from treasure_lib.io.batch import Batch, ObjectArrays

    n = len(mask)
    return Batch(
        {"tracks": ObjectArrays(feats, mask, TRACKS.features)}, np.zeros(n, int), np.ones(n, np.float32), np.arange(n)
    )


def test_binning_tokenizer_clips_and_decodes_to_bin_means(tmp_path):
    edges = np.array([[0.0, 10e3, 20e3, 50e3], [-np.pi, -1.0, 1.0, np.pi]])
    centres = np.array([[5e3, 15e3, 30e3], [-2.0, 0.0, 2.0]])
    tok = BinningTokenizer({"name": "met", "features": ["met", "phi"], "type_id": 7, "max_objects": 1}, edges, centres)
    x = np.array([[[1e3, 0.5]], [[15e3, -3.0]], [[900e3, 3.0]]], dtype=np.float32)
    idx = tok.encode(x, np.ones((3, 1), bool))
    assert idx[:, 0].tolist() == [[0, 1], [1, 0], [2, 2]]  # 900 GeV is clipped into the last bin
    np.testing.assert_allclose(tok.decode(idx)[:, 0, 0], [5e3, 15e3, 30e3])
    again = load(save(tok, tmp_path / "bins"))
    np.testing.assert_array_equal(again.encode(x, np.ones((3, 1), bool)), idx)


def test_vocabulary_ranges_are_contiguous_after_the_special_tokens():
    vocab = Vocabulary()
    vocab.add("tracks", 2, levels=3, size=512)
    vocab.add("met", 7, levels=2, size=32, kind="binned", features=["met", "phi"])
    assert SPECIAL_TOKENS == {"PAD": 0, "CLS": 1, "SEP": 2, "MASK": 3, "EMPTY": 4}
    assert [r["start"] for r in vocab.ranges] == [5, 517, 1029, 1541, 1573]
    assert vocab.size == 1605 and vocab.type_ids == {"special": 0, "tracks": 2, "met": 7}
    ids = to_global(np.array([[[5, 0, 511], [-1, -1, -1]]]), vocab.offsets("tracks"))
    assert ids.tolist() == [[[10, 517, 1540], [SPECIAL_TOKENS["PAD"]] * 3]]
    assert Vocabulary.from_json(vocab.to_json()).ranges == vocab.ranges


def test_combined_card_keeps_each_members_type_id_in_the_vocabulary():
    vocab = Vocabulary()
    vocab.add("objects", 0, levels=3, size=64, members={"electrons": 1, "muons": 2, "jets": 5})
    vocab.add("met", 7, levels=3, size=16, kind="binned", features=["met", "phi", "sumet"])
    assert vocab.collection_of_type(1) == "electrons" and vocab.collection_of_type(5) == "jets"
    assert vocab.card_of("muons") == "objects" and vocab.card_of("met") == "met"
    assert 0 not in [v for k, v in vocab.type_ids.items() if k != "special"], "the combined card takes no type id"
    with pytest.raises(ValueError, match="type id 1 of 'taus' is already used"):
        vocab.add("taus", 1, levels=1, size=4)


def test_fsq_tokenizer_codebooks_have_the_documented_shape():
    feats, mask = _physical()
    scaler = CollectionScaler.for_collection(TRACKS).fit(feats, mask)
    model = ObjectVQVAE(
        VQVAEConfig(
            n_continuous=4,
            n_categories=(2,),
            encoder=NET,
            decoder=NET,
            latent_dim=8,
            quantizer="rfsq",
            fsq_levels=(5, 4, 4),
            num_quantizers=2,
        )
    )
    tok = VQVAETokenizer(
        {"name": "tracks", "features": list(TRACKS.features), "type_id": 2, "max_objects": 12}, scaler, model
    )
    assert tok.codebook_size == 80 and tok.codebooks().shape == (2, 80, 3)
    idx = tok.encode(feats, mask)
    assert idx.max() < 80 and (idx[~mask] == -1).all()


def test_index_search_ignores_autocast_so_bf16_never_moves_objects_between_codes():
    model = _model(encoder=TRANSFORMER, decoder=TRANSFORMER)
    cont, cat, mask = _inputs(b=128)
    _init(model, cont, cat, mask)
    model.eval()
    exact = model.encode_indices(cont, cat, mask)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        under_bf16 = model.encode_indices(cont, cat, mask)
        z = model.encode_latent(cont, cat, mask)
    assert z.dtype == torch.bfloat16, "autocast is active for the rest of the model"
    torch.testing.assert_close(under_bf16, exact)


def test_cosine_search_is_chunked_and_equals_the_full_similarity_argmax(monkeypatch):
    from treasure_lib.tokenizers import search

    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(3000, 16, generator=g), dim=-1)
    book = torch.nn.functional.normalize(torch.randn(257, 16, generator=g), dim=-1)
    full = (x @ book.T).argmax(-1)
    monkeypatch.setattr(search, "CHUNK_ELEMENTS", 257 * 100)  # at most 100 rows x 257 codes at a time
    calls = []
    original = torch.Tensor.argmax
    monkeypatch.setattr(
        torch.Tensor, "argmax", lambda self, *a, **k: calls.append(self.shape) or original(self, *a, **k)
    )
    chunked = residual_indices(x, [book], cosine=True)[:, 0]
    assert torch.equal(chunked, full)
    assert max(s[0] for s in calls) <= 100, "no [M, K] similarity matrix for the whole batch"
