"""Training histories from Lightning's metrics.csv: step metrics averaged per epoch, epoch metrics as they are."""

from __future__ import annotations

import numpy as np

from treasure_lib.study.history import epoch_means, latest_metrics_csv, read_history

CSV = """epoch,step,train/loss,train/replaced_level_1,val/loss
0,0,1.0,0.2,
0,1,0.8,0.0,
0,1,,,0.9
1,2,0.6,0.0,
1,3,0.4,0.0,
1,3,,,0.5
"""


def _log(folder, version, text=CSV):
    path = folder / "logs" / f"version_{version}" / "metrics.csv"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_step_metrics_are_averaged_per_epoch_and_epoch_metrics_kept(tmp_path):
    _log(tmp_path, 0)
    curves = read_history(tmp_path)
    assert set(curves) == {"train/loss", "train/replaced_level_1", "val/loss"}
    epochs, loss = curves["train/loss"]
    np.testing.assert_array_equal(epochs, [0, 1])
    np.testing.assert_allclose(loss, [0.9, 0.5])
    np.testing.assert_allclose(curves["train/replaced_level_1"][1], [0.1, 0.0])
    np.testing.assert_allclose(curves["val/loss"][1], [0.9, 0.5])


def test_the_newest_version_is_read_by_number_not_by_name(tmp_path):
    _log(tmp_path, 9, "epoch,step,val/loss\n0,0,9.0\n")
    newest = _log(tmp_path, 10, "epoch,step,val/loss\n0,0,10.0\n")
    assert latest_metrics_csv(tmp_path) == newest and latest_metrics_csv(newest) == newest
    assert read_history(tmp_path)["val/loss"][1].tolist() == [10.0]


def test_chosen_columns_and_a_folder_without_logs(tmp_path):
    assert read_history(tmp_path) == {} and latest_metrics_csv(tmp_path) is None
    rows = [{"epoch": "0", "step": "0", "a": "1", "b": ""}, {"epoch": "", "step": "1", "a": "5"}]
    assert list(epoch_means(rows, ["b", "a"])) == ["a"]  # b never logged; a row without an epoch is skipped
    assert epoch_means(rows, ["a"])["a"][1].tolist() == [1.0]
