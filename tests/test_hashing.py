"""The one hashing module: the identities of files, data, texts and the library's source, checked against the
sha256 they are defined as (so a cached stage, a card hash or a scan point keeps its name while its content does)."""

from __future__ import annotations

import hashlib

from treasure_lib import hashing


def test_a_file_hash_is_the_sha256_of_its_bytes_read_in_blocks(tmp_path, monkeypatch):
    data = bytes(range(256)) * 9000  # larger than one block at the block size below
    path = tmp_path / "sample.h5"
    path.write_bytes(data)
    monkeypatch.setattr(hashing, "BLOCK", 4096)
    assert hashing.file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert hashing.file_sha256(str(path)) == hashing.file_sha256(path)


def test_equal_data_has_one_canonical_json_and_one_hash():
    a = {"tokenizer": {"codebook_size": 512, "levels": [1, 2]}, "seed": 5, "name": "jets µ"}
    b = {"seed": 5, "name": "jets µ", "tokenizer": {"levels": [1, 2], "codebook_size": 512}}
    text = '{"name":"jets \\u00b5","seed":5,"tokenizer":{"codebook_size":512,"levels":[1,2]}}'
    assert hashing.canonical_json(a) == hashing.canonical_json(b) == text
    assert hashing.json_sha256(a) == hashing.json_sha256(b) == hashlib.sha256(text.encode()).hexdigest()
    assert hashing.json_sha256({**a, "seed": 6}) != hashing.json_sha256(a)
    assert hashing.text_sha256("µ") == hashlib.sha256("µ".encode()).hexdigest()


def test_named_parts_are_framed_so_a_boundary_cannot_move():
    assert hashing.parts_sha256([("a", "bc")]) != hashing.parts_sha256([("ab", "c")])
    assert hashing.parts_sha256([("a", b"x"), ("b", "y")]) == hashlib.sha256(b"a\0x\0b\0y\0").hexdigest()


def test_a_source_tree_hash_covers_every_file_by_relative_name_and_content(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    (tmp_path / "pkg" / "notes.txt").write_text("not source")
    first = hashing.tree_sha256(tmp_path / "pkg")
    assert first == hashlib.sha256(b"a.py\0x = 1\n\0sub/b.py\0y = 2\n\0").hexdigest()
    (tmp_path / "pkg" / "notes.txt").write_text("changed")
    assert hashing.tree_sha256(tmp_path / "pkg") == first, "only the pattern's files count"
    stamp = hashing.tree_stamp(tmp_path / "pkg")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    assert hashing.tree_sha256(tmp_path / "pkg") != first and hashing.tree_stamp(tmp_path / "pkg") != stamp
    copy = tmp_path / "elsewhere"
    (copy / "sub").mkdir(parents=True)
    (copy / "a.py").write_text("x = 1\n")
    (copy / "sub" / "b.py").write_text("y = 3\n")
    assert hashing.tree_sha256(copy) == hashing.tree_sha256(tmp_path / "pkg"), "where the tree lies does not count"
