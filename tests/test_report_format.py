"""The one number formatter: a metric reads the same everywhere the book prints it."""

from __future__ import annotations

import numpy as np
import pytest

from treasure_lib.study.report import ChapterReport, fmt, markdown_table


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
