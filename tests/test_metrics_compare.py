"""A change that must not move a result is checked key by key: every number identical, timings aside."""

from __future__ import annotations

import json

from treasure_lib.runs import compare


def test_identical_numbers_pass_and_timings_are_not_results():
    before = {"classify.flavour.tokens.auc_b": 0.911, "run.04_leakage.seconds": 301.0, "x.rows_per_s": 10.0}
    after = {"classify.flavour.tokens.auc_b": 0.911, "run.04_leakage.seconds": 254.5, "x.rows_per_s": 12.0}
    assert compare.differences(before, after) == []


def test_a_last_bit_change_a_lost_key_and_a_new_key_are_each_reported():
    before = {"a.auc": 0.1, "b.z": 2.0, "c.n": 3, "d.err": None}
    after = {"a.auc": float.fromhex("0x1.999999999999bp-4"), "c.n": 3.0, "d.err": None, "e.new": 1.0}
    found = compare.differences(before, after)
    assert found == [
        "a.auc: 0.1 -> 0.10000000000000002",  # one unit in the last place
        "b.z: only before (2.0)",
        "c.n: 3 -> 3.0",  # an int that became a float is a different record
        "e.new: only after (1.0)",
    ]


def test_the_command_exits_1_on_a_difference(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"k": 1.0, "t.seconds": 1.0}))
    b.write_text(json.dumps({"k": 1.0, "t.seconds": 2.0}))
    assert compare.main([str(a), str(b)]) == 0
    assert "1 keys compared (timings aside): 0 differ" in capsys.readouterr().out
    b.write_text(json.dumps({"k": 1.5}))
    assert compare.main([str(a), str(b)]) == 1
