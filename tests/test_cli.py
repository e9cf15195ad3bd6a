"""The `treasure` command: parameters, and clean one-line errors (exit 2) instead of tracebacks."""

from __future__ import annotations

import yaml

from treasure_lib.cli import main

from .conftest import ROOT

DEFAULT = str(ROOT / "params" / "default.yaml")


def test_params_prints_the_resolved_yaml_with_overrides(capsys):
    assert main(["params", "--params", DEFAULT, "tokenizer.codebook_size=8192", "data.chunk_size=5000"]) == 0
    params = yaml.safe_load(capsys.readouterr().out)
    assert params["tokenizer"]["codebook_size"] == 8192 and params["data"]["chunk_size"] == 5000
    assert params["export"]["batch_size"] is None and params["generate"]["samples"]["ttbar"] == 5000


def test_unknown_key_is_a_clean_error(capsys):
    assert main(["params", "--params", DEFAULT, "tokenizer.codebok_size=3"]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'tokenizer.codebook_size'?" in err and "Traceback" not in err


def test_generate_with_an_unknown_process_is_a_clean_error(capsys, tmp_path):
    assert (
        main(["generate", "--params", DEFAULT, f"generate.output_dir={tmp_path}", "generate.samples={higgs: 3}"]) == 2
    )
    assert "unknown process(es) ['higgs']" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_train_tokenizer_without_input_files_is_a_clean_error(capsys, tmp_path):
    assert main(["train-tokenizer", "--params", DEFAULT, f"data.files=[{tmp_path}/none_*.h5]"]) == 2
    assert "no input file matches" in capsys.readouterr().err


def test_export_without_cards_says_what_to_run(capsys, tmp_path):
    assert (
        main(
            [
                "export",
                "--params",
                DEFAULT,
                f"export.cards_dir={tmp_path}",
                f"export.output_dir={tmp_path}/tokens",
                "--quiet",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "no tokenizer card for ['tracks', 'jets']" in err and "run `treasure train-tokenizer` first" in err
