"""Kept only for `study.stages.token_file_hashes`, which the params-plumbing change owns: file hashes live in
`treasure_lib.hashing` (delete this module once that import reads `from ..hashing import file_sha256`)."""

from .hashing import file_sha256 as sha256_file

__all__ = ["sha256_file"]
