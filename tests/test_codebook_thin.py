"""Chapter 03 says when a collection has too few held-out objects per code to judge its codebook."""

from __future__ import annotations

from treasure_lib.study import codebook_health as cb


def _row(collection, objects, k, level=1, used=None):
    used = k if used is None else used
    return {
        "collection": collection,
        "level": level,
        "objects": objects,
        "codebook_size": k,
        "used_codes": used,
        "utilization": used / k,
        "uniform_utilization": cb.uniform_utilization(objects, k),
        "dead_codes": k - used,
        "perplexity": float(used),
        "normalized_entropy": 0.9,
        "reencode": 1.0,
    }


def test_a_codebook_with_fewer_than_twenty_objects_per_code_is_too_thin():
    assert cb.too_thin(_row("taus", 270, 16))  # 17 per code
    assert not cb.too_thin(_row("photons", 2000, 64))  # 31 per code
    assert not cb.too_thin(_row("muons", 320, 16))  # exactly 20 per code is enough


def test_thin_sentence_names_each_thin_collection_once_with_its_numbers():
    rows = [_row("taus", 270, 16, level=q) for q in (1, 2)] + [_row("photons", 2000, 64), _row("tracks", 50, 512)]
    text = cb.thin_sentence(rows)
    assert text.startswith("Too thin to judge: taus (270 held-out objects for 16 codes, 16.9 per code), tracks (50 ")
    assert text.count("taus") == 1 and "photons" not in text and "fewer than 20 held-out objects per code" in text
    assert cb.thin_sentence([_row("photons", 2000, 64)]) == ""


def test_the_table_shows_objects_per_code():
    assert cb.table([_row("taus", 270, 16)])[0]["Objects per code"] == 270 / 16
