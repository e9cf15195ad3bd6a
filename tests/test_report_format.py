"""The one number and table formatter (`treasure_lib.formatting`): a metric reads the same everywhere the book prints
it, in a chapter, on the results page, on a scan page and in a table drawn as a figure."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.formatting import fmt, markdown_table, seed_mean, signed, table_cells
from treasure_lib.study.report import ChapterReport


@pytest.mark.parametrize(
    "value, err, text",
    [
        (0.8512, 0.0213, "0.851 ± 0.021"),
        (20.7, 2.04, "20.7 ± 2.0"),
        (1234.5, 156, "1230 ± 160"),
        (0.91234, 0.0041, "0.9123 ± 0.0041"),
        (312.44, 12.3, "312 ± 12"),
        (0.0995, 0.0996, "0.10 ± 0.10"),  # 0.0996 rounds up to 0.10: still two significant figures
        (0.17603, 0.00497, "0.1760 ± 0.0050"),  # trailing zeros kept: the value has the uncertainty's decimals
        (-0.0001, 0.01, "0.000 ± 0.010"),  # no "-0.000"
        (np.float32(0.5), np.float64(0.25), "0.50 ± 0.25"),
    ],
)
def test_uncertainty_has_two_significant_figures_and_the_value_its_decimal_place(value, err, text):
    assert fmt(value, err) == text


def test_the_same_number_reads_the_same_with_either_kind_of_uncertainty():
    """A metric quoted as '20.7 ± 2' in one chapter and '0.851 ± 0.02' in another was the reviewer's complaint."""
    assert fmt(20.7, 2.0) == "20.7 ± 2.0"
    assert fmt(0.851, 0.02) == "0.851 ± 0.020"


@pytest.mark.parametrize(
    "value, text",
    [
        (0.8512, "0.851"),
        (1234.5, "1230"),
        (-4720.3, "-4720"),
        (9.996, "10.0"),
        (1.0, "1.00"),
        (0.0, "0"),
        (0.000228, "0.000228"),
        (3e-5, "3.00e-05"),
        (1.5e7, "1.50e+07"),
        (22526, "22526"),
        (np.int64(512), "512"),  # integers as integers
    ],
)
def test_without_uncertainty_three_significant_figures(value, text):
    assert fmt(value) == text


def test_undefined_and_infinite_numbers():
    assert fmt(None) == fmt(float("nan")) == fmt(np.nan, 0.1) == "—"
    assert fmt(float("inf")) == "∞" and fmt(-np.inf) == "-∞"
    assert fmt(0.5, float("nan")) == fmt(0.5, None) == "0.500"  # an undefined uncertainty is left out
    assert fmt(0.5, 0) == "0.500 ± 0"


def test_tiny_and_huge_numbers_share_one_exponent_with_their_uncertainty():
    assert fmt(1.2e-6, 3e-8) == "(1.200 ± 0.030)e-06"
    assert fmt(2.5e7, 1.2e6) == "(2.50 ± 0.12)e+07"


def test_text_stays_text():
    assert fmt("tracks") == "tracks" and fmt(True) == "True"


def test_markdown_table_formats_numbers_pairs_and_missing_cells_alike():
    table = markdown_table([{"name": "a|b", "auc": (0.8512, 0.0213), "n": 22526, "x": None, "y": 1234.5}])
    lines = table.splitlines()
    assert lines[0] == "| name | auc | n | x | y |" and lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| a\\|b | 0.851 ± 0.021 | 22526 | — | 1230 |"
    assert markdown_table([{"a": 1}], columns=["a", "b"]).splitlines()[2] == "| 1 |  |"


def test_a_chapter_report_puts_each_caption_above_its_table():
    rep = ChapterReport(tables={"t": [{"x": 0.5}]}, captions={"t": "What x is."})
    assert rep.table("t").startswith("What x is.\n\n| x |") and "| 0.500 |" in rep.table("t")


def test_a_change_carries_its_sign_and_the_same_rounding():
    assert signed(0.0123) == "+0.0123" and signed(-0.42) == "-0.420" and signed(0.0) == "0"
    assert signed(2.2, 0.81) == "+2.20 ± 0.81" and signed(None) == "—"


def test_a_seed_mean_reads_with_its_uncertainty_and_seed_spread():
    assert seed_mean(12.34, 1.1, 0.8) == "12.3 ± 1.1 (seed spread 0.800)"
    assert seed_mean(12.34, 1.1, float("nan")) == "12.3 ± 1.1", "an undefined spread is left out"
    undefined = seed_mean(15.5, float("nan"), 5.47, err_recorded=True)
    assert undefined == "15.5 ± undefined (too few jets) (seed spread 5.47)"
    assert seed_mean(15.5, None) == "15.5", "no uncertainty recorded: nothing to call undefined"
    assert seed_mean(None, 0.1, 0.2) == "—"


def test_tables_of_dicts_or_sequences_share_the_cell_rule():
    """Markdown tables (chapters, results and scan pages) and tables drawn as figures read their cells alike;
    before issue 18 the figure tables wrote 4 significant figures (0.1235) and the pages 3."""
    columns, cells = table_cells([[1, None, float("nan"), 0.123456, (0.9, 0.004)]], ["a", "b", "c", "d", "e"])
    assert columns == ["a", "b", "c", "d", "e"] and cells == [["1", "—", "—", "0.123", "0.9000 ± 0.0040"]]
    assert table_cells([{"a": 0.5}], ["a", "b"]) == (["a", "b"], [["0.500", ""]]), "a key a row lacks is left empty"
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        table_cells([[1, 2, 3]], ["a", "b"])
    table = markdown_table([["Light rejection", "20.7 ± 2.0"]], ["Quantity", "Value"])
    assert table.splitlines() == ["| Quantity | Value |", "|---|---|", "| Light rejection | 20.7 ± 2.0 |"]
