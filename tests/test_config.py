"""Parameters: merging, overrides and the messages a user sees when a key is wrong."""

from __future__ import annotations

import pytest
import yaml

from treasure_lib import config
from treasure_lib.errors import ConfigError

from .conftest import ROOT

DEFAULT = ROOT / "params" / "default.yaml"


def test_default_params_resolve_to_typed_sections_that_round_trip_through_yaml(tmp_path):
    params = config.load([DEFAULT])
    assert params.data.chunk_size == 10_000 and params["data"]["chunk_size"] == 10_000
    assert isinstance(params.classify.train.lr, float) and isinstance(params.classify.seeds, list)
    out = tmp_path / "params.yaml"
    config.dump(params, out)
    assert yaml.safe_load(out.read_text()) == params.to_dict()
    assert config.load([out]) == params


def test_sections_are_frozen_and_variants_are_validated_copies():
    params = config.load([DEFAULT])
    with pytest.raises(Exception, match="frozen"):
        params.classify.mode = "finetune"
    variant = params.replace(classify={"mode": "finetune", "train": {"lr": 1e-4}})
    assert (variant.classify.mode, variant.classify.train.lr) == ("finetune", 1e-4)
    assert (params.classify.mode, params.classify.train.lr) == ("scratch", 2e-3)  # the original is untouched
    assert variant.classify.train.patience == params.classify.train.patience  # a merge, not a replacement
    assert params.classify.replace(label_fraction=0.5).label_fraction == 0.5
    with pytest.raises(ConfigError, match="classify.mode.*one of"):
        params.replace(classify={"mode": "finetuned"})
    with pytest.raises(ConfigError, match="unknown key 'classify.moed'; did you mean 'classify.mode'"):
        params.replace(classify={"moed": "finetune"})
    with pytest.raises(ConfigError, match="must be divisible"):  # the rules between keys hold for variants too
        params.replace(model={"n_heads": 5})


def test_dotted_override_is_parsed_as_yaml_and_wins():
    params = config.load([DEFAULT], ["data.chunk_size=5000", "data.cuts=['jets.pt > 1e3']", "study.seed=7"])
    assert params["data"]["chunk_size"] == 5000
    assert params["data"]["cuts"] == ["jets.pt > 1e3"]
    assert params["study"]["seed"] == 7


def test_later_file_deep_merges_over_earlier(tmp_path):
    extra = tmp_path / "study.yaml"
    extra.write_text("data:\n  chunk_size: 123\n")
    params = config.load([DEFAULT, extra])
    assert params["data"]["chunk_size"] == 123
    assert params["data"]["nan_policy"] == "error"  # untouched sibling survives the merge


def test_base_key_extends_a_file_relative_to_itself(tmp_path):
    (tmp_path / "base.yaml").write_text("study: {seed: 3, name: basic}\n")
    (tmp_path / "child.yaml").write_text("base: base.yaml\nstudy: {name: child}\n")
    params = config.load([tmp_path / "child.yaml"])
    assert params["study"] == {"seed": 3, "name": "child", "kind": "jets", "shared_artifacts": None}


def test_unknown_key_suggests_the_closest_known_key_and_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  chunk_sise: 10\n")
    with pytest.raises(
        ConfigError, match=r"bad\.yaml: unknown key 'data\.chunk_sise'; did you mean 'data\.chunk_size'\?"
    ):
        config.load([DEFAULT, bad])


def test_unknown_override_suggests_the_closest_key():
    with pytest.raises(ConfigError, match=r"unknown key 'data\.nan_polcy'; did you mean 'data\.nan_policy'"):
        config.load([DEFAULT], ["data.nan_polcy=zero"])


def test_wrong_type_names_the_key_and_the_expected_type():
    with pytest.raises(ConfigError, match=r"key 'data\.chunk_size' must be int, got str 'many'"):
        config.load([DEFAULT], ["data.chunk_size=many"])
    with pytest.raises(ConfigError, match=r"key 'data\.files\[1\]' must be str, got int"):
        config.load([DEFAULT], ["data.files=[a.h5, 3]"])


def test_choice_lists_the_allowed_values():
    with pytest.raises(ConfigError, match=r"'data\.nan_policy' must be one of error, zero, drop; got 'ignore'"):
        config.load([DEFAULT], ["data.nan_policy=ignore"])


def test_float_keys_accept_physicists_exponent_notation():
    from treasure_lib.config.schema import K

    assert K("float").check("x", "20e3") == 20000.0
    with pytest.raises(ConfigError, match="must be float"):
        K("float").check("x", True)


def test_yaml_is_read_safely_without_python_objects(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("study: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load([evil])


def test_missing_params_file_is_named():
    with pytest.raises(ConfigError, match="params file not found: .*nowhere.yaml"):
        config.load(["nowhere.yaml"])


def test_every_shipped_params_file_validates():
    files = sorted((ROOT / "params" / "studies").glob("*.yaml"))
    assert files, "no study params shipped"
    for path in files:
        params = config.load([path])
        assert params["study"]["name"] == path.stem


def test_every_shipped_scan_expands_into_valid_points():
    from treasure_lib import scan

    sizes = {}
    for path in sorted((ROOT / "params" / "scans").glob("*.yaml")):
        s = scan.load_scan(path)
        assert s.name == path.stem
        sizes[s.name] = len(scan.expand(s))  # every point's params resolve and validate
    assert sizes == {
        "demo": 4,
        "label_efficiency": 36,
        "starter": 54,
        "starter_12": 12,
        "tokenizers": 48,
        "tokenizers_cpu": 22,
    }


def test_events_study_labels_signal_and_reads_the_event_set():
    params = config.load([ROOT / "params" / "studies" / "events.yaml"])
    assert params["data"]["collection_set"] == "events" and params["data"]["label"]["classes"]["ggH_ZZ4l"] == 1
    per = params["tokenizer"]["per_collection"]
    assert all(per[c]["kind"] == "kmeans" and per[c]["num_quantizers"] == 6 for c in ("electrons", "muons")), (
        "leptons keep detector resolution: six residual levels, so that the decoded m4l peak is not widened"
    )
    assert per["taus"]["codebook_size"] < per["photons"]["codebook_size"] < params["tokenizer"]["codebook_size"], (
        "rare collections get codebooks sized to their few thousand objects"
    )


def test_a_later_file_replaces_a_mapping_valued_parameter_whole():
    params = config.load([ROOT / "params" / "studies" / "events.yaml"])
    assert "collection" not in params["data"]["label"] and params["data"]["label"]["metadata"] == "process"
    assert params["data"]["weight"] == {"collection": "event", "field": "mcEventWeight"}
    assert params["data"]["chunk_size"] == 10_000  # sections still merge: untouched keys come from default.yaml
